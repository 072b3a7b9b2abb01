"""Fault injection: misbehaviours of Whapi that tests switch on for a given number of occurrences.

A fault is a JSON object with a `kind` and a `count` (how many times it fires, default 1; it is
dropped once spent). Kinds:

- `status`: answer `status` (4xx/5xx) with a ResponseError body, without doing the work. Optional
  `retry_after` (seconds) adds a `Retry-After` header, optional `message` sets the error message.
- `delay`: sleep `seconds`, then handle the request normally (slow Whapi, client timeouts).
- `lost_response`: handle the request (the work IS done) and close the connection without answering.
- `webhook_duplicate`: each of the next `count` webhook deliveries is sent twice.
- `webhook_reorder`: the next `count` deliveries of one channel are held, then sent in reverse order
  (released early, still reversed, after `reorder_hold_seconds` if fewer arrive).
- `webhook_fail`: the next `count` delivery attempts fail without reaching the receiver (then retried).

Request faults (`status`, `delay`, `lost_response`) match on `method` (case-insensitive; absent or
"*" = any) and on the request path without its query string, either by `path` (a **prefix**, e.g.
"/channels" also matches "/channels/list") or by `path_regex` (a Python regex that must match the
**whole** path, e.g. "/channels" alone). Gate paths include their "/gate" prefix ("/gate/settings").
The control API (`/_sandbox/...`) is never faulted. Webhook faults may name a `channel_id`; without
one they apply to whichever channel delivers next.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

REQUEST_KINDS = ("status", "delay", "lost_response")
WEBHOOK_KINDS = ("webhook_duplicate", "webhook_reorder", "webhook_fail")

_COMMON_KEYS = {"kind", "count"}
_MATCH_KEYS = {"method", "path", "path_regex"}
_ALLOWED_KEYS = {
    "status": _COMMON_KEYS | _MATCH_KEYS | {"status", "retry_after", "message"},
    "delay": _COMMON_KEYS | _MATCH_KEYS | {"seconds"},
    "lost_response": _COMMON_KEYS | _MATCH_KEYS,
    "webhook_duplicate": _COMMON_KEYS | {"channel_id"},
    "webhook_reorder": _COMMON_KEYS | {"channel_id"},
    "webhook_fail": _COMMON_KEYS | {"channel_id"},
}
_MAX_DELAY_SECONDS = 120


@dataclass
class Fault:
    """One armed fault; `count` is what is left of it."""

    id: int
    kind: str
    count: int
    spec: dict[str, Any]
    path_regex: re.Pattern[str] | None = field(default=None, repr=False)

    def matches_request(self, method: str, path: str) -> bool:
        """Whether this (request) fault applies to `method` `path` (path without query)."""
        wanted = self.spec.get("method")
        if wanted not in (None, "*") and wanted.upper() != method.upper():
            return False
        if self.path_regex is not None:
            return self.path_regex.fullmatch(path) is not None
        return path.startswith(self.spec.get("path") or "/")

    def matches_channel(self, channel_id: str) -> bool:
        """Whether this (webhook) fault applies to deliveries of `channel_id`."""
        return self.spec.get("channel_id") in (None, channel_id)

    def as_dict(self) -> dict[str, Any]:
        """The fault as given, with its id and remaining count."""
        return {**self.spec, "id": self.id, "count": self.count}


def _check_number(spec: dict[str, Any], name: str, *, low: float, high: float, integer: bool) -> None:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and value != int(value)):
        raise ApiError(400, f"Fault field {name!r} must be a{'n integer' if integer else ' number'}")
    if not low <= value <= high:
        raise ApiError(400, f"Fault field {name!r} must be between {low} and {high}")


def validate_fault(spec: Any) -> tuple[dict[str, Any], re.Pattern[str] | None]:
    """Check a fault object; return it normalised and its compiled `path_regex`. Raises ApiError(400)."""
    if not isinstance(spec, dict):
        raise ApiError(400, "A fault must be a JSON object")
    kind = spec.get("kind")
    if kind not in _ALLOWED_KEYS:
        raise ApiError(400, "Unknown fault kind", details=f"kind must be one of {', '.join(_ALLOWED_KEYS)}")
    unknown = set(spec) - _ALLOWED_KEYS[kind]
    if unknown:
        raise ApiError(400, f"Unknown fields for a {kind} fault: {', '.join(sorted(unknown))}")
    clean = dict(spec)
    clean.setdefault("count", 1)
    _check_number(clean, "count", low=1, high=1_000_000, integer=True)
    clean["count"] = int(clean["count"])
    if kind == "status":
        _check_number(clean, "status", low=400, high=599, integer=True)
        if "retry_after" in clean:
            _check_number(clean, "retry_after", low=0, high=86_400, integer=True)
        if not isinstance(clean.get("message", ""), str):
            raise ApiError(400, "Fault field 'message' must be a string")
    if kind == "delay":
        _check_number(clean, "seconds", low=0, high=_MAX_DELAY_SECONDS, integer=False)
    for name in ("method", "path", "path_regex", "channel_id"):
        if name in clean and not isinstance(clean[name], str):
            raise ApiError(400, f"Fault field {name!r} must be a string")
    if "path" in clean and "path_regex" in clean:
        raise ApiError(400, "Give either 'path' (a prefix) or 'path_regex', not both")
    if "path" in clean and not clean["path"].startswith("/"):
        raise ApiError(400, "Fault field 'path' must start with '/'")
    regex = None
    if "path_regex" in clean:
        try:
            regex = re.compile(clean["path_regex"])
        except re.error as exc:
            raise ApiError(400, "Fault field 'path_regex' is not a valid regex", details=str(exc)) from exc
    return clean, regex


class FaultBook:
    """The armed faults. Thread-safe; its lock is a leaf (nothing is called while holding it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Any) -> dict[str, Any]:
        """Arm a fault (see the module docstring). Returns it with its id; raises ApiError(400) if invalid."""
        clean, regex = validate_fault(spec)
        with self._lock:
            fault = Fault(id=next(self._ids), kind=clean["kind"], count=clean["count"], spec=clean, path_regex=regex)
            self._faults.append(fault)
            return fault.as_dict()

    def list(self) -> list[dict[str, Any]]:
        """The armed faults, oldest first."""
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def _spend(self, fault: Fault, amount: int = 1) -> None:
        fault.count -= amount
        if fault.count <= 0:
            self._faults.remove(fault)

    def take_request_faults(self, method: str, path: str) -> dict[str, dict[str, Any]]:
        """Fire, for each request kind, the oldest matching fault; return them by kind (spent by one)."""
        fired: dict[str, dict[str, Any]] = {}
        with self._lock:
            for fault in list(self._faults):
                if fault.kind in REQUEST_KINDS and fault.kind not in fired and fault.matches_request(method, path):
                    fired[fault.kind] = fault.as_dict()
                    self._spend(fault)
        return fired

    def take_webhook_fault(self, kind: str, channel_id: str) -> dict[str, Any] | None:
        """Fire the oldest `kind` webhook fault for `channel_id` once; None when none is armed."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches_channel(channel_id):
                    fired = fault.as_dict()
                    self._spend(fault)
                    return fired
        return None

    def take_whole_webhook_fault(self, kind: str, channel_id: str) -> dict[str, Any] | None:
        """Fire the oldest `kind` webhook fault for `channel_id` entirely (all its count at once)."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches_channel(channel_id):
                    fired = fault.as_dict()
                    self._spend(fault, fault.count)
                    return fired
        return None
