"""Tests of the built-in Whapi sandbox, over real sockets with plain `requests`.

Each test gets its own in-process sandbox on a free port (tests/sandbox_fixtures.py). Tests that need
a channel past its start-up move the sandbox clock instead of sleeping, so the file runs in seconds.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import png
import pytest
import qrcode
import requests

from sandbox import SandboxConfig, SandboxServer, SandboxStateError

TIMEOUT = 5
DAY_MS = 86_400_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parent.parent


# ---- helpers ------------------------------------------------------------------------------------


def partner(sandbox: SandboxServer, method: str, path: str, *, token: str | None = None, **kwargs: Any):
    """A partner API call with the sandbox's partner token (or `token`)."""
    headers = {"Authorization": f"Bearer {token or sandbox.config.partner_token}"}
    return requests.request(method, sandbox.url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def gate(channel: dict[str, Any], method: str, path: str, *, token: str | None = None, **kwargs: Any):
    """A gate API call for a channel object from the partner API (its apiUrl and token)."""
    headers = {"Authorization": f"Bearer {token or channel['token']}"}
    return requests.request(method, channel["apiUrl"] + path, headers=headers, timeout=TIMEOUT, **kwargs)


def control(sandbox: SandboxServer, method: str, path: str, **kwargs: Any):
    return requests.request(method, f"{sandbox.url}/_sandbox{path}", timeout=TIMEOUT, **kwargs)


def default_project_id(sandbox: SandboxServer) -> str:
    return partner(sandbox, "GET", "/projects").json()["projects"][0]["id"]


def create_channel(sandbox: SandboxServer, name: str = "Bot") -> dict[str, Any]:
    response = partner(sandbox, "PUT", "/channels", json={"name": name, "projectId": default_project_id(sandbox)})
    assert response.status_code == 200, response.text
    return response.json()


def advance(sandbox: SandboxServer, seconds: float) -> None:
    assert control(sandbox, "POST", "/clock", json={"advance": seconds}).status_code == 200


def ready_channel(sandbox: SandboxServer, name: str = "Bot") -> dict[str, Any]:
    """A channel past its start-up (health QR)."""
    channel = create_channel(sandbox, name)
    advance(sandbox, sandbox.config.init_seconds)
    return channel


def health_text(channel: dict[str, Any]) -> str:
    return gate(channel, "GET", "health").json()["status"]["text"]


def error_of(response: requests.Response) -> dict[str, Any]:
    """The ResponseError of an error answer, checking its shape and that its code is the HTTP status."""
    error = response.json()["error"]
    assert error["code"] == response.status_code
    assert isinstance(error["message"], str) and error["message"]
    return error


def set_webhooks(channel: dict[str, Any], url: str, events: list[tuple[str, str]], **hook: Any) -> None:
    webhook = {"url": url, "events": [{"type": t, "method": m} for t, m in events], **hook}
    response = gate(channel, "PATCH", "settings", json={"webhooks": [webhook]})
    assert response.status_code == 200, response.text


def kinds(bodies: list[dict[str, Any]]) -> list[str]:
    """ "type.event" of each webhook body, with the status text for channel events."""
    result = []
    for body in bodies:
        kind = f"{body['event']['type']}.{body['event']['event']}"
        if "health" in body:
            kind += ":" + body["health"]["status"]["text"]
        result.append(kind)
    return result


# ---- a webhook receiver -------------------------------------------------------------------------


class Receiver:
    """A small HTTP server standing in for the portal's webhook endpoint.

    Answers the statuses queued in `statuses` in turn, then `default_status`; sleeps `delay` seconds
    before the first `delayed` answers.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque()
        self.default_status = 200
        self.delay = 0.0
        self.delayed = 0
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.cond:
                    status = receiver.statuses.popleft() if receiver.statuses else receiver.default_status
                    sleep = receiver.delay if receiver.delayed > 0 else 0.0
                    receiver.delayed -= 1
                time.sleep(sleep)
                with receiver.cond:
                    receiver.received.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/whapi?secret=s3"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(item["body"]) for item in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, timeout), self.received
        return self.bodies()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def slow_sandbox(sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    """A sandbox with a 30 s start-up, so the test alone moves channels through INIT and LAUNCH."""
    return sandbox_factory(init_seconds=30)


# ---- partner API: projects, auth, validation ------------------------------------------------------


def test_it_starts_with_one_default_project(sandbox):
    data = partner(sandbox, "GET", "/projects").json()
    assert data["total"] == 1 and data["offset"] == 0 and data["count"] == 100
    project = data["projects"][0]
    assert project["isDefault"] is True
    assert project["name"] == "Default project"
    assert re.fullmatch(r"[A-Za-z0-9]{20}", project["id"])
    assert re.fullmatch(r"[A-Za-z0-9]{28}", project["ownerId"])
    assert project["users"] == [project["ownerId"]]


def test_it_manages_projects(sandbox):
    created = partner(sandbox, "PUT", "/projects", json={"name": "Clients"}).json()
    assert created["isDefault"] is False and created["name"] == "Clients"
    assert partner(sandbox, "GET", f"/projects/{created['id']}").json() == created
    assert partner(sandbox, "PATCH", f"/projects/{created['id']}", json={"name": "Renamed"}).json() == {"success": True}
    assert partner(sandbox, "GET", f"/projects/{created['id']}").json()["name"] == "Renamed"
    assert partner(sandbox, "DELETE", f"/projects/{created['id']}").json() == {"success": True}
    assert partner(sandbox, "GET", f"/projects/{created['id']}").status_code == 404


def test_it_refuses_to_delete_the_default_project_or_one_with_channels(sandbox):
    default_id = default_project_id(sandbox)
    assert error_of(partner(sandbox, "DELETE", f"/projects/{default_id}"))["code"] == 400
    other = partner(sandbox, "PUT", "/projects", json={"name": "Other"}).json()
    partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": other["id"]})
    assert partner(sandbox, "DELETE", f"/projects/{other['id']}").status_code == 400


@pytest.mark.parametrize(
    "headers, query",
    [({}, ""), ({"Authorization": "Bearer wrong-token"}, ""), ({"Authorization": "Basic abc"}, ""), ({}, "?token=no")],
)
def test_partner_api_requires_the_partner_token(sandbox, headers, query):
    response = requests.get(f"{sandbox.url}/projects{query}", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert error_of(response)["code"] == 401


def test_partner_api_accepts_the_token_as_query_parameter(sandbox):
    response = requests.get(f"{sandbox.url}/channels/list?token={sandbox.config.partner_token}", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["channels"] == []


def test_create_channel_answers_a_whapi_channel(sandbox):
    before_ms = time.time() * 1000
    project_id = default_project_id(sandbox)
    channel = partner(
        sandbox, "PUT", "/channels", json={"name": "Bot for Ukindo", "projectId": project_id, "phone": "14155550123"}
    ).json()
    assert re.fullmatch(r"[A-Z]{6}-[A-Z0-9]{5}", channel["id"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", channel["token"])
    assert re.fullmatch(r"[A-Za-z0-9]{28}", channel["ownerId"])
    assert channel["apiUrl"] == f"{sandbox.url}/gate/"
    assert before_ms - 1000 <= channel["creationTS"] <= time.time() * 1000 + 1000
    assert channel["activeTill"] == channel["creationTS"] + 6 * DAY_MS
    assert channel["trial"] == channel["creationTS"] + 5 * DAY_MS
    assert isinstance(channel["server"], int)
    assert channel["stopped"] is False
    assert channel["status"] == "active"
    assert channel["mode"] == "trial"
    assert channel["name"] == "Bot for Ukindo"
    assert channel["projectId"] == project_id
    assert channel["phone"] == "14155550123"
    assert partner(sandbox, "GET", f"/channels/{channel['id']}").json() == channel


def test_create_channel_accepts_the_default_alias(sandbox):
    channel = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"}).json()
    assert channel["projectId"] == default_project_id(sandbox)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"projectId": "default"}, 400),
        ({"name": "", "projectId": "default"}, 400),
        ({"name": "Bot"}, 400),
        ({"name": "Bot", "projectId": "not a project id"}, 400),
        ({"name": "Bot", "projectId": "default", "phone": "12ab"}, 400),
        ({"name": "Bot", "projectId": "A" * 20}, 404),
        (["not", "an", "object"], 400),
    ],
)
def test_create_channel_validates_its_body(sandbox, body, status):
    response = partner(sandbox, "PUT", "/channels", json=body)
    assert response.status_code == status
    error_of(response)
    assert partner(sandbox, "GET", "/channels/list").json()["total"] == 0


def test_it_rejects_a_body_that_is_not_json(sandbox):
    response = requests.put(
        sandbox.url + "/channels",
        data="{nope",
        headers={"Authorization": f"Bearer {sandbox.config.partner_token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert error_of(response)["message"] == "Invalid JSON body"


def test_unknown_and_malformed_ids_answer_404_and_400(sandbox):
    assert partner(sandbox, "GET", "/channels/ABCDEF-12345").status_code == 404
    assert partner(sandbox, "DELETE", "/channels/ABCDEF-12345").status_code == 404
    assert partner(sandbox, "GET", "/channels/lowercase-id").status_code == 400
    assert partner(sandbox, "GET", "/projects/" + "b" * 20).status_code == 404
    assert partner(sandbox, "GET", "/channels/list/" + "b" * 20).status_code == 404
    assert error_of(partner(sandbox, "GET", "/no/such/path"))["code"] == 404
    assert error_of(partner(sandbox, "POST", "/projects"))["code"] == 405


def test_channels_can_be_renamed_and_moved(sandbox):
    channel = create_channel(sandbox)
    other = partner(sandbox, "PUT", "/projects", json={"name": "Other"}).json()
    body = {"name": "Renamed", "projectId": other["id"]}
    assert partner(sandbox, "PATCH", f"/channels/{channel['id']}", json=body).json() == {"success": True}
    fetched = partner(sandbox, "GET", f"/channels/{channel['id']}").json()
    assert (fetched["name"], fetched["projectId"]) == ("Renamed", other["id"])
    assert partner(sandbox, "PATCH", f"/channels/{channel['id']}", json={"name": "No project"}).status_code == 400


def test_channel_mode_changes_and_restarts_the_channel(slow_sandbox):
    channel = ready_channel(slow_sandbox)
    assert health_text(channel) == "QR"
    response = partner(slow_sandbox, "PATCH", f"/channels/{channel['id']}/mode", json={"mode": "live"})
    assert response.json() == {"success": True}
    assert partner(slow_sandbox, "GET", f"/channels/{channel['id']}").json()["mode"] == "live"
    assert health_text(channel) == "INIT"
    bad = partner(slow_sandbox, "PATCH", f"/channels/{channel['id']}/mode", json={"mode": "sandbox"})
    assert bad.status_code == 400


# ---- pagination -----------------------------------------------------------------------------------


def test_channel_list_paginates(sandbox):
    ids = [create_channel(sandbox, f"Bot {n}")["id"] for n in range(5)]
    first = partner(sandbox, "GET", "/channels/list", params={"count": 2}).json()
    assert (first["count"], first["total"], first["offset"]) == (2, 5, 0)
    assert [c["id"] for c in first["channels"]] == ids[:2]
    last = partner(sandbox, "GET", "/channels/list", params={"count": 2, "offset": 4}).json()
    assert [c["id"] for c in last["channels"]] == ids[4:]
    beyond = partner(sandbox, "GET", "/channels/list", params={"offset": 10}).json()
    assert beyond["channels"] == [] and beyond["total"] == 5


def test_channel_list_filters_by_project(sandbox):
    other = partner(sandbox, "PUT", "/projects", json={"name": "Other"}).json()
    mine = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": other["id"]}).json()
    create_channel(sandbox)
    listed = partner(sandbox, "GET", f"/channels/list/{other['id']}").json()
    assert [c["id"] for c in listed["channels"]] == [mine["id"]] and listed["total"] == 1


def test_project_list_paginates(sandbox):
    for n in range(3):
        partner(sandbox, "PUT", "/projects", json={"name": f"P{n}"})
    page = partner(sandbox, "GET", "/projects", params={"count": 2, "offset": 1}).json()
    assert [p["name"] for p in page["projects"]] == ["P0", "P1"]
    assert page["total"] == 4


@pytest.mark.parametrize("params", [{"count": 0}, {"count": 501}, {"count": "ten"}, {"offset": -1}])
def test_pagination_parameters_are_validated(sandbox, params):
    assert partner(sandbox, "GET", "/channels/list", params=params).status_code == 400
    assert partner(sandbox, "GET", "/projects", params=params).status_code == 400


# ---- creation limit -------------------------------------------------------------------------------


def test_creation_limit_answers_429_with_retry_after_until_a_slot_frees(sandbox_factory):
    sandbox = sandbox_factory(create_limit=3, create_window=600)
    for n in range(3):
        create_channel(sandbox, f"Bot {n}")
    refused = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"})
    assert refused.status_code == 429
    assert error_of(refused)["code"] == 429
    first_wait = int(refused.headers["Retry-After"])
    assert 1 <= first_wait <= 600

    advance(sandbox, 300)
    refused_later = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"})
    assert refused_later.status_code == 429
    later_wait = int(refused_later.headers["Retry-After"])
    assert 1 <= later_wait <= first_wait - 299

    # Once the first creations leave the window, three slots free: the refused attempts did not count.
    advance(sandbox, later_wait + 1)
    for n in range(3):
        create_channel(sandbox, f"Again {n}")
    assert partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"}).status_code == 429
    assert partner(sandbox, "GET", "/channels/list").json()["total"] == 6


def test_creation_limit_holds_under_concurrent_requests(sandbox_factory):
    sandbox = sandbox_factory(create_limit=5)
    project_id = default_project_id(sandbox)
    statuses: list[int] = []

    def create() -> None:
        response = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": project_id})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert sorted(statuses) == [200] * 5 + [429] * 7


# ---- gate API: auth, start-up, call log ------------------------------------------------------------


def test_gate_requires_the_channel_token(sandbox):
    channel = ready_channel(sandbox)
    assert gate(channel, "GET", "health", token="x" * 32).status_code == 401
    assert error_of(requests.get(channel["apiUrl"] + "settings", timeout=TIMEOUT))["code"] == 401
    by_query = requests.get(f"{channel['apiUrl']}health?token={channel['token']}&wakeup=false", timeout=TIMEOUT)
    assert by_query.status_code == 200
    # The partner token is not a channel token.
    assert gate(channel, "GET", "health", token=sandbox.config.partner_token).status_code == 401


def test_deleted_channel_token_is_refused(sandbox):
    channel = ready_channel(sandbox)
    assert partner(sandbox, "DELETE", f"/channels/{channel['id']}").json() == {"success": True}
    assert gate(channel, "GET", "health").status_code == 401
    assert partner(sandbox, "GET", f"/channels/{channel['id']}").status_code == 404


def test_health_goes_init_launch_qr_and_gate_calls_wait_for_it(slow_sandbox):
    channel = create_channel(slow_sandbox)
    health = gate(channel, "GET", "health", params={"wakeup": "true"}).json()
    assert health["status"] == {"code": 1, "text": "INIT"}
    assert health["channel_id"] == channel["id"]
    assert isinstance(health["version"], str)
    assert abs(health["start_at"] - channel["creationTS"] / 1000) < 2
    assert "user" not in health

    for path in ("settings", "users/login", "users/profile", "limits"):
        refused = gate(channel, "GET", path)
        assert refused.status_code == 503
        assert refused.json() == {"error": {"code": 503, "message": "Channel is initializing, try again later"}}

    advance(slow_sandbox, 25)  # 80 % of 30 s is INIT, the rest LAUNCH
    health = gate(channel, "GET", "health").json()
    assert health["status"] == {"code": 2, "text": "LAUNCH"}
    assert health["uptime"] >= 25
    assert gate(channel, "GET", "settings").status_code == 503

    advance(slow_sandbox, 5)
    assert gate(channel, "GET", "health").json()["status"] == {"code": 3, "text": "QR"}
    assert gate(channel, "GET", "settings").status_code == 200

    calls = control(slow_sandbox, "GET", f"/channels/{channel['id']}").json()["gate_calls"]
    assert [(c["method"], c["path"], c["status"], c["during_init"]) for c in calls] == [
        ("GET", "/health", 200, True),
        ("GET", "/settings", 503, True),
        ("GET", "/users/login", 503, True),
        ("GET", "/users/profile", 503, True),
        ("GET", "/limits", 503, True),
        ("GET", "/health", 200, True),
        ("GET", "/settings", 503, True),
        ("GET", "/health", 200, False),
        ("GET", "/settings", 200, False),
    ]
    assert all("token" not in c["path"] for c in calls)
    assert [c["at"] for c in calls] == sorted(c["at"] for c in calls)


# ---- QR, scan, pairing, logout ------------------------------------------------------------------------


def png_dark_modules(png_bytes: bytes, modules: int) -> list[list[bool]]:
    """Read a QR PNG back into its module matrix (True = dark), sampling the centre of each box."""
    width, height, rows, _info = png.Reader(bytes=png_bytes).read()
    pixels = [list(row) for row in rows]
    assert width == height and width % modules == 0
    box = width // modules
    return [[pixels[r * box + box // 2][c * box + box // 2] == 0 for c in range(modules)] for r in range(modules)]


def qr_matrix(data: str) -> list[list[bool]]:
    code = qrcode.QRCode()
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def test_qr_is_a_real_png_encoding_the_scan_link(sandbox):
    channel = ready_channel(sandbox)
    qr = gate(channel, "GET", "users/login").json()
    assert qr["status"] == "OK"
    assert 1 <= qr["expire"] <= sandbox.config.qr_expire_seconds
    assert qr["base64"].startswith("data:image/png;base64,")
    png_bytes = base64.b64decode(qr["base64"].removeprefix("data:image/png;base64,"))
    assert png_bytes.startswith(PNG_SIGNATURE)

    image = gate(channel, "GET", "users/login/image")
    assert image.headers["Content-Type"] == "image/png"
    assert image.content == png_bytes

    link = gate(channel, "GET", "users/login/rowdata").json()["rowdata"]
    assert link == control(sandbox, "GET", f"/channels/{channel['id']}").json()["qr"]["link"]
    assert link.startswith(f"{sandbox.url}/_sandbox/scan/{channel['id']}?code=")
    expected = qr_matrix(link)
    assert png_dark_modules(png_bytes, len(expected)) == expected


def test_qr_code_rotates(sandbox):
    channel = ready_channel(sandbox)
    first = gate(channel, "GET", "users/login/rowdata").json()["rowdata"]
    assert gate(channel, "GET", "users/login/rowdata").json()["rowdata"] == first
    advance(sandbox, sandbox.config.qr_expire_seconds)
    assert gate(channel, "GET", "users/login/rowdata").json()["rowdata"] != first


def test_opening_the_qr_link_and_submitting_the_form_links_the_phone(sandbox):
    channel = ready_channel(sandbox)
    link = gate(channel, "GET", "users/login/rowdata").json()["rowdata"]
    page = requests.get(link, timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<form" in page.text and "Scan" in page.text

    code = link.split("code=")[1]
    form = {"code": code, "phone": "4915112345678", "name": "Alice"}
    done = requests.post(f"{sandbox.url}/_sandbox/scan/{channel['id']}", data=form, timeout=TIMEOUT)
    assert done.status_code == 200
    health = gate(channel, "GET", "health").json()
    assert health["status"] == {"code": 4, "text": "AUTH"}
    assert health["user"] == {"id": "4915112345678", "name": "Alice"}
    assert error_of(gate(channel, "GET", "users/login"))["code"] == 409
    assert gate(channel, "GET", "users/login/image").status_code == 409
    assert requests.post(f"{sandbox.url}/_sandbox/scan/{channel['id']}", data=form, timeout=TIMEOUT).status_code == 409


def test_an_expired_qr_link_does_not_scan(sandbox):
    channel = ready_channel(sandbox)
    link = gate(channel, "GET", "users/login/rowdata").json()["rowdata"]
    advance(sandbox, 5 * sandbox.config.qr_expire_seconds)
    assert requests.get(link, timeout=TIMEOUT).status_code == 410
    form = {"code": link.split("code=")[1], "phone": "4915112345678", "name": "Alice"}
    assert requests.post(f"{sandbox.url}/_sandbox/scan/{channel['id']}", data=form, timeout=TIMEOUT).status_code == 410
    assert health_text(channel) == "QR"


def test_scan_and_logout_follow_the_409_rules(slow_sandbox):
    channel = create_channel(slow_sandbox)
    assert error_of(control(slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={}))["code"] == 503
    advance(slow_sandbox, slow_sandbox.config.init_seconds)
    assert control(slow_sandbox, "POST", f"/channels/{channel['id']}/logout").status_code == 409
    bad_phone = control(slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={"phone": "12"})
    assert bad_phone.status_code == 400

    scanned = control(
        slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={"phone": "14155550123", "name": "Al"}
    )
    assert scanned.status_code == 200
    assert health_text(channel) == "AUTH"
    assert gate(channel, "GET", "users/profile").json()["name"] == "Al"
    assert control(slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={}).status_code == 409

    assert control(slow_sandbox, "POST", f"/channels/{channel['id']}/logout").json() == {"success": True}
    assert health_text(channel) == "QR"
    assert gate(channel, "GET", "users/profile").status_code == 409
    assert control(slow_sandbox, "POST", f"/channels/{channel['id']}/logout").status_code == 409
    assert control(slow_sandbox, "POST", "/channels/ABCDEF-12345/scan", json={}).status_code == 404


def test_gate_logout_unlinks_the_phone(sandbox):
    channel = ready_channel(sandbox)
    assert gate(channel, "POST", "users/logout").status_code == 409
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    assert gate(channel, "POST", "users/logout").json() == {"success": True}
    assert health_text(channel) == "QR"
    assert "user" not in gate(channel, "GET", "health").json()


def test_pairing_code_links_the_phone_it_was_requested_for(sandbox):
    channel = ready_channel(sandbox)
    for phone in ("123456", "1234567890123456", "12345abc"):
        assert gate(channel, "GET", f"users/login/{phone}").status_code == 400
    assert control(sandbox, "POST", f"/channels/{channel['id']}/pair", json={"code": "AAAA-BBBB"}).status_code == 409

    code = gate(channel, "GET", "users/login/380501234567").json()["code"]
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    assert control(sandbox, "POST", f"/channels/{channel['id']}/pair", json={"code": wrong}).status_code == 400
    paired = control(sandbox, "POST", f"/channels/{channel['id']}/pair", json={"code": code, "name": "Bo"})
    assert paired.status_code == 200
    assert gate(channel, "GET", "health").json()["user"] == {"id": "380501234567", "name": "Bo"}
    assert gate(channel, "GET", "users/login/380501234567").status_code == 409


def test_forced_status_shows_in_health_until_cleared(sandbox):
    channel = ready_channel(sandbox)
    forced = control(sandbox, "POST", f"/channels/{channel['id']}/status", json={"text": "SYNC_ERROR"})
    assert forced.json()["status"]["text"] == "SYNC_ERROR"
    assert health_text(channel) == "SYNC_ERROR"
    assert gate(channel, "GET", "settings").status_code == 200  # SYNC_ERROR: the gate still answers
    control(sandbox, "POST", f"/channels/{channel['id']}/status", json={"text": "STOP"})
    assert gate(channel, "GET", "settings").status_code == 503
    control(sandbox, "POST", f"/channels/{channel['id']}/status", json={"text": None})
    assert health_text(channel) == "QR"
    assert control(sandbox, "POST", f"/channels/{channel['id']}/status", json={"text": "AUTH"}).status_code == 400


# ---- settings and limits --------------------------------------------------------------------------


def test_settings_start_like_whapis_and_patch_merges_top_level_fields(sandbox):
    channel = ready_channel(sandbox)
    defaults = gate(channel, "GET", "settings").json()
    assert defaults["webhooks"] == [] and defaults["callback_persist"] is False
    assert "media" in defaults

    hook = {"url": "https://portal.test/hooks/whapi", "events": [{"type": "channel", "method": "post"}]}
    first = gate(channel, "PATCH", "settings", json={"webhooks": [hook], "callback_persist": True}).json()
    assert first["before_update"] == defaults
    assert first["changes"] == ["webhooks", "callback_persist"]
    assert first["after_update"]["webhooks"] == [{**hook, "mode": "body"}]
    assert first["after_update"]["media"] == defaults["media"]

    second_hook = {"url": "https://portal.test/other", "events": [{"type": "users", "method": "post"}]}
    second = gate(channel, "PATCH", "settings", json={"webhooks": [second_hook], "callback_persist": True}).json()
    assert second["changes"] == ["webhooks"]  # callback_persist was sent unchanged
    assert [h["url"] for h in second["after_update"]["webhooks"]] == ["https://portal.test/other"]  # replaced whole
    assert gate(channel, "GET", "settings").json() == second["after_update"]

    assert gate(channel, "DELETE", "settings").json() == {"success": True}
    assert gate(channel, "GET", "settings").json() == defaults


@pytest.mark.parametrize(
    "patch",
    [
        {"webhooks": {"url": "https://x.test"}},
        {"webhooks": [{"events": []}]},
        {"webhooks": [{"url": 5}]},
        {"webhooks": [{"url": "https://x.test", "mode": "query"}]},
        {"webhooks": [{"url": "https://x.test", "events": [{"type": "channel"}]}]},
        {"webhooks": [{"url": "https://x.test", "events": [{"type": "nope", "method": "post"}]}]},
        {"webhooks": [{"url": "https://x.test", "headers": {f"X-{n}": "v" for n in range(6)}}]},
        {"webhooks": [{"url": "https://x.test", "headers": {"X-Count": 5}}]},
        {"webhooks": [{"url": "https://x.test", "surprise": True}]},
        {"callback_backoff_delay_ms": 2999},
        {"callback_backoff_delay_ms": 15001},
        {"max_callback_backoff_delay_ms": 599999},
        {"max_callback_backoff_delay_ms": 3600001},
        {"callback_persist": "yes"},
        {"unknown_field": 1},
        ["webhooks"],
    ],
)
def test_patch_settings_rejects_a_wrong_format_and_changes_nothing(sandbox, patch):
    channel = ready_channel(sandbox)
    before = gate(channel, "GET", "settings").json()
    response = gate(channel, "PATCH", "settings", json=patch)
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "Wrong settings format" and error["details"]
    assert gate(channel, "GET", "settings").json() == before


def test_patch_settings_accepts_the_documented_ranges(sandbox):
    channel = ready_channel(sandbox)
    hook = {
        "url": "https://portal.test/hooks",
        "mode": "path",
        "events": [{"type": "users", "method": "delete"}],
        "headers": {f"X-{n}": "v" for n in range(5)},
    }
    patch = {"webhooks": [hook], "callback_backoff_delay_ms": 15000, "max_callback_backoff_delay_ms": 600000}
    assert gate(channel, "PATCH", "settings", json=patch).status_code == 200


def test_limits_apply_to_trial_channels_only(sandbox):
    channel = ready_channel(sandbox)
    limits = gate(channel, "GET", "limits").json()
    assert set(limits) == {"messages", "chats", "checks", "requests"}
    partner(sandbox, "PATCH", f"/channels/{channel['id']}/mode", json={"mode": "live"})
    advance(sandbox, sandbox.config.init_seconds)
    assert gate(channel, "GET", "limits").status_code == 204


# ---- lifecycle: stop, start, restart, balance, expiry -------------------------------------------------


def test_stop_start_and_restart(slow_sandbox):
    channel = ready_channel(slow_sandbox)
    control(slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={"name": "Al"})
    assert partner(slow_sandbox, "POST", f"/channels/{channel['id']}/stop", json={"saveDays": True}).json() == {
        "success": True
    }
    assert health_text(channel) == "STOP"
    assert partner(slow_sandbox, "GET", f"/channels/{channel['id']}").json()["stopped"] is True
    assert gate(channel, "GET", "settings").status_code == 503
    assert partner(slow_sandbox, "POST", f"/channels/{channel['id']}/restart").status_code == 503

    assert partner(slow_sandbox, "POST", f"/channels/{channel['id']}/start").json() == {"success": True}
    assert health_text(channel) == "INIT"
    advance(slow_sandbox, slow_sandbox.config.init_seconds)
    assert gate(channel, "GET", "health").json()["user"]["name"] == "Al"  # the link survives

    assert partner(slow_sandbox, "POST", f"/channels/{channel['id']}/restart").json() == {"success": True}
    assert health_text(channel) == "INIT"


def test_extend_spends_the_balance_and_delete_refunds_unused_paid_days(sandbox):
    channel = create_channel(sandbox)
    balance = control(sandbox, "GET", "/state").json()["balance_days"]

    extend = partner(sandbox, "POST", f"/channels/{channel['id']}/extend", json={"days": 10, "comment": "May"})
    assert extend.json() == {"success": True}
    extended = partner(sandbox, "GET", f"/channels/{channel['id']}").json()
    assert extended["activeTill"] == channel["activeTill"] + 10 * DAY_MS
    assert control(sandbox, "GET", "/state").json()["balance_days"] == balance - 10

    too_much = partner(sandbox, "POST", f"/channels/{channel['id']}/extend", json={"days": balance, "comment": "x"})
    assert error_of(too_much)["code"] == 503
    assert partner(sandbox, "GET", f"/channels/{channel['id']}").json()["activeTill"] == extended["activeTill"]
    assert control(sandbox, "GET", "/state").json()["balance_days"] == balance - 10

    for body in ({"days": 0, "comment": "x"}, {"days": 1.5, "comment": "x"}, {"days": 3}, {"comment": "x"}):
        assert partner(sandbox, "POST", f"/channels/{channel['id']}/extend", json=body).status_code == 400

    partner(sandbox, "DELETE", f"/channels/{channel['id']}")
    assert control(sandbox, "GET", "/state").json()["balance_days"] == balance


def test_partner_settings_keep_what_is_patched_and_refuse_unknown_fields(sandbox):
    assert partner(sandbox, "GET", "/partners/whapicloud/settings").json() == {
        "webhooks": [],
        "days_limit": 30,
        "noChat": False,
    }
    hook = {"url": "https://portal.example/days", "events": [{"type": "days", "method": "post"}], "mode": "body"}
    assert partner(sandbox, "PATCH", "/partners/whapicloud/settings", json={"webhooks": [hook]}).status_code == 200
    stored = partner(sandbox, "GET", "/partners/whapicloud/settings").json()
    assert (stored["webhooks"], stored["days_limit"]) == ([hook], 30)
    for body in ({"colour": "red"}, {"webhooks": "x"}, {"days_limit": "7"}):
        assert partner(sandbox, "PATCH", "/partners/whapicloud/settings", json=body).status_code == 400
    assert partner(sandbox, "GET", "/partners/whapicloud/settings", token="wrong").status_code == 401


def test_delete_refunds_only_whole_unused_days(sandbox):
    free = create_channel(sandbox, "Free")
    paid = create_channel(sandbox, "Paid")
    balance = control(sandbox, "GET", "/state").json()["balance_days"]
    partner(sandbox, "POST", f"/channels/{paid['id']}/extend", json={"days": 4, "comment": "x"})
    partner(sandbox, "DELETE", f"/channels/{free['id']}")
    assert control(sandbox, "GET", "/state").json()["balance_days"] == balance - 4  # free days are not refunded
    advance(sandbox, 7.5 * 86400)  # 1.5 of the 4 paid days used
    partner(sandbox, "DELETE", f"/channels/{paid['id']}")
    assert control(sandbox, "GET", "/state").json()["balance_days"] == balance - 4 + 2


def test_a_channel_past_active_till_stops_and_extending_revives_it(slow_sandbox, receiver):
    channel = ready_channel(slow_sandbox)
    set_webhooks(channel, receiver.url, [("channel", "post")])
    advance(slow_sandbox, 6 * 86400)
    assert health_text(channel) == "STOP"
    assert gate(channel, "GET", "health").json()["status"]["code"] == 7
    assert partner(slow_sandbox, "GET", f"/channels/{channel['id']}").json()["stopped"] is True
    assert gate(channel, "GET", "settings").status_code == 503
    assert partner(slow_sandbox, "POST", f"/channels/{channel['id']}/start").status_code == 503
    assert kinds(receiver.wait_for(1)) == ["channel.post:STOP"]

    partner(slow_sandbox, "POST", f"/channels/{channel['id']}/extend", json={"days": 1, "comment": "x"})
    revived = partner(slow_sandbox, "GET", f"/channels/{channel['id']}").json()
    assert revived["stopped"] is False
    assert revived["activeTill"] > time.time() * 1000 + 6 * 86400 * 1000
    assert health_text(channel) == "INIT"


# ---- webhooks -------------------------------------------------------------------------------------


def test_webhooks_carry_the_configured_headers_in_event_order(sandbox, receiver):
    channel = ready_channel(sandbox)
    headers = {"Authorization": "Bearer hook-secret", "X-Portal-Channel": "42"}
    set_webhooks(channel, receiver.url, [("channel", "post"), ("users", "post"), ("users", "delete")], headers=headers)

    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={"phone": "61371989950", "name": "Jonathan"})
    gate(channel, "POST", "users/logout")
    bodies = receiver.wait_for(4)
    assert kinds(bodies) == ["users.post", "channel.post:AUTH", "users.delete", "channel.post:QR"]
    assert bodies[0] == {
        "user": {"id": "61371989950", "name": "Jonathan"},
        "event": {"type": "users", "event": "post"},
        "channel_id": channel["id"],
    }
    auth_health = bodies[1]["health"]
    assert auth_health["user"] == {"id": "61371989950", "name": "Jonathan"}
    assert {"start_at", "uptime", "status", "channel_id", "version"} <= set(auth_health)
    for request in receiver.received:
        assert request["method"] == "POST"
        assert request["path"] == "/hooks/whapi?secret=s3"
        assert request["headers"]["Authorization"] == "Bearer hook-secret"
        assert request["headers"]["X-Portal-Channel"] == "42"
        assert request["headers"]["Content-Type"] == "application/json"
    log = control(sandbox, "GET", "/webhooks", params={"wait": 5}).json()
    assert log["idle"] is True
    assert [(d["state"], d["attempts"], d["status"]) for d in log["deliveries"]] == [("delivered", 1, 200)] * 4
    assert all("Authorization" in d["header_names"] for d in log["deliveries"])


def test_only_subscribed_events_are_delivered(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("users", "delete")])
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    control(sandbox, "POST", f"/channels/{channel['id']}/logout")
    assert sandbox.webhooks.wait_idle(5)
    assert kinds(receiver.bodies()) == ["users.delete"]


def test_restart_announces_each_status_on_the_way(slow_sandbox, receiver):
    channel = create_channel(slow_sandbox)
    advance(slow_sandbox, 30)
    control(slow_sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    set_webhooks(channel, receiver.url, [("channel", "post")])
    partner(slow_sandbox, "POST", f"/channels/{channel['id']}/restart")
    advance(slow_sandbox, 25)
    advance(slow_sandbox, 5)
    assert kinds(receiver.wait_for(3)) == ["channel.post:INIT", "channel.post:LAUNCH", "channel.post:AUTH"]


def test_failed_deliveries_are_retried_in_order_until_200(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("channel", "post"), ("users", "post")])
    receiver.statuses.extend([500, 503])
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    bodies = receiver.wait_for(4)
    assert kinds(bodies) == ["users.post", "users.post", "users.post", "channel.post:AUTH"]
    assert sandbox.webhooks.wait_idle(5)
    log = sandbox.webhooks.log(channel["id"])
    assert [(d["event"]["type"], d["state"], d["attempts"], d["status"]) for d in log] == [
        ("users", "delivered", 3, 200),
        ("channel", "delivered", 1, 200),
    ]


def test_delivery_attempts_are_bounded(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("users", "post")])
    receiver.default_status = 500
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    assert sandbox.webhooks.wait_idle(5)
    assert len(receiver.received) == sandbox.config.webhook_max_attempts
    [delivery] = sandbox.webhooks.log(channel["id"])
    assert (delivery["state"], delivery["attempts"], delivery["status"]) == (
        "failed",
        sandbox.config.webhook_max_attempts,
        500,
    )


def test_a_receiver_slower_than_the_timeout_counts_as_a_failure(sandbox_factory, receiver):
    sandbox = sandbox_factory(webhook_timeout=1.0)  # the retry, answered at once, fits easily
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("users", "post")])
    receiver.delay, receiver.delayed = 3.0, 1
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    assert sandbox.webhooks.wait_idle(10)
    [delivery] = sandbox.webhooks.log(channel["id"])
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)


def test_path_and_method_modes_shape_the_url_and_verb(sandbox, receiver):
    channel = ready_channel(sandbox)
    base = receiver.url.split("?")[0]
    hooks = [
        {"url": base, "mode": "path", "events": [{"type": "users", "method": "post"}]},
        {"url": base, "mode": "method", "events": [{"type": "users", "method": "delete"}]},
    ]
    gate(channel, "PATCH", "settings", json={"webhooks": hooks})
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    control(sandbox, "POST", f"/channels/{channel['id']}/logout")
    receiver.wait_for(2)
    assert sorted((r["method"], r["path"]) for r in receiver.received) == [
        ("DELETE", "/hooks/whapi/users"),
        ("POST", "/hooks/whapi/users/post"),
    ]


# ---- faults ---------------------------------------------------------------------------------------


def test_status_fault_answers_without_doing_the_work(sandbox):
    fault = control(
        sandbox, "POST", "/faults", json={"kind": "status", "method": "PUT", "path": "/channels", "status": 503}
    )
    assert fault.status_code == 201
    response = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"})
    assert error_of(response)["code"] == 503
    assert partner(sandbox, "GET", "/channels/list").json()["total"] == 0
    assert control(sandbox, "GET", "/faults").json() == {"faults": []}
    assert partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"}).status_code == 200


def test_status_fault_can_send_retry_after_and_fire_several_times(sandbox):
    sandbox.state.add_fault({"kind": "status", "method": "put", "path": "/channels", "status": 429, "retry_after": 30})
    sandbox.state.add_fault({"kind": "status", "path": "/gate/settings", "status": 502, "count": 2})
    limited = partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"

    channel = ready_channel(sandbox)
    assert [gate(channel, "GET", "settings").status_code for _ in range(3)] == [502, 502, 200]
    calls = control(sandbox, "GET", f"/channels/{channel['id']}").json()["gate_calls"]
    assert [c["status"] for c in calls] == [502, 502, 200]


def test_fault_paths_match_as_prefix_or_as_whole_regex(sandbox):
    sandbox.state.add_fault({"kind": "status", "path": "/channels", "status": 500})
    assert partner(sandbox, "GET", "/channels/list").status_code == 500  # prefix

    sandbox.state.add_fault({"kind": "status", "method": "GET", "path_regex": r"/channels/list", "status": 500})
    assert partner(sandbox, "GET", f"/channels/list/{default_project_id(sandbox)}").status_code == 200
    assert partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"}).status_code == 200
    assert partner(sandbox, "GET", "/channels/list").status_code == 500
    assert sandbox.state.list_faults() == []


def test_delay_fault_makes_a_client_time_out_once(sandbox):
    sandbox.state.add_fault({"kind": "delay", "method": "GET", "path": "/projects", "seconds": 1.0})
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            sandbox.url + "/projects",
            headers={"Authorization": f"Bearer {sandbox.config.partner_token}"},
            timeout=0.3,
        )
    started = time.monotonic()
    assert partner(sandbox, "GET", "/projects").status_code == 200
    assert time.monotonic() - started < 0.9


def test_lost_response_fault_does_the_work_but_never_answers(sandbox):
    sandbox.state.add_fault({"kind": "lost_response", "method": "PUT", "path": "/channels"})
    with pytest.raises(requests.exceptions.ConnectionError):
        partner(sandbox, "PUT", "/channels", json={"name": "Lost", "projectId": "default"})
    listed = partner(sandbox, "GET", "/channels/list").json()
    assert [c["name"] for c in listed["channels"]] == ["Lost"]
    assert control(sandbox, "GET", "/state").json()["creations_in_window"] == 1


def test_webhook_duplicate_fault_sends_a_delivery_twice(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("users", "post")])
    control(sandbox, "POST", "/faults", json={"kind": "webhook_duplicate", "count": 1})
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    control(sandbox, "POST", f"/channels/{channel['id']}/logout")
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    bodies = receiver.wait_for(3)
    assert sandbox.webhooks.wait_idle(5)
    assert len(receiver.received) == 3
    assert bodies[0] == bodies[1]
    assert [d["duplicate"] for d in sandbox.webhooks.log()] == [False, True, False]


def test_webhook_reorder_fault_reverses_the_next_deliveries(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("channel", "post"), ("users", "post")])
    control(sandbox, "POST", "/faults", json={"kind": "webhook_reorder", "count": 2, "channel_id": channel["id"]})
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    assert kinds(receiver.wait_for(2)) == ["channel.post:AUTH", "users.post"]


def test_webhook_fail_fault_fails_attempts_without_reaching_the_receiver(sandbox, receiver):
    channel = ready_channel(sandbox)
    set_webhooks(channel, receiver.url, [("users", "post")])
    sandbox.state.add_fault({"kind": "webhook_fail", "count": 2})
    control(sandbox, "POST", f"/channels/{channel['id']}/scan", json={})
    assert sandbox.webhooks.wait_idle(5)
    assert len(receiver.received) == 1
    [delivery] = sandbox.webhooks.log()
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 200},
        {"kind": "status", "status": 500, "count": 0},
        {"kind": "delay", "seconds": -1},
        {"kind": "status", "status": 500, "path": "/a", "path_regex": "/a"},
        {"kind": "status", "status": 500, "path_regex": "("},
        {"kind": "webhook_duplicate", "path": "/x"},
    ],
)
def test_invalid_faults_are_refused(sandbox, fault):
    assert error_of(control(sandbox, "POST", "/faults", json=fault))["code"] == 400
    assert sandbox.state.list_faults() == []


def test_faults_can_be_listed_and_cleared(sandbox):
    control(sandbox, "POST", "/faults", json={"kind": "delay", "seconds": 0.1, "count": 3})
    [listed] = control(sandbox, "GET", "/faults").json()["faults"]
    assert (listed["kind"], listed["count"]) == ("delay", 3)
    assert control(sandbox, "DELETE", "/faults").json() == {"success": True}
    assert control(sandbox, "GET", "/faults").json() == {"faults": []}


def test_control_api_is_never_faulted(sandbox):
    sandbox.state.add_fault({"kind": "status", "status": 500, "count": 5})
    assert control(sandbox, "GET", "/state").status_code == 200
    assert control(sandbox, "DELETE", "/faults").status_code == 200


# ---- control API: config, clock, reset, state file ---------------------------------------------------


def test_config_changes_apply_at_run_time(sandbox):
    changed = control(sandbox, "POST", "/config", json={"create_limit": 1, "init_seconds": 0}).json()
    assert changed["create_limit"] == 1 and changed["init_seconds"] == 0
    channel = create_channel(sandbox)
    assert health_text(channel) == "QR"
    assert partner(sandbox, "PUT", "/channels", json={"name": "Bot", "projectId": "default"}).status_code == 429
    for body in ({"nope": 1}, {"init_seconds": -1}, {"create_limit": 1.5}, {"partner_token": "x"}, {}):
        assert control(sandbox, "POST", "/config", json=body).status_code == 400
    assert control(sandbox, "GET", "/config").json()["create_limit"] == 1


def test_clock_only_moves_forward(sandbox):
    before = control(sandbox, "GET", "/clock").json()
    after = control(sandbox, "POST", "/clock", json={"advance": 3600}).json()
    assert after["offset"] == before["offset"] + 3600
    assert after["now"] >= before["now"] + 3600
    assert control(sandbox, "POST", "/clock", json={"advance": -1}).status_code == 400


def test_state_shows_everything_and_reset_forgets_it(sandbox):
    channel = ready_channel(sandbox)
    sandbox.state.add_fault({"kind": "delay", "seconds": 0.1})
    state = control(sandbox, "GET", "/state").json()
    assert [c["token"] for c in state["channels"]] == [channel["token"]]
    assert state["clock_offset"] > 0 and state["faults"]
    assert state["config"]["create_limit"] == sandbox.config.create_limit

    assert control(sandbox, "POST", "/reset").json() == {"success": True}
    state = control(sandbox, "GET", "/state").json()
    assert state["channels"] == [] and state["faults"] == [] and state["clock_offset"] == 0
    assert [p["isDefault"] for p in state["projects"]] == [True]
    assert gate(channel, "GET", "health").status_code == 401


def test_index_page_lists_the_channels(sandbox):
    channel = ready_channel(sandbox, "Shop bot")
    page = control(sandbox, "GET", "/")
    assert page.status_code == 200
    assert channel["id"] in page.text and "Shop bot" in page.text and "/_sandbox/scan/" in page.text


def test_state_file_survives_a_restart(sandbox_factory, tmp_path):
    state_file = tmp_path / "var" / "sandbox.json"
    first = sandbox_factory(state_file=str(state_file), init_seconds=30)
    project = partner(first, "PUT", "/projects", json={"name": "Kept"}).json()
    channel = partner(first, "PUT", "/channels", json={"name": "Kept bot", "projectId": project["id"]}).json()
    advance(first, 30)
    hook = {"url": "https://portal.test/hooks", "events": [{"type": "users", "method": "post"}]}
    gate(channel, "PATCH", "settings", json={"webhooks": [hook]})
    control(first, "POST", f"/channels/{channel['id']}/scan", json={"phone": "14155550999", "name": "Kept"})
    partner(first, "POST", f"/channels/{channel['id']}/extend", json={"days": 3, "comment": "x"})
    first_state = control(first, "GET", "/state").json()
    first.stop()

    second = sandbox_factory(state_file=str(state_file), init_seconds=30)
    assert second.url != first.url
    [kept] = partner(second, "GET", "/channels/list").json()["channels"]
    assert {k: v for k, v in kept.items() if k != "apiUrl"} == {
        k: v for k, v in partner(second, "GET", f"/channels/{channel['id']}").json().items() if k != "apiUrl"
    }
    assert (kept["id"], kept["token"], kept["projectId"]) == (channel["id"], channel["token"], project["id"])
    assert kept["apiUrl"] == f"{second.url}/gate/"
    health = gate(kept, "GET", "health").json()
    assert health["status"]["text"] == "AUTH"
    assert health["user"] == {"id": "14155550999", "name": "Kept"}
    assert gate(kept, "GET", "settings").json()["webhooks"][0]["url"] == "https://portal.test/hooks"
    second_state = control(second, "GET", "/state").json()
    assert second_state["balance_days"] == first_state["balance_days"]
    assert second_state["clock_offset"] == first_state["clock_offset"]
    assert second_state["owner_id"] == first_state["owner_id"]
    assert "Kept" in [p["name"] for p in second_state["projects"]]


def test_a_corrupt_state_file_is_refused_loudly(tmp_path):
    state_file = tmp_path / "sandbox.json"
    state_file.write_text("{not json")
    with pytest.raises(SandboxStateError):
        SandboxServer(SandboxConfig(state_file=str(state_file)))


def test_server_stops_cleanly_with_open_connections(sandbox_factory):
    server = sandbox_factory()
    session = requests.Session()  # keeps its connection open (HTTP/1.1 keep-alive)
    assert session.get(server.url + "/_sandbox/clock", timeout=TIMEOUT).status_code == 200
    started = time.monotonic()
    server.stop()
    server.stop()  # idempotent
    assert time.monotonic() - started < 3
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/_sandbox/clock", timeout=TIMEOUT)
    session.close()


# ---- management command ------------------------------------------------------------------------------


def test_management_command_serves_until_interrupted(tmp_path):
    env = {**os.environ, "WHAPI_SANDBOX_TOKEN": "token-from-env", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "manage.py", "whapi_sandbox", "--port", "0", "--init-seconds", "0"]
    command += ["--state-file", str(tmp_path / "sandbox.json")]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "CONTROL-C" not in banner:
            banner += lines.get(timeout=max(0.1, deadline - time.monotonic()))
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner).group(1)
        projects = requests.get(url + "/projects", headers={"Authorization": "Bearer token-from-env"}, timeout=TIMEOUT)
        assert projects.status_code == 200
        assert requests.get(url + "/projects", timeout=TIMEOUT).status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(TIMEOUT)
    output = banner + "".join(lines.get() for _ in range(lines.qsize()))
    assert "/_sandbox/state" in output and "Whapi sandbox stopped." in output
    assert "Traceback" not in output
    assert "token-from-env" not in output
    assert (tmp_path / "sandbox.json").exists()


# ---- boundaries ----------------------------------------------------------------------------------


def test_the_sandbox_imports_nothing_from_the_product():
    imported = set()
    for path in (REPO_ROOT / "sandbox").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] in ("channels_app", "portal")}
