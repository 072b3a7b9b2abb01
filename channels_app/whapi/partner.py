"""The partner API ("manager", docs/whapi.md §1): `PartnerClient` and `partner_client()`.

    list_projects      GET     /projects?count&offset        every page
    create_project     PUT     /projects
    get_project        GET     /projects/{id}
    create_channel     PUT     /channels
    list_channels      GET     /channels/list[/{projectId}]  every page (not GET /channels)
    get_channel        GET     /channels/{id}
    update_channel     PATCH   /channels/{id}
    delete_channel     DELETE  /channels/{id}
    start_channel      POST    /channels/{id}/start
    stop_channel       POST    /channels/{id}/stop
    restart_channel    POST    /channels/{id}/restart
    extend_channel     POST    /channels/{id}/extend
    change_mode        PATCH   /channels/{id}/mode
    get_partner_settings    GET    /partners/{name}/settings
    patch_partner_settings  PATCH  /partners/{name}/settings

Each method's docstring cites the sections of docs/whapi.md it follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from django.conf import settings

from channels_app.whapi.payloads import WhapiChannel, WhapiProject, optional_int
from channels_app.whapi.transport import BaseClient, check_phone, expect_object, logger

T = TypeVar("T")

CHANNEL_MODES = frozenset({"trial", "dev", "dev_archive", "live"})
PAGE_SIZE = 100


class PartnerClient(BaseClient):
    """The partner API ("manager", docs/whapi.md §1), authenticated with the partner token.

    URL, token and timeout default to WHAPI_PARTNER_URL, WHAPI_PARTNER_TOKEN and WHAPI_TIMEOUT;
    `sleep` is the pause between GET attempts (tests pass a recorder). Every method raises
    WhapiError on failure (see its flags) and ValueError for arguments that cannot be right, before
    any request is sent.
    """

    api_name = "Whapi partner"
    # Paging stops after this many pages even if Whapi keeps announcing more (a broken `total`).
    max_pages = 200

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            settings.WHAPI_PARTNER_URL if base_url is None else base_url,
            settings.WHAPI_PARTNER_TOKEN if token is None else token,
            timeout=timeout,
            session=session,
            sleep=sleep,
        )

    def _list(self, path: str, key: str, build: Callable[[Any], T]) -> list[T]:
        """All items of a paged list (`{key: [...], count, total, offset}`), page by page to the end.

        Each page is its own GET (retried on its own); a failing page fails the whole list, so a
        caller never mistakes a partial list for the full one.
        """

        def parse_page(payload: Any) -> tuple[list[T], int | None]:
            answer = expect_object(payload)
            page = answer.get(key)
            if not isinstance(page, list):
                raise ValueError(f"answer has no {key!r} list")
            return [build(item) for item in page], optional_int(answer.get("total"))

        items: dict[str, T] = {}
        offset = 0
        for _page in range(self.max_pages):
            page_items, total = self._call("GET", path, params={"count": PAGE_SIZE, "offset": offset}, parse=parse_page)
            known = len(items)
            for item in page_items:
                # An item created or deleted while paging shifts the pages; keep the first copy.
                items.setdefault(item.id, item)
            offset += len(page_items)
            if not page_items or len(items) == known:
                break  # an empty page, or one Whapi already sent (offset ignored): nothing more to get
            if total is not None and offset >= total:
                break
            if total is None and len(page_items) < PAGE_SIZE:
                break  # no `total` echoed: a short page is the last one
        else:
            logger.warning("whapi GET %s: stopped paging after %d pages", path, self.max_pages)
        return list(items.values())

    def list_projects(self) -> list[WhapiProject]:
        """All projects of the partner account (GET /projects?count&offset, every page).

        docs/whapi.md §1.1, §1.2 Project.
        """
        return self._list("/projects", "projects", WhapiProject.from_payload)

    def create_project(self, name: str) -> WhapiProject:
        """Create a project (PUT /projects, never retried here) and return it (docs/whapi.md §1.1)."""
        return self._call("PUT", "/projects", body={"name": name}, parse=WhapiProject.from_payload)

    def get_project(self, project_id: str) -> WhapiProject:
        """One project (GET /projects/{id}); 404 → permanent WhapiError (docs/whapi.md §1.1)."""
        return self._call("GET", f"/projects/{_segment(project_id, 'project_id')}", parse=WhapiProject.from_payload)

    def create_channel(self, *, name: str, project_id: str, phone: str | None = None) -> WhapiChannel:
        """Buy a new channel (PUT /channels) and return it with its `token` and `api_url`.

        Never retried here: a create whose answer was lost may have bought a channel, and a second
        attempt would buy another (check `outcome_unknown`, then look for it with list_channels).
        429 means more than 20 creations in 30 minutes (docs/whapi.md §1.3); 503 means all servers
        are busy. Raises ValueError for a phone that is not 7 to 15 digits.

        docs/whapi.md §1.1, §1.2 Channel, §1.3.
        """
        body: dict[str, Any] = {"name": name, "projectId": project_id}
        if phone is not None:
            body["phone"] = check_phone(phone)

        def parse(payload: Any) -> WhapiChannel:
            channel = WhapiChannel.from_payload(payload)
            missing = [key for key, value in (("token", channel.token), ("apiUrl", channel.api_url)) if not value]
            if missing:
                raise ValueError(f"created channel {channel.id} has no {' or '.join(repr(k) for k in missing)}")
            return channel

        return self._call("PUT", "/channels", body=body, parse=parse)

    def list_channels(self, project_id: str | None = None) -> list[WhapiChannel]:
        """All channels, or those of one project (GET /channels/list[/{projectId}], every page).

        docs/whapi.md §1.1 (the list is GET /channels/list, not GET /channels).
        """
        path = "/channels/list" if project_id is None else f"/channels/list/{_segment(project_id, 'project_id')}"
        return self._list(path, "channels", WhapiChannel.from_payload)

    def get_channel(self, channel_id: str) -> WhapiChannel:
        """One channel (GET /channels/{id}); 404 → permanent WhapiError (docs/whapi.md §1.1)."""
        return self._call("GET", self._channel_path(channel_id), parse=WhapiChannel.from_payload)

    def update_channel(self, channel_id: str, *, name: str, project_id: str) -> None:
        """Rename or move a channel (PATCH /channels/{id}; the spec requires both fields; docs/whapi.md §1.1)."""
        self._call("PATCH", self._channel_path(channel_id), body={"name": name, "projectId": project_id})

    def delete_channel(self, channel_id: str) -> None:
        """Delete a channel (DELETE /channels/{id}); Whapi refunds its unused days to the balance.

        docs/whapi.md §1.1, §1.3 Delete.
        """
        self._call("DELETE", self._channel_path(channel_id))

    def start_channel(self, channel_id: str) -> None:
        """Start a stopped channel (POST /channels/{id}/start); 503 = not ready to be started (docs/whapi.md §1.1)."""
        self._call("POST", self._channel_path(channel_id, "start"))

    def stop_channel(self, channel_id: str, *, save_days: bool | None = None) -> None:
        """Stop a channel (POST /channels/{id}/stop); `saveDays` is sent only when given (docs/whapi.md §1.1)."""
        body = None if save_days is None else {"saveDays": bool(save_days)}
        self._call("POST", self._channel_path(channel_id, "stop"), body=body)

    def restart_channel(self, channel_id: str) -> None:
        """Restart a channel (POST /channels/{id}/restart), the dashboard's "Reload" (docs/whapi.md §1.1)."""
        self._call("POST", self._channel_path(channel_id, "restart"))

    def extend_channel(self, channel_id: str, *, days: int, comment: str) -> None:
        """Move `days` from the partner balance to the channel (POST /channels/{id}/extend).

        Not idempotent: an `outcome_unknown` error may still have moved the days. What Whapi answers
        for an insufficient balance is unknown (docs/whapi.md §1.3; the spec lists 503). Raises
        ValueError for days < 1.

        docs/whapi.md §1.1, §1.3 Extend.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be a positive whole number, got {days!r}")
        self._call("POST", self._channel_path(channel_id, "extend"), body={"days": days, "comment": comment})

    def change_mode(self, channel_id: str, mode: str) -> None:
        """Switch a channel's mode (PATCH /channels/{id}/mode); the channel restarts (~30 s).

        Raises ValueError for a mode outside trial, dev, dev_archive, live.

        docs/whapi.md §1.1, §1.3 Modes.
        """
        if mode not in CHANNEL_MODES:
            raise ValueError(f"mode must be one of {', '.join(sorted(CHANNEL_MODES))}, got {mode!r}")
        self._call("PATCH", self._channel_path(channel_id, "mode"), body={"mode": mode})

    def get_partner_settings(self, name: str) -> dict[str, Any]:
        """The partner's settings: the `days` webhook, `days_limit`, `noChat` (docs/whapi.md §1.2, §1.4)."""
        return self._call("GET", f"/partners/{_segment(name, 'partner name')}/settings", parse=expect_object)

    def patch_partner_settings(self, name: str, changes: dict[str, Any]) -> None:
        """Change top-level partner settings (PATCH /partners/{name}/settings; docs/whapi.md §1.4)."""
        self._call("PATCH", f"/partners/{_segment(name, 'partner name')}/settings", body=changes)

    def _channel_path(self, channel_id: str, action: str | None = None) -> str:
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        return f"{path}/{action}" if action else path


def partner_client() -> PartnerClient:
    """A PartnerClient configured from WHAPI_PARTNER_URL, WHAPI_PARTNER_TOKEN and WHAPI_TIMEOUT."""
    return PartnerClient(settings.WHAPI_PARTNER_URL, settings.WHAPI_PARTNER_TOKEN, timeout=settings.WHAPI_TIMEOUT)


def _segment(value: str, what: str) -> str:
    """One path segment from an id; raises ValueError for an empty one (it would change the endpoint)."""
    text = str(value).strip()
    if not text or text in (".", ".."):
        raise ValueError(f"{what} is empty or invalid: {value!r}")
    return quote(text, safe="")
