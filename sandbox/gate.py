"""Gate API and phone-side behaviour of the sandbox state, as a mixin of `SandboxState`.

Split from `state.py` by topic: this is what happens *inside* a channel (the gate calls a portal
makes with the channel token, and what the simulated phone does: scan, pairing, logout), while
`state.py` keeps the partner account, the clock, persistence and the status machine these rely on
(`lock`, `now`, `_status`, `_health`, `_refresh`, `_emit`, `_changed`, `_channel`, `channels`).
"""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .gate_settings import EVENT_METHODS, EVENT_TYPES, default_settings, merge_settings, validate_settings_patch
from .qr import new_pairing_code, qr_code_at, qr_seconds_left
from .records import (
    DEFAULT_PHONE,
    DEFAULT_USER_NAME,
    FORCEABLE,
    GATE_CALL_LOG_LIMIT,
    INIT_MESSAGE,
    INITIALIZING,
    PHONE_RE,
    QR_GRACE_PERIODS,
    Channel,
)

if TYPE_CHECKING:
    import threading

    from .config import SandboxConfig


class GateMixin:
    """Gate API operations (by channel token) and the phone's actions (by channel id)."""

    if TYPE_CHECKING:
        # Provided by SandboxState.
        lock: threading.RLock
        config: SandboxConfig
        base_url: str
        channels: dict[str, Channel]
        _by_token: dict[str, str]

        def now(self) -> float: ...
        def _status(self, channel: Channel, now: float) -> str: ...
        def _health(self, channel: Channel, now: float) -> dict[str, Any]: ...
        def _refresh(self, channel: Channel, now: float) -> None: ...
        def _emit(self, channel: Channel, event_type: str, event_method: str, data_key: str, data: Any) -> None: ...
        def _changed(self) -> None: ...
        def _channel(self, channel_id: str) -> Channel: ...

    # ---- gate API ----------------------------------------------------------------------------------

    def gate_call_context(self, token: str | None) -> tuple[str, str] | None:
        """(channel id, current status) of the channel a gate token belongs to; None if it is unknown."""
        with self.lock:
            channel_id = self._by_token.get(token or "")
            if channel_id is None:
                return None
            channel = self.channels[channel_id]
            now = self.now()
            self._refresh(channel, now)
            return channel_id, self._status(channel, now)

    def record_gate_call(
        self, channel_id: str, *, at: float, method: str, path: str, status: int, channel_status: str
    ) -> None:
        """Log a gate call (path without query: the token may be in it). Kept for the last 1000 calls."""
        with self.lock:
            channel = self.channels.get(channel_id)
            if channel is None:
                return
            channel.gate_calls.append(
                {
                    "at": at,
                    "method": method,
                    "path": path,
                    "status": status,
                    "channel_status": channel_status,
                    "during_init": channel_status in INITIALIZING,
                }
            )
            del channel.gate_calls[:-GATE_CALL_LOG_LIMIT]

    def _gate_channel(self, token: str | None, *, ready: bool = True) -> Channel:
        """The channel of a gate token (401 if unknown); with `ready`, 503 while initializing or stopped."""
        channel_id = self._by_token.get(token or "")
        if channel_id is None:
            raise ApiError(401, "Unauthorized: unknown channel token")
        channel = self.channels[channel_id]
        now = self.now()
        self._refresh(channel, now)
        if ready:
            status = self._status(channel, now)
            if status in INITIALIZING:
                raise ApiError(503, INIT_MESSAGE)
            if status == "STOP":
                raise ApiError(503, "Channel is stopped")
        return channel

    def gate_health(self, token: str | None) -> dict[str, Any]:
        """`GET /health`: answers in every status (the only gate call that does during init)."""
        with self.lock:
            return self._health(self._gate_channel(token, ready=False), self.now())

    def gate_settings(self, token: str | None) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._gate_channel(token).settings)

    def gate_patch_settings(self, token: str | None, body: Any) -> dict[str, Any]:
        """`PATCH /settings`: merge top-level fields; 400 "Wrong settings format" leaves them untouched."""
        with self.lock:
            channel = self._gate_channel(token)
            patch = validate_settings_patch(body)
            before = copy.deepcopy(channel.settings)
            channel.settings, changes = merge_settings(channel.settings, patch)
            self._changed()
            return {"before_update": before, "after_update": copy.deepcopy(channel.settings), "changes": changes}

    def gate_reset_settings(self, token: str | None) -> dict[str, Any]:
        with self.lock:
            self._gate_channel(token).settings = default_settings()
            self._changed()
            return {"success": True}

    def gate_allowed_events(self, token: str | None) -> list[dict[str, str]]:
        with self.lock:
            self._gate_channel(token)
            return [{"type": t, "method": m} for t in EVENT_TYPES for m in EVENT_METHODS]

    def _qr_link(self, channel: Channel, now: float) -> str:
        code = qr_code_at(channel.qr_secret, now, self.config.qr_expire_seconds)
        return f"{self.base_url}/_sandbox/scan/{channel.id}?code={code}"

    def gate_qr(self, token: str | None) -> dict[str, Any]:
        """The current QR link (what the PNG encodes) and its `expire`; 409 when already linked."""
        with self.lock:
            channel = self._gate_channel(token)
            if channel.user:
                raise ApiError(409, "Channel is already authenticated")
            now = self.now()
            return {"link": self._qr_link(channel, now), "expire": qr_seconds_left(now, self.config.qr_expire_seconds)}

    def gate_pairing_code(self, token: str | None, phone: str) -> dict[str, str]:
        """`GET /users/login/{phone}`: a pairing code to type on that phone (see `pair`)."""
        with self.lock:
            channel = self._gate_channel(token)
            if not PHONE_RE.match(phone):
                raise ApiError(400, "Invalid phone number: 7 to 15 digits expected")
            if channel.user:
                raise ApiError(409, "Channel is already authenticated")
            channel.pairing = {"phone": phone, "code": new_pairing_code()}
            self._changed()
            return {"code": channel.pairing["code"]}

    def gate_logout(self, token: str | None) -> dict[str, Any]:
        """`POST /users/logout`: unlink the phone (users.delete, then health QR); 409 when none is linked."""
        with self.lock:
            channel = self._gate_channel(token)
            self._unlink(channel)
            return {"success": True}

    def gate_profile(self, token: str | None) -> dict[str, Any]:
        with self.lock:
            channel = self._gate_channel(token)
            if not channel.user:
                raise ApiError(409, "Channel is not authenticated")
            return {
                "name": channel.user["name"],
                "about": "Hey there! I am using WhatsApp.",
                "icon": "",
                "icon_full": "",
            }

    def gate_limits(self, token: str | None) -> dict[str, Any] | None:
        """`GET /limits`: trial/dev channels have limits (the trial numbers); None (204) for live ones."""
        with self.lock:
            channel = self._gate_channel(token)
            if channel.mode in ("live", ""):
                return None
            return {"messages": 150, "chats": [], "checks": 0, "requests": max(0, 1000 - len(channel.gate_calls))}

    # ---- linking (the phone side) ------------------------------------------------------------------

    def _link(self, channel: Channel, phone: str, name: str) -> dict[str, Any]:
        now = self.now()
        status = self._status(channel, now)
        if status in INITIALIZING:
            raise ApiError(503, INIT_MESSAGE)
        if status == "STOP":
            raise ApiError(503, "Channel is stopped")
        if channel.user:
            raise ApiError(409, "Channel is already authenticated")
        if not isinstance(phone, str) or not PHONE_RE.match(phone):
            raise ApiError(400, "phone must be 7 to 15 digits")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name must be a non-empty string")
        channel.user = {"id": phone, "name": name}
        channel.forced_status = None
        channel.pairing = None
        self._emit(channel, "users", "post", "user", dict(channel.user))
        self._refresh(channel, now)
        self._changed()
        return {"success": True, "user": dict(channel.user)}

    def _unlink(self, channel: Channel) -> None:
        if not channel.user:
            raise ApiError(409, "Channel is not authenticated")
        user, channel.user = channel.user, None
        if channel.forced_status in ("ERROR", "SYNC_ERROR"):
            channel.forced_status = None  # relinking is Whapi's advice for these
        self._emit(channel, "users", "delete", "user", user)
        self._refresh(channel, self.now())
        self._changed()

    def scan(
        self, channel_id: str, *, phone: str = DEFAULT_PHONE, name: str = DEFAULT_USER_NAME, code: str | None = None
    ) -> dict[str, Any]:
        """A phone scans the channel's QR: users.post, then health AUTH.

        503 while initializing or stopped, 409 if a phone is already linked, 410 if `code` (the one
        in the QR link) is given and older than QR_GRACE_PERIODS rotations.
        """
        with self.lock:
            channel = self._channel(channel_id)
            if code is not None and not self.qr_code_valid(channel_id, code):
                raise ApiError(410, "This QR code has expired; scan the current one")
            return self._link(channel, phone, name)

    def qr_code_valid(self, channel_id: str, code: Any) -> bool:
        """Whether `code` is the channel's current QR code or one replaced at most QR_GRACE_PERIODS ago."""
        with self.lock:
            channel = self._channel(channel_id)
            if not isinstance(code, str):
                return False
            now = self.now()
            return any(
                secrets.compare_digest(
                    code, qr_code_at(channel.qr_secret, now, self.config.qr_expire_seconds, periods_back=n)
                )
                for n in range(QR_GRACE_PERIODS + 1)
            )

    def pair(self, channel_id: str, *, code: Any, name: str = DEFAULT_USER_NAME) -> dict[str, Any]:
        """The phone enters the pairing code from `GET /users/login/{phone}`: linked like a scan."""
        with self.lock:
            channel = self._channel(channel_id)
            if channel.pairing is None:
                raise ApiError(409, "No pairing code was requested for this channel")
            if not isinstance(code, str) or code.strip().upper() != channel.pairing["code"]:
                raise ApiError(400, "Wrong pairing code")
            return self._link(channel, channel.pairing["phone"], name)

    def phone_logout(self, channel_id: str) -> dict[str, Any]:
        """The phone logs the channel out (any status): users.delete, then health QR; 409 if not linked."""
        with self.lock:
            self._unlink(self._channel(channel_id))
            return {"success": True}

    def force_status(self, channel_id: str, text: str | None) -> dict[str, Any]:
        """Force the health status (ERROR, SYNC_ERROR, STOP, ...); None or "" returns to the normal flow.

        A forced status is also cleared by a restart, a scan, or a logout (for ERROR/SYNC_ERROR).
        """
        if text not in (None, "") and text not in FORCEABLE:
            raise ApiError(400, f"text must be one of {', '.join(FORCEABLE)}, or null to clear")
        with self.lock:
            channel = self._channel(channel_id)
            channel.forced_status = text or None
            now = self.now()
            self._refresh(channel, now)
            self._changed()
            return self._health(channel, now)
