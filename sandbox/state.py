"""The in-memory model of the sandbox: the partner account, its projects and channels, and the clock.

Every Whapi rule the sandbox enforces (ids, limits, balance, the channel status machine) lives
here or in its mixin `gate.py` (gate calls and the phone's actions); the HTTP layer only parses
requests and renders answers. All public methods take `lock` (an RLock,
so tests may hold it around several calls) and return plain JSON-able data, never live objects.
Business errors are raised as ApiError with the status code Whapi would answer.

Status machine of a channel (`effective status`, keyed by text like Whapi's `health.status.text`):
STOP if stopped by the partner or past `activeTill`; else a status forced through the control API;
else INIT for `init_seconds * launch_fraction` after the last (re)start, LAUNCH until `init_seconds`;
then AUTH if a phone is linked, otherwise QR. Every change of the effective status is announced with
a `channel`/`post` webhook carrying the full health object, detected either by the operation that
caused it or by `tick()` (time-driven changes), whichever comes first.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import secrets
import tempfile
import threading
import time
from typing import Any

from .config import SandboxConfig, config_as_dict, validate_config_changes
from .errors import ApiError
from .faults import FaultBook
from .gate import GateMixin
from .gate_settings import default_settings, merge_settings, validate_settings_patch
from .qr import qr_seconds_left
from .records import (
    ALNUM,
    CHANNEL_ID_RE,
    DAY_MS,
    FORCEABLE,
    FREE_DAYS,
    INITIALIZING,
    MODES,
    PHONE_RE,
    PROJECT_ID_RE,
    STATUS_CODES,
    TRIAL_DAYS,
    VERSION,
    Channel,
    Project,
    new_channel_id,
    optional_str,
    random_string,
    require_object,
)
from .webhooks import WebhookDispatcher

STATE_FILE_VERSION = 1
# What an item of `register_channels` may give.
_REGISTER_FIELDS = {
    *("id", "token", "name", "project_id", "mode", "user", "settings", "forced_status", "active_till", "started_at")
}


class SandboxStateError(Exception):
    """The state file exists but cannot be loaded."""


class SandboxState(GateMixin):
    """The whole simulated Whapi account. Thread-safe through `lock`; see the module docstring."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        base_url: str = "",
        faults: FaultBook | None = None,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self.config = config
        self.base_url = base_url
        self.lock = threading.RLock()
        self.faults = faults or FaultBook()
        self.webhooks = webhooks
        self._blank()
        if config.state_file is not None and os.path.exists(config.state_file):
            self._load(os.fspath(config.state_file))
        else:
            self._save()

    def _blank(self) -> None:
        self.clock_offset = 0.0
        self.owner_id = random_string(ALNUM, 28)
        self.balance_days = self.config.balance_days
        # PartnerSettings (docs/whapi.md §1.2, §1.4): the `days` webhook fires when the balance falls
        # below `days_limit`.
        self.partner_settings: dict[str, Any] = {"webhooks": [], "days_limit": 30, "noChat": False}
        self.create_times: list[float] = []
        self.projects: dict[str, Project] = {}
        self.channels: dict[str, Channel] = {}
        self._by_token: dict[str, str] = {}
        default = Project(
            id=random_string(ALNUM, 20),
            name="Default project",
            owner_id=self.owner_id,
            creation_ts=self._now_ms(),
            is_default=True,
        )
        self.projects[default.id] = default

    # ---- clock and persistence ---------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox clock in epoch seconds: real time plus the offset `advance_clock` added."""
        return time.time() + self.clock_offset

    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance_clock(self, seconds: float) -> dict[str, float]:
        """Move the sandbox clock forward; time-driven changes (init end, expiry) happen at once."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 10 * 365 * 86400:
            raise ApiError(400, "advance must be a number of seconds, 0 or more (the clock never goes back)")
        with self.lock:
            self.clock_offset += float(seconds)
            self._changed()
            self.tick()
            return {"now": self.now(), "offset": self.clock_offset}

    def _changed(self) -> None:
        self._save()

    def _save(self) -> None:
        """Write the state file atomically (temp file + rename) when one is configured."""
        if self.config.state_file is None:
            return
        path = os.fspath(self.config.state_file)
        data = {
            "version": STATE_FILE_VERSION,
            "owner_id": self.owner_id,
            "balance_days": self.balance_days,
            "clock_offset": self.clock_offset,
            "create_times": self.create_times,
            "projects": [dataclasses.asdict(p) for p in self.projects.values()],
            "channels": [
                {k: v for k, v in dataclasses.asdict(c).items() if k != "gate_calls"} for c in self.channels.values()
            ],
        }
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        handle, temp_path = tempfile.mkstemp(dir=directory, prefix=".sandbox-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as temp:
                json.dump(data, temp, indent=1)
            os.replace(temp_path, path)
        except BaseException:
            os.unlink(temp_path)
            raise

    def _load(self, path: str) -> None:
        try:
            with open(path) as source:
                data = json.load(source)
            if data.get("version") != STATE_FILE_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            projects = {p["id"]: Project(**p) for p in data["projects"]}
            channels = {c["id"]: Channel(**c) for c in data["channels"]}
            owner_id, balance = str(data["owner_id"]), int(data["balance_days"])
            offset, create_times = float(data["clock_offset"]), [float(t) for t in data["create_times"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SandboxStateError(f"Cannot load the sandbox state file {path}: {exc}") from exc
        self.owner_id, self.balance_days, self.clock_offset, self.create_times = owner_id, balance, offset, create_times
        self.projects, self.channels = projects, channels
        self._by_token = {c.token: c.id for c in channels.values()}

    def reset(self) -> None:
        """Start over: one default project, full balance, no channels, clock offset 0, no faults, no log."""
        with self.lock:
            self._blank()
            self.faults.clear()
            if self.webhooks is not None:
                self.webhooks.reset()
            self._changed()

    def update_config(self, changes: Any) -> dict[str, Any]:
        """Apply `POST /_sandbox/config` changes (validated first; `balance_days` also sets the balance)."""
        clean = validate_config_changes(changes)
        with self.lock:
            for name, value in clean.items():
                setattr(self.config, name, value)
            if "balance_days" in clean:
                self.balance_days = clean["balance_days"]
                self._changed()
            self.tick()
            return config_as_dict(self.config)

    # ---- status machine ----------------------------------------------------------------------------

    def _status(self, channel: Channel, now: float) -> str:
        if channel.manually_stopped or channel.expired(now):
            return "STOP"
        if channel.forced_status:
            return channel.forced_status
        elapsed = now - channel.started_at
        if elapsed < self.config.init_seconds * self.config.launch_fraction:
            return "INIT"
        if elapsed < self.config.init_seconds:
            return "LAUNCH"
        return "AUTH" if channel.user else "QR"

    def _health(self, channel: Channel, now: float) -> dict[str, Any]:
        status = self._status(channel, now)
        health: dict[str, Any] = {
            "start_at": int(channel.started_at),
            "uptime": max(0, int(now - channel.started_at)),
            "status": {"code": STATUS_CODES[status], "text": status},
            "channel_id": channel.id,
            "version": VERSION,
        }
        if channel.user and status not in INITIALIZING and status != "STOP":
            health["user"] = dict(channel.user)
        return health

    def _emit(self, channel: Channel, event_type: str, event_method: str, data_key: str, data: dict[str, Any]) -> None:
        if self.webhooks is not None and channel.settings.get("webhooks"):
            self.webhooks.enqueue(
                channel_id=channel.id,
                event_type=event_type,
                event_method=event_method,
                data_key=data_key,
                data=data,
                webhooks=copy.deepcopy(channel.settings["webhooks"]),
            )

    def _refresh(self, channel: Channel, now: float) -> None:
        """Announce the channel's status if it changed since the last announcement."""
        status = self._status(channel, now)
        if status != channel.notified_status:
            channel.notified_status = status
            self._emit(channel, "channel", "post", "health", self._health(channel, now))
            self._changed()

    def tick(self) -> None:
        """Detect time-driven status changes (end of init, expiry) of every channel; called by the ticker."""
        with self.lock:
            now = self.now()
            for channel in list(self.channels.values()):
                self._refresh(channel, now)

    def _restart(self, channel: Channel, now: float) -> None:
        channel.started_at = now
        channel.forced_status = None
        channel.pairing = None

    # ---- lookups -----------------------------------------------------------------------------------

    def _channel(self, channel_id: str) -> Channel:
        if not isinstance(channel_id, str) or not CHANNEL_ID_RE.match(channel_id):
            raise ApiError(400, "Invalid channel id")
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ApiError(404, "Channel not found")
        self._refresh(channel, self.now())
        return channel

    def _project(self, project_id: str) -> Project:
        if not isinstance(project_id, str) or not PROJECT_ID_RE.match(project_id):
            raise ApiError(400, "Invalid project id")
        if project_id == "default":
            return next(p for p in self.projects.values() if p.is_default)
        project = self.projects.get(project_id)
        if project is None:
            raise ApiError(404, "Project not found")
        return project

    def check_partner_token(self, token: str | None) -> bool:
        """Whether `token` is the partner token (constant-time comparison)."""
        return token is not None and secrets.compare_digest(token.encode(), self.config.partner_token.encode())

    # ---- partner API: projects ---------------------------------------------------------------------

    @staticmethod
    def _page(items: list[Any], key: str, count: int, offset: int) -> dict[str, Any]:
        return {key: items[offset : offset + count], "count": count, "total": len(items), "offset": offset}

    def list_projects(self, *, count: int, offset: int, uid: str | None = None) -> dict[str, Any]:
        """`GET /projects`: a page of projects, oldest first."""
        with self.lock:
            projects = [] if uid not in (None, "me", self.owner_id) else list(self.projects.values())
            return self._page([p.as_api() for p in projects], "projects", count, offset)

    def create_project(self, body: Any) -> dict[str, Any]:
        """`PUT /projects`: a new project named `name`."""
        name = require_object(body).get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        with self.lock:
            project = Project(
                id=random_string(ALNUM, 20), name=name, owner_id=self.owner_id, creation_ts=self._now_ms()
            )
            self.projects[project.id] = project
            self._changed()
            return project.as_api()

    def get_project(self, project_id: str) -> dict[str, Any]:
        with self.lock:
            return self._project(project_id).as_api()

    def update_project(self, project_id: str, body: Any) -> dict[str, Any]:
        name = require_object(body).get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        with self.lock:
            self._project(project_id).name = name
            self._changed()
            return {"success": True}

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """Delete a project; the default one and projects holding channels refuse (400, sandbox choice)."""
        with self.lock:
            project = self._project(project_id)
            if project.is_default:
                raise ApiError(400, "The default project cannot be deleted")
            if any(c.project_id == project.id for c in self.channels.values()):
                raise ApiError(400, "The project still has channels")
            del self.projects[project.id]
            self._changed()
            return {"success": True}

    # ---- partner API: channels ---------------------------------------------------------------------

    def _channel_fields(self, body: Any) -> dict[str, Any]:
        """Validate a create/update body (`name` and `projectId` required, as the spec marks them)."""
        body = require_object(body)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        if not isinstance(body.get("projectId"), str) or not body["projectId"]:
            raise ApiError(400, "projectId is required")
        phone = optional_str(body, "phone")
        if phone is not None and not PHONE_RE.match(phone):
            raise ApiError(400, "phone must be 7 to 15 digits")
        return {
            "name": name,
            "project_id": self._project(body["projectId"]).id,
            "phone": phone,
            "recurrent_payment_id": optional_str(body, "recurrentPaymentId"),
            "prev_recurrent_payment_id": optional_str(body, "prevRecurrentPaymentId"),
        }

    def _retry_after(self, now: float) -> int | None:
        """Seconds until a creation slot frees, or None when one is free now."""
        window, limit = self.config.create_window, self.config.create_limit
        self.create_times = [t for t in self.create_times if t > now - window]
        if len(self.create_times) < limit:
            return None
        if limit <= 0:
            return max(1, math.ceil(window))
        frees_at = sorted(self.create_times)[len(self.create_times) - limit] + window
        return max(1, math.ceil(frees_at - now))

    def create_channel(self, body: Any) -> dict[str, Any]:
        """`PUT /channels`: 400 bad body, 404 unknown project, 429 over the creation limit (not counted)."""
        with self.lock:
            fields = self._channel_fields(body)
            now = self.now()
            retry_after = self._retry_after(now)
            if retry_after is not None:
                raise ApiError(
                    429,
                    f"Too many channels created: at most {self.config.create_limit} "
                    f"in {self.config.create_window:g} seconds",
                    headers={"Retry-After": str(retry_after)},
                )
            now_ms = int(now * 1000)
            channel_id = new_channel_id()
            while channel_id in self.channels:
                channel_id = new_channel_id()
            channel = Channel(
                id=channel_id,
                token=random_string(ALNUM, 32),
                owner_id=self.owner_id,
                server=random.randint(1, 9),  # noqa: S311 - cosmetic, like Whapi's server number
                creation_ts=now_ms,
                active_till=now_ms + FREE_DAYS * DAY_MS,
                trial=now_ms + TRIAL_DAYS * DAY_MS,
                free_until=now_ms + FREE_DAYS * DAY_MS,
                started_at=now,
                qr_secret=secrets.token_hex(16),
                **fields,
            )
            self.channels[channel.id] = channel
            self._by_token[channel.token] = channel.id
            self.create_times.append(now)
            channel.notified_status = self._status(channel, now)
            self._changed()
            return channel.as_api(self.base_url, now)

    def list_channels(
        self, *, count: int, offset: int, uid: str | None = None, project_id: str | None = None
    ) -> dict[str, Any]:
        """`GET /channels/list[/{projectId}]`: a page of channels, oldest first."""
        with self.lock:
            now = self.now()
            project = self._project(project_id).id if project_id is not None else None
            channels = [] if uid not in (None, "me", self.owner_id) else list(self.channels.values())
            items = [c.as_api(self.base_url, now) for c in channels if project in (None, c.project_id)]
            return self._page(items, "channels", count, offset)

    def get_channel(self, channel_id: str) -> dict[str, Any]:
        with self.lock:
            return self._channel(channel_id).as_api(self.base_url, self.now())

    def update_channel(self, channel_id: str, body: Any) -> dict[str, Any]:
        """`PATCH /channels/{id}`: replace name, project, phone and payment ids."""
        with self.lock:
            channel = self._channel(channel_id)
            for name, value in self._channel_fields(body).items():
                setattr(channel, name, value)
            self._changed()
            return {"success": True}

    def delete_channel(self, channel_id: str) -> dict[str, Any]:
        """`DELETE /channels/{id}`: whole unused paid days go back to the balance (free days do not)."""
        with self.lock:
            channel = self._channel(channel_id)
            unused_ms = channel.active_till - max(self._now_ms(), channel.free_until)
            self.balance_days += max(0, unused_ms) // DAY_MS
            del self.channels[channel.id]
            del self._by_token[channel.token]
            self._changed()
            return {"success": True}

    def start_channel(self, channel_id: str) -> dict[str, Any]:
        """Start a stopped channel (it re-initialises); a running one is left alone; expired → 503."""
        with self.lock:
            channel = self._channel(channel_id)
            now = self.now()
            if channel.expired(now):
                raise ApiError(503, "Channel has no active days left; extend it first")
            if channel.manually_stopped:
                channel.manually_stopped = False
                self._restart(channel, now)
                self._refresh(channel, now)
                self._changed()
            return {"success": True}

    def stop_channel(self, channel_id: str, body: Any = None) -> dict[str, Any]:
        """Stop a channel (health STOP). `saveDays` is accepted and has no effect in the sandbox."""
        with self.lock:
            channel = self._channel(channel_id)
            channel.manually_stopped = True
            self._refresh(channel, self.now())
            self._changed()
            return {"success": True}

    def restart_channel(self, channel_id: str) -> dict[str, Any]:
        """Restart: INIT → LAUNCH → QR/AUTH again (the phone link survives); stopped → 503."""
        with self.lock:
            channel = self._channel(channel_id)
            now = self.now()
            if self._status(channel, now) == "STOP":
                raise ApiError(503, "Channel is stopped")
            self._restart(channel, now)
            self._refresh(channel, now)
            self._changed()
            return {"success": True}

    # ---- partner API: settings and the days webhook ---------------------------------------------------

    def get_partner_settings(self) -> dict[str, Any]:
        """`GET /partners/{name}/settings`."""
        with self.lock:
            return copy.deepcopy(self.partner_settings)

    def patch_partner_settings(self, body: Any) -> dict[str, Any]:
        """`PATCH /partners/{name}/settings`: the top-level fields given replace the stored ones."""
        body = require_object(body)
        unknown = set(body) - set(self.partner_settings)
        if unknown:
            raise ApiError(400, f"Unknown settings: {', '.join(sorted(unknown))}")
        if "webhooks" in body:
            hooks = body["webhooks"]
            if not isinstance(hooks, list) or not all(
                isinstance(hook, dict) and isinstance(hook.get("url"), str) and isinstance(hook.get("events"), list)
                for hook in hooks
            ):
                raise ApiError(400, "webhooks must be a list of {url, events, mode}")
        if "days_limit" in body and (isinstance(body["days_limit"], bool) or not isinstance(body["days_limit"], int)):
            raise ApiError(400, "days_limit must be a whole number")
        with self.lock:
            self.partner_settings.update(copy.deepcopy(body))
            self._changed()
            return copy.deepcopy(self.partner_settings)

    def _balance_set(self, balance: int) -> None:
        """Change the balance; falling below `days_limit` posts the partner's `days` webhook (its real
        payload is not documented: the sandbox sends the balance and the limit)."""
        limit = self.partner_settings.get("days_limit") or 0
        crossed = self.balance_days >= limit > balance
        self.balance_days = balance
        if crossed and self.webhooks is not None and self.partner_settings["webhooks"]:
            self.webhooks.enqueue(
                channel_id="",
                event_type="days",
                event_method="post",
                data_key="days",
                data={"balance": balance, "days_limit": limit},
                webhooks=copy.deepcopy(self.partner_settings["webhooks"]),
            )

    def extend_channel(self, channel_id: str, body: Any) -> dict[str, Any]:
        """Move `days` from the balance to the channel: activeTill += days (from now if already past).

        Insufficient balance → 503 (the spec's only declared failure). An expired channel that gets
        days back restarts by itself. The sandbox takes whole days only.
        """
        body = require_object(body)
        days = body.get("days")
        if isinstance(days, bool) or not isinstance(days, int | float) or days != int(days) or days < 1:
            raise ApiError(400, "days must be a whole number of days, 1 or more")
        if not isinstance(body.get("comment"), str) or not body["comment"].strip():
            raise ApiError(400, "comment is required")
        with self.lock:
            channel = self._channel(channel_id)
            if self.balance_days < days:
                raise ApiError(503, "Not enough days on the partner balance", details=f"{self.balance_days} days left")
            now = self.now()
            was_expired = channel.expired(now)
            self._balance_set(self.balance_days - int(days))
            channel.active_till = max(channel.active_till, int(now * 1000)) + int(days) * DAY_MS
            if was_expired and not channel.manually_stopped:
                self._restart(channel, now)
            self._refresh(channel, now)
            self._changed()
            return {"success": True}

    def set_mode(self, channel_id: str, body: Any) -> dict[str, Any]:
        """`PATCH /channels/{id}/mode`; like Whapi, the channel restarts after a mode change."""
        mode = require_object(body).get("mode")
        if mode not in MODES:
            raise ApiError(400, f"mode must be one of {', '.join(MODES)}")
        with self.lock:
            channel = self._channel(channel_id)
            now = self.now()
            channel.mode = mode
            if self._status(channel, now) != "STOP":
                self._restart(channel, now)
            self._refresh(channel, now)
            self._changed()
            return {"success": True}

    # ---- bulk registration (control API) ------------------------------------------------------------

    def register_channels(self, items: Any) -> dict[str, Any]:
        """Make channels exist as they are, silently: `POST /_sandbox/channels` (benchmarks, demos).

        Each item gives `id` and `token` (required; a channel of that id is replaced) and optionally
        `name`, `project_id` (default: the default project), `mode` (default live), `user`
        (`{"id": digits, "name"}`: linked, health AUTH; null: QR), `settings` (a PATCH /settings body,
        applied over the defaults), `forced_status`, `active_till` (ms; default a year from now) and
        `started_at` (the health's `start_at`, epoch seconds; default one start-up ago, and never
        later than that). A registered channel is past its start-up already, and its status counts as announced: no
        webhook is sent for it, so re-registering a channel with `user: null` logs it out without a
        users.delete. All items are checked before any is applied; ApiError(400) names the first bad one.
        """
        if not isinstance(items, list) or not items:
            raise ApiError(400, 'Expected {"channels": [...]} with at least one channel')
        with self.lock:
            now = self.now()
            now_ms = int(now * 1000)
            channels = [self._registered_channel(index, item, now, now_ms) for index, item in enumerate(items)]
            if len({channel.id for channel in channels}) != len(channels):
                raise ApiError(400, "A channel id appears twice")
            if len({channel.token for channel in channels}) != len(channels):
                raise ApiError(400, "A token appears twice")
            for channel in channels:
                if self._by_token.get(channel.token, channel.id) != channel.id:
                    raise ApiError(400, f"The token of {channel.id} belongs to another channel")
            for channel in channels:
                previous = self.channels.get(channel.id)
                if previous is not None:
                    self._by_token.pop(previous.token, None)
                self.channels[channel.id] = channel
                self._by_token[channel.token] = channel.id
                channel.notified_status = self._status(channel, now)
            self._changed()
            return {"registered": len(channels), "channels": len(self.channels)}

    def _registered_channel(self, index: int, item: Any, now: float, now_ms: int) -> Channel:
        """A Channel from one `register_channels` item; ApiError(400) when the item is not valid."""
        where = f"channels[{index}]"
        if not isinstance(item, dict):
            raise ApiError(400, f"{where} must be an object")
        unknown = set(item) - _REGISTER_FIELDS
        if unknown:
            raise ApiError(400, f"{where} has unknown fields: {', '.join(sorted(unknown))}")
        channel_id, token = item.get("id"), item.get("token")
        if not isinstance(channel_id, str) or not CHANNEL_ID_RE.match(channel_id):
            raise ApiError(400, f"{where}.id is not a Whapi channel id")
        if not isinstance(token, str) or not token:
            raise ApiError(400, f"{where}.token is required")
        project = self._project(item.get("project_id") or "default")
        mode = item.get("mode", "live")
        if mode not in MODES:
            raise ApiError(400, f"{where}.mode must be one of {', '.join(MODES)}")
        user = item.get("user")
        if user is not None:
            if not isinstance(user, dict) or not PHONE_RE.match(str(user.get("id", ""))):
                raise ApiError(400, f"{where}.user must be {{'id': 7 to 15 digits, 'name'}} or null")
            user = {"id": str(user["id"]), "name": str(user.get("name") or "Sandbox User")}
        forced = item.get("forced_status")
        if forced not in (None, "") and forced not in FORCEABLE:
            raise ApiError(400, f"{where}.forced_status must be one of {', '.join(FORCEABLE)}, or null")
        active_till = item.get("active_till", now_ms + 365 * DAY_MS)
        if isinstance(active_till, bool) or not isinstance(active_till, int):
            raise ApiError(400, f"{where}.active_till must be milliseconds since the epoch")
        started_at = item.get("started_at", now - self.config.init_seconds)
        if isinstance(started_at, bool) or not isinstance(started_at, int | float):
            raise ApiError(400, f"{where}.started_at must be seconds since the epoch")
        settings = default_settings()
        if item.get("settings") is not None:
            settings, _changes = merge_settings(settings, validate_settings_patch(item["settings"]))
        return Channel(
            id=channel_id,
            name=str(item.get("name") or channel_id),
            token=token,
            project_id=project.id,
            owner_id=self.owner_id,
            server=1,
            creation_ts=now_ms,
            active_till=active_till,
            trial=None,
            free_until=now_ms,
            started_at=min(float(started_at), now - self.config.init_seconds),
            qr_secret=secrets.token_hex(16),
            mode=mode,
            settings=settings,
            user=user,
            forced_status=forced or None,
        )

    # ---- inspection --------------------------------------------------------------------------------

    def _channel_view(self, channel: Channel, now: float) -> dict[str, Any]:
        status = self._status(channel, now)
        qr = None
        if status not in INITIALIZING and status != "STOP" and not channel.user:
            qr = {"link": self._qr_link(channel, now), "expire": qr_seconds_left(now, self.config.qr_expire_seconds)}
        return {
            **channel.as_api(self.base_url, now),
            "health": self._health(channel, now),
            "settings": copy.deepcopy(channel.settings),
            "user": copy.deepcopy(channel.user),
            "forced_status": channel.forced_status,
            "pairing": copy.deepcopy(channel.pairing),
            "qr": qr,
            "started_at": channel.started_at,
            "init_ends_at": channel.started_at + self.config.init_seconds,
            "gate_calls": copy.deepcopy(channel.gate_calls),
        }

    def channel_view(self, channel_id: str) -> dict[str, Any]:
        """One channel with everything the sandbox knows (token, settings, link, QR, gate call log)."""
        with self.lock:
            return self._channel_view(self._channel(channel_id), self.now())

    def snapshot(self) -> dict[str, Any]:
        """Everything, tokens included (`GET /_sandbox/state`)."""
        with self.lock:
            now = self.now()
            self._retry_after(now)  # prunes creations outside the window
            return {
                "url": self.base_url,
                "now": now,
                "clock_offset": self.clock_offset,
                "config": config_as_dict(self.config),
                "owner_id": self.owner_id,
                "balance_days": self.balance_days,
                "creations_in_window": len(self.create_times),
                "projects": [p.as_api() for p in self.projects.values()],
                "channels": [self._channel_view(c, now) for c in self.channels.values()],
                "faults": self.faults.list(),
            }

    # ---- faults (delegated; kept here so tests can write `server.state.add_fault(...)`) -------------

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm a fault (see `faults.py` for the kinds). Raises ApiError(400) if invalid."""
        return self.faults.add(spec)

    def list_faults(self) -> list[dict[str, Any]]:
        return self.faults.list()

    def clear_faults(self) -> None:
        self.faults.clear()
