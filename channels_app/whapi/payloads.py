"""What Whapi answers, as typed objects: `WhapiProject`, `WhapiChannel`, `Health`, `QrCode`.

Each type has a `from_payload` that is tolerant for optional fields and strict (ValueError) for the
ones we cannot do without. Two of them also read webhook bodies:

    Health.from_payload    the `health` object of a channel.post webhook, docs/whapi.md §3 (ValueError)
    QrCode.from_payload    the `qr` object of a channel.patch webhook, docs/whapi.md §3 (ValueError)

Unknowns of docs/whapi.md §6 are tolerated rather than guessed: unknown status texts are kept as
sent, a QR's base64 may or may not carry a `data:` prefix, optional channel fields may be missing.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_DATA_URI_RE = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)
# Below this a "millisecond" timestamp would fall before 1973: such values are seconds (the spec's
# own examples use seconds although Whapi's real answers use milliseconds, docs/whapi.md §0).
_SECONDS_CUTOFF = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


# ------------------------------------------------------------------------------------------------
# Parsing helpers: tolerant for optional fields, strict (ValueError) for the ones we cannot do without.
# optional_int and optional_str are public within the package: the transport and clients use them too.
# ------------------------------------------------------------------------------------------------
def _timestamp(value: Any) -> datetime | None:
    """Whapi's millisecond timestamp as an aware UTC datetime; None when missing or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not value > 0:
        return None
    try:
        if value < _SECONDS_CUTOFF:
            return _EPOCH + timedelta(seconds=value)
        return _EPOCH + timedelta(milliseconds=value)
    except (OverflowError, ValueError):
        return None


def optional_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _required_int(payload: dict[str, Any], key: str, what: str) -> int:
    value = optional_int(payload.get(key))
    if value is None:
        raise ValueError(f"{what} has no numeric {key!r}")
    return value


def optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _required_id(payload: Any, what: str) -> str:
    if not isinstance(payload, dict):
        raise ValueError(f"{what} is not a JSON object")
    value = optional_str(payload.get("id"))
    if value is None:
        raise ValueError(f"{what} has no 'id'")
    return value


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# ------------------------------------------------------------------------------------------------
# Objects
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhapiProject:
    """A partner project (docs/whapi.md §1.2 Project)."""

    id: str
    name: str
    creation_ts: datetime | None
    is_default: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Any) -> WhapiProject:
        """Build from a Project object. Raises ValueError when it is not an object with an `id`."""
        project_id = _required_id(payload, "project")
        return cls(
            id=project_id,
            name=optional_str(payload.get("name")) or "",
            creation_ts=_timestamp(payload.get("creationTS")),
            is_default=payload.get("isDefault") is True,
            raw=payload,
        )


@dataclass(frozen=True)
class WhapiChannel:
    """A partner channel (docs/whapi.md §1.2 Channel). Timestamps are aware UTC datetimes made from
    milliseconds.

    `token` and `api_url` are always set on the result of `PartnerClient.create_channel`; elsewhere
    they are None when Whapi left them out.
    """

    id: str
    name: str
    project_id: str | None
    api_url: str | None
    token: str | None = field(repr=False)
    server: int | None
    mode: str
    status: str | None
    stopped: bool
    creation_ts: datetime | None
    active_till: datetime | None
    trial: datetime | None
    blocked: bool | None
    phone: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Any) -> WhapiChannel:
        """Build from a Channel object. Raises ValueError when it is not an object with an `id`."""
        channel_id = _required_id(payload, "channel")
        return cls(
            id=channel_id,
            name=optional_str(payload.get("name")) or "",
            project_id=optional_str(payload.get("projectId")),
            api_url=optional_str(payload.get("apiUrl")),
            token=optional_str(payload.get("token")),
            server=optional_int(payload.get("server")),
            # The spec: "empty means live".
            mode=optional_str(payload.get("mode")) or "live",
            status=optional_str(payload.get("status")),
            stopped=payload.get("stopped") is True,
            creation_ts=_timestamp(payload.get("creationTS")),
            active_till=_timestamp(payload.get("activeTill")),
            trial=_timestamp(payload.get("trial")),
            blocked=_optional_bool(payload.get("blocked")),
            phone=optional_str(payload.get("phone")),
            raw=payload,
        )


@dataclass(frozen=True)
class Health:
    """A channel's health (docs/whapi.md §2 Health): from `GET /health` or a channel.post webhook's
    `health` object.

    `status_text` is upper-cased and keyed on rather than `status_code` (codes are only partly known);
    texts outside the spec's enum, such as STOP, are kept as sent; "UNKNOWN" when there is none.
    """

    start_at: int
    uptime: int
    status_code: int | None
    status_text: str
    user_id: str | None
    user_name: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Any) -> Health:
        """Build from a Health object. Raises ValueError when it is not an object or lacks a numeric
        `start_at` or `uptime` (both required by the spec; they order health events, docs/whapi.md §3)."""
        if not isinstance(payload, dict):
            raise ValueError("health is not a JSON object")
        status = payload.get("status")
        if isinstance(status, dict):
            code, text = optional_int(status.get("code")), optional_str(status.get("text"))
        else:
            code, text = None, optional_str(status)
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        return cls(
            start_at=_required_int(payload, "start_at", "health"),
            uptime=_required_int(payload, "uptime", "health"),
            status_code=code,
            status_text=text.upper() if text else "UNKNOWN",
            user_id=optional_str(user.get("id")),
            user_name=optional_str(user.get("name")) or optional_str(user.get("pushname")),
            raw=payload,
        )


@dataclass(frozen=True)
class QrCode:
    """A login QR (docs/whapi.md §2 QR). `base64` never carries a `data:` prefix, whether or not
    Whapi sent one.

    `status` is upper-cased ("OK", "WAITING": not ready yet, ask again; "TIMEOUT", "ERROR", or
    anything else Whapi sends; "UNKNOWN" when missing): check `base64` before showing an image.
    """

    status: str
    base64: str | None
    expire: int | None
    rowdata: str | None

    @classmethod
    def from_payload(cls, payload: Any) -> QrCode:
        """Build from a QR object (also a channel.patch webhook's `qr`). Raises ValueError if not an object."""
        if not isinstance(payload, dict):
            raise ValueError("QR answer is not a JSON object")
        image = optional_str(payload.get("base64"))
        if image:
            # Unknown whether Whapi prefixes the image with `data:image/png;base64,` (docs/whapi.md §6):
            # accept both.
            image = _DATA_URI_RE.sub("", image).strip() or None
        status = optional_str(payload.get("status"))
        return cls(
            status=status.upper() if status else "UNKNOWN",
            base64=image,
            expire=optional_int(payload.get("expire")),
            rowdata=optional_str(payload.get("rowdata")),
        )

    @property
    def png(self) -> bytes | None:
        """The decoded image bytes, or None when there is no image or it is not valid base64."""
        if not self.base64:
            return None
        text = "".join(self.base64.split()).translate(_URLSAFE_TO_STANDARD)
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None

    @property
    def data_uri(self) -> str | None:
        """The image as a `data:image/png;base64,...` URI for an <img> tag, or None."""
        return f"data:image/png;base64,{self.base64}" if self.base64 else None
