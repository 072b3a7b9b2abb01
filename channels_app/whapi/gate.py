"""One channel's gate API (docs/whapi.md §2): `GateClient` and `gate_client()`.

    health             GET     /health?wakeup
    get_settings       GET     /settings
    patch_settings     PATCH   /settings               webhooks replace the list
    login_qr           GET     /users/login
    pairing_code       GET     /users/login/{phone}
    logout             POST    /users/logout
    profile            GET     /users/profile

Each method's docstring cites the sections of docs/whapi.md it follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings

from channels_app.whapi.payloads import Health, QrCode, optional_str
from channels_app.whapi.transport import BaseClient, check_phone, expect_object

# A person is waiting on the page: answer within seconds, and let the page try again itself.
INTERACTIVE_TIMEOUT = 5.0


class GateClient(BaseClient):
    """One channel's gate API (docs/whapi.md §2), authenticated with that channel's token.

    `api_url` is the channel's `apiUrl` as Whapi returns it; the timeout defaults to WHAPI_TIMEOUT.
    Every method raises WhapiError on failure and ValueError for arguments that cannot be right,
    before any request is sent. While a new channel starts (up to ~90 s, docs/whapi.md §1.3) the
    gate may answer 404 or 5xx: retrying over that window is the caller's job.
    """

    api_name = "Whapi gate"

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(api_url, token, timeout=timeout, session=session, sleep=sleep)

    def health(self, *, wakeup: bool = False) -> Health:
        """The channel's status (GET /health?wakeup). Whapi's default wakeup=true launches the
        channel, so the portal's polling sends wakeup=false unless asked (docs/whapi.md §2 Health)."""
        return self._call("GET", "/health", params={"wakeup": "true" if wakeup else "false"}, parse=Health.from_payload)

    def get_settings(self) -> dict[str, Any]:
        """The channel's settings object (GET /settings), as sent (docs/whapi.md §2 Settings)."""
        return self._call("GET", "/settings", parse=expect_object)

    def patch_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change top-level settings (PATCH /settings) and return the settings after the update.

        Fields left out stay unchanged, but `webhooks` replaces the whole list: send all of them.
        Returns the answer's `after_update` when present, else the whole answer (docs/whapi.md §2).
        """
        if not isinstance(changes, dict):
            raise ValueError("settings changes must be a dict")

        def parse(payload: Any) -> dict[str, Any]:
            answer = expect_object(payload)
            after = answer.get("after_update")
            return after if isinstance(after, dict) else answer

        return self._call("PATCH", "/settings", body=changes, parse=parse)

    def login_qr(self, *, size: int | None = None) -> QrCode:
        """A login QR (GET /users/login). Status WAITING means "ask again shortly".

        409 (already authenticated), 406 (mobile channel) and 422 (render failed) are permanent
        WhapiErrors. Raises ValueError for a size below 1 (docs/whapi.md §2 QR).
        """
        params: dict[str, Any] = {}
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"size must be a positive whole number, got {size!r}")
            params["size"] = size
        return self._call("GET", "/users/login", params=params or None, parse=QrCode.from_payload)

    def pairing_code(self, phone: str) -> str:
        """A pairing code such as "123-456" for linking by phone number (GET /users/login/{phone}).

        Raises ValueError unless `phone` is 7 to 15 digits (no "+", no spaces; docs/whapi.md §2).
        """
        check_phone(phone)

        def parse(payload: Any) -> str:
            code = optional_str(expect_object(payload).get("code"))
            if code is None:
                raise ValueError("answer has no 'code'")
            return code

        # The phone number stays out of logs and error messages.
        return self._call("GET", f"/users/login/{phone}", parse=parse, shown_path="/users/login/{phone}")

    def logout(self) -> None:
        """Unlink the WhatsApp account (POST /users/logout; docs/whapi.md §2, §4 step 7)."""
        self._call("POST", "/users/logout")

    def profile(self) -> dict[str, Any]:
        """The linked account's profile (GET /users/profile): name, about, icon, icon_full (docs/whapi.md §2)."""
        return self._call("GET", "/users/profile", parse=expect_object)


def gate_client(
    api_url: str, token: str, *, interactive: bool = False, session: requests.Session | None = None
) -> GateClient:
    """A GateClient for one channel, with the WHAPI_TIMEOUT timeout; on `session` when given (e.g. the
    checks sweep's transport.reusable_session), else on a session of its own.

    `interactive=True` (a page waiting for the answer): at most INTERACTIVE_TIMEOUT seconds and no
    retries, so a gate that is down shows an error in seconds instead of holding the request.
    """
    if not interactive:
        return GateClient(api_url, token, timeout=settings.WHAPI_TIMEOUT, session=session)
    client = GateClient(api_url, token, timeout=min(settings.WHAPI_TIMEOUT, INTERACTIVE_TIMEOUT))
    client.retry_delays = ()
    return client
