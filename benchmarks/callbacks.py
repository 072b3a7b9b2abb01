"""Whapi callbacks as ready-made HTTP requests: the events the portal subscribes to
(`configure.OUR_EVENTS`: channel.post health, channel.patch QR, users.post, users.delete; see
docs/whapi.md §3), shaped as Whapi sends them, with the channel's secret header."""

from __future__ import annotations

import json
from typing import Any

STATUS_CODES = {"QR": 3, "AUTH": 4, "ERROR": 5}


def health(channel_id: str, *, start_at: int, uptime: int, text: str, number: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "start_at": start_at,
        "uptime": uptime,
        "status": {"code": STATUS_CODES[text], "text": text},
        "version": "1.8.7-bench",
    }
    if text == "AUTH":
        report["user"] = {"id": number, "name": "Bench"}
    return {"health": report, "event": {"type": "channel", "event": "post"}, "channel_id": channel_id}


def qr_patch(channel_id: str) -> dict[str, Any]:
    return {
        "qr": {"status": "OK", "base64": "iVBORw0KGgo=", "expire": 20},
        "event": {"type": "channel", "event": "patch"},
        "channel_id": channel_id,
    }


def users(channel_id: str, method: str, number: str) -> dict[str, Any]:
    return {
        "user": {"id": number, "name": "Bench"},
        "event": {"type": "users", "event": method},
        "channel_id": channel_id,
    }


def request_bytes(host: str, secret: str, payload: dict[str, Any]) -> bytes:
    # Imported here: benchmark modules are imported before Django is set up.
    from channels_app.models import WEBHOOK_SECRET_HEADER

    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST /whapi/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{WEBHOOK_SECRET_HEADER}: {secret}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def kind(payload: dict[str, Any]) -> str:
    event = payload["event"]
    name = f"{event['type']}.{event['event']}"
    if "health" in payload:
        name += " " + payload["health"]["status"]["text"]
    return name
