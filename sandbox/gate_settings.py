"""Channel settings of the gate API (`GET/PATCH/DELETE /settings`): defaults, validation, merge.

The sandbox is stricter than Whapi is known to be: an unknown field answers 400 "Wrong settings
format" instead of being ignored, so a typo in the portal shows up in tests rather than in production.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError

EVENT_TYPES = (
    "messages",
    "statuses",
    "chats",
    "contacts",
    "groups",
    "presences",
    "calls",
    "channel",
    "users",
    "labels",
    "service",
    # Deprecated aliases Whapi still accepts.
    "message",
    "ack",
    "chat",
    "status",
)
EVENT_METHODS = ("post", "put", "patch", "delete")
WEBHOOK_MODES = ("body", "path", "method")
MAX_WEBHOOK_HEADERS = 5
MEDIA_KINDS = ("image", "audio", "voice", "video", "document", "sticker")

DEFAULT_SETTINGS: dict[str, Any] = {
    "webhooks": [],
    "callback_persist": False,
    "callback_backoff_delay_ms": 3000,
    "max_callback_backoff_delay_ms": 900000,
    "media": {"auto_download": ["image", "document"], "init_avatars": False},
    "proxy": "",
    "offline_mode": False,
    "full_history": False,
    "pdo_sync": True,
    "ignored_presences": [],
}

# The spec's default `events` of a webhook (legacy names), used when a webhook names none.
_DEFAULT_EVENTS = [{"type": "message", "method": "put"}]


def default_settings() -> dict[str, Any]:
    """A fresh copy of the settings a new channel starts with."""
    return copy.deepcopy(DEFAULT_SETTINGS)


def _wrong(detail: str) -> ApiError:
    return ApiError(400, "Wrong settings format", details=detail)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong(f"{name} must be a boolean")
    return value


def _int_range(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _wrong(f"{name} must be an integer from {low} to {high}")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong(f"{name} must be a string")
    return value


def _webhook(index: int, hook: Any) -> dict[str, Any]:
    where = f"webhooks[{index}]"
    if not isinstance(hook, dict):
        raise _wrong(f"{where} must be an object")
    unknown = set(hook) - {"url", "mode", "events", "headers", "webhook_max_age_seconds", "send_undecrypted_ad"}
    if unknown:
        raise _wrong(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    url = hook.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _wrong(f"{where}.url must be an http(s) URL string")
    mode = hook.get("mode", "body")
    if mode not in WEBHOOK_MODES:
        raise _wrong(f"{where}.mode must be one of {', '.join(WEBHOOK_MODES)}")
    events = hook.get("events", _DEFAULT_EVENTS)
    if not isinstance(events, list):
        raise _wrong(f"{where}.events must be a list")
    clean_events = []
    for position, event in enumerate(events):
        if (
            not isinstance(event, dict)
            or set(event) != {"type", "method"}
            or event["type"] not in EVENT_TYPES
            or event["method"] not in EVENT_METHODS
        ):
            raise _wrong(f"{where}.events[{position}] must be {{type, method}} with a known type and method")
        clean_events.append({"type": event["type"], "method": event["method"]})
    clean: dict[str, Any] = {"url": url, "mode": mode, "events": clean_events}
    if "headers" in hook:
        headers = hook["headers"]
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items()
        ):
            raise _wrong(f"{where}.headers must be an object of string to string")
        if len(headers) > MAX_WEBHOOK_HEADERS:
            raise _wrong(f"{where}.headers allows at most {MAX_WEBHOOK_HEADERS} entries")
        if any("\r" in k + v or "\n" in k + v for k, v in headers.items()):
            raise _wrong(f"{where}.headers must not contain line breaks")
        clean["headers"] = dict(headers)
    if hook.get("webhook_max_age_seconds") is not None:
        clean["webhook_max_age_seconds"] = _int_range(
            f"{where}.webhook_max_age_seconds", hook["webhook_max_age_seconds"], 15, 172800
        )
    if "send_undecrypted_ad" in hook:
        clean["send_undecrypted_ad"] = _bool(f"{where}.send_undecrypted_ad", hook["send_undecrypted_ad"])
    return clean


def _webhooks(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _wrong("webhooks must be a list of objects")
    return [_webhook(index, hook) for index, hook in enumerate(value)]


def _media(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"auto_download", "init_avatars"}:
        raise _wrong("media must be an object with auto_download and/or init_avatars")
    clean = dict(value)
    if "auto_download" in value and (
        not isinstance(value["auto_download"], list) or any(kind not in MEDIA_KINDS for kind in value["auto_download"])
    ):
        raise _wrong(f"media.auto_download must be a list of {', '.join(MEDIA_KINDS)}")
    if "init_avatars" in value:
        _bool("media.init_avatars", value["init_avatars"])
    return clean


def _string_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _wrong(f"{name} must be a list of strings")
    return list(value)


_VALIDATORS = {
    "webhooks": _webhooks,
    "callback_persist": lambda v: _bool("callback_persist", v),
    "callback_backoff_delay_ms": lambda v: _int_range("callback_backoff_delay_ms", v, 3000, 15000),
    "max_callback_backoff_delay_ms": lambda v: _int_range("max_callback_backoff_delay_ms", v, 600000, 3600000),
    "media": _media,
    "proxy": lambda v: _str("proxy", v),
    "mobile_proxy": lambda v: _str("mobile_proxy", v),
    "offline_mode": lambda v: _bool("offline_mode", v),
    "full_history": lambda v: _bool("full_history", v),
    "pdo_sync": lambda v: _bool("pdo_sync", v),
    "ignored_presences": lambda v: _string_list("ignored_presences", v),
    # Deprecated fields the spec example still carries.
    "on_call_pager": lambda v: _str("on_call_pager", v),
    "pass_through": lambda v: _bool("pass_through", v),
    "sent_status": lambda v: _bool("sent_status", v),
}


def validate_settings_patch(patch: Any) -> dict[str, Any]:
    """Check a `PATCH /settings` body; return it normalised (webhook `mode`/`events` defaults filled in).

    Raises ApiError(400, "Wrong settings format") with `details` naming the first problem.
    """
    if not isinstance(patch, dict):
        raise _wrong("the body must be a JSON object")
    clean = {}
    for name, value in patch.items():
        validator = _VALIDATORS.get(name)
        if validator is None:
            raise _wrong(f"unknown field {name!r}")
        clean[name] = validator(value)
    return clean


def merge_settings(current: dict[str, Any], patch: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Apply a validated patch: top-level fields replace whole (so `webhooks` is replaced, not merged).

    Returns the new settings and the names of the fields whose value changed, in request order.
    """
    updated = copy.deepcopy(current)
    changes = []
    for name, value in patch.items():
        if updated.get(name) != value:
            changes.append(name)
        updated[name] = copy.deepcopy(value)
    return updated, changes
