"""Data of the sandbox: the records it keeps (projects, channels), Whapi's id formats and constants."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .gate_settings import default_settings

DAY_MS = 86_400_000
TRIAL_DAYS = 5  # `trial` = creationTS + 5 days (doc example)
FREE_DAYS = 6  # `activeTill` = creationTS + 6 days (doc example)
VERSION = "1.8.7-sandbox"
MODES = ("trial", "dev", "dev_archive", "live")
# 1-5 are documented or widely observed; 0, 6 and 7 are the sandbox's guesses (Whapi documents none).
STATUS_CODES = {"NOT_INIT": 0, "INIT": 1, "LAUNCH": 2, "QR": 3, "AUTH": 4, "ERROR": 5, "SYNC_ERROR": 6, "STOP": 7}
INITIALIZING = frozenset({"NOT_INIT", "INIT", "LAUNCH"})
# QR and AUTH follow from the phone link; forcing them would contradict it.
FORCEABLE = tuple(text for text in STATUS_CODES if text not in ("QR", "AUTH"))
INIT_MESSAGE = "Channel is initializing, try again later"
DEFAULT_PHONE = "14155550123"
DEFAULT_USER_NAME = "Sandbox User"
# A scanned QR link stays valid for this many rotations after it was replaced (a human fills a form).
QR_GRACE_PERIODS = 3
GATE_CALL_LOG_LIMIT = 1000

CHANNEL_ID_RE = re.compile(r"^(?:[A-Z]{6}-[A-Z0-9]{5}|[A-Z0-9]{12})$")
PROJECT_ID_RE = re.compile(r"^(?:[a-zA-Z0-9]{20}|default)$")
PHONE_RE = re.compile(r"^[0-9]{7,15}$")

ALNUM = string.ascii_letters + string.digits


def random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_channel_id() -> str:
    """An id like Whapi's, e.g. "SHAZAM-3HDYQ"."""
    return random_string(string.ascii_uppercase, 6) + "-" + random_string(string.ascii_uppercase + string.digits, 5)


@dataclass
class Project:
    """A partner project (Whapi groups channels in projects; one default project always exists)."""

    id: str
    name: str
    owner_id: str
    creation_ts: int
    is_default: bool = False

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "ownerId": self.owner_id,
            "creationTS": self.creation_ts,
            "users": [self.owner_id],
            "isDefault": self.is_default,
        }


@dataclass
class Channel:
    """A channel: its partner-side record plus the simulated gate (status, settings, linked phone)."""

    id: str
    name: str
    token: str
    project_id: str
    owner_id: str
    server: int
    creation_ts: int
    active_till: int
    trial: int | None
    free_until: int  # the initial activeTill: days before it were free, after it paid from the balance
    started_at: float  # sandbox seconds of the last (re)start
    qr_secret: str
    mode: str = "trial"
    manually_stopped: bool = False
    phone: str | None = None
    recurrent_payment_id: str | None = None
    prev_recurrent_payment_id: str | None = None
    settings: dict[str, Any] = field(default_factory=default_settings)
    user: dict[str, str] | None = None
    forced_status: str | None = None
    notified_status: str = "INIT"
    pairing: dict[str, str] | None = None
    gate_calls: list[dict[str, Any]] = field(default_factory=list)  # not persisted

    def expired(self, now: float) -> bool:
        return now * 1000 >= self.active_till

    def as_api(self, base_url: str, now: float) -> dict[str, Any]:
        """The partner API's Channel object."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "token": self.token,
            "apiUrl": f"{base_url}/gate/",
            "creationTS": self.creation_ts,
            "ownerId": self.owner_id,
            "activeTill": self.active_till,
            "server": self.server,
            "stopped": self.manually_stopped or self.expired(now),
            "trial": self.trial,
            "blocked": False,
            "status": "active",
            "mode": self.mode,
            "projectId": self.project_id,
        }
        for key, value in (
            ("phone", self.phone),
            ("recurrentPaymentId", self.recurrent_payment_id),
            ("prevRecurrentPaymentId", self.prev_recurrent_payment_id),
        ):
            if value is not None:
                data[key] = value
        return data


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return body


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value
