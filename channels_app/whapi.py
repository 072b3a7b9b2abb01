"""The Whapi client: the single HTTP seam between the portal and Whapi.Cloud.

Every outbound call to Whapi goes through `PartnerClient` (the partner API, "manager", partner token)
or `GateClient` (one channel's gate API, channel token). Both send `Authorization: Bearer <token>` and
`Accept: application/json`, use a (connect, read) timeout, and turn every failure into `WhapiError`,
whose `permanent` and `outcome_unknown` flags tell the caller whether to retry and whether the call
may have happened anyway. Only GET requests are retried here (at most twice); a write is retried, if
at all, by the caller, which knows whether repeating it is safe.

Each method follows a section of /work/shared/whapi-api.md (the spec's facts are tagged there):

    PartnerClient.list_projects       GET    /projects?count&offset           §1.1, §1.2 Project
    PartnerClient.create_project      PUT    /projects                        §1.1
    PartnerClient.get_project         GET    /projects/{id}                   §1.1
    PartnerClient.create_channel      PUT    /channels                        §1.1, §1.2 Channel, §1.3
    PartnerClient.list_channels       GET    /channels/list[/{projectId}]     §1.1 (not GET /channels)
    PartnerClient.get_channel         GET    /channels/{id}                   §1.1
    PartnerClient.update_channel      PATCH  /channels/{id}                   §1.1
    PartnerClient.delete_channel      DELETE /channels/{id}                   §1.1, §1.3 Delete
    PartnerClient.start_channel       POST   /channels/{id}/start             §1.1
    PartnerClient.stop_channel        POST   /channels/{id}/stop              §1.1
    PartnerClient.restart_channel     POST   /channels/{id}/restart           §1.1
    PartnerClient.extend_channel      POST   /channels/{id}/extend            §1.1, §1.3 Extend
    PartnerClient.change_mode         PATCH  /channels/{id}/mode              §1.1, §1.3 Modes
    GateClient.health                 GET    /health?wakeup                   §2 Health
    GateClient.get_settings           GET    /settings                        §2 Settings
    GateClient.patch_settings         PATCH  /settings                        §2 (webhooks replace the list)
    GateClient.login_qr               GET    /users/login                     §2 QR
    GateClient.pairing_code           GET    /users/login/{phone}             §2
    GateClient.logout                 POST   /users/logout                    §2, §4 step 7
    GateClient.profile                GET    /users/profile                   §2
    Health.from_payload               the `health` object of a channel.post webhook, §3 (ValueError)
    QrCode.from_payload               the `qr` object of a channel.patch webhook, §3 (ValueError)

Unknowns of §6 are tolerated rather than guessed: unknown status texts are kept as sent, a QR's
base64 may or may not carry a `data:` prefix, optional channel fields may be missing, action calls
may answer `{"success": true}` or nothing at all.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from django.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL_MODES = frozenset({"trial", "dev", "dev_archive", "live"})
PAGE_SIZE = 100
# ASCII digits only: \d would also accept other scripts' digits, and $ a trailing newline.
_PHONE_RE = re.compile(r"[0-9]{7,15}")
_DATA_URI_RE = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)
# Below this a "millisecond" timestamp would fall before 1973: such values are seconds (the spec's
# own examples use seconds although Whapi's real answers use milliseconds, §0).
_SECONDS_CUTOFF = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class WhapiError(Exception):
    """A Whapi call that did not give the expected answer.

    `permanent`: retrying the same request cannot help. `outcome_unknown`: the request may have been
    carried out although no good answer came (so a retried write could act twice). `path` is the API
    path only (no host, no query string) and no attribute ever holds a token.

        what happened                                   status  permanent  outcome_unknown
        4xx with Whapi's JSON error (400 401 403 404     4xx     True       False
          406 409 422 ...), or a 3xx redirect
        408, 425, 429 (retry_after from Retry-After)     4xx     False      False
        4xx whose body is not JSON (a proxy's page)      4xx     False      False
        5xx, JSON or not (retry_after on 503)            5xx     False      True
        2xx that is not JSON or lacks what we need       2xx     False      True
        connect timeout, refused, DNS, TLS, proxy        None    False      False
        read timeout, reset/closed mid-answer            None    False      True
        request we could not build (bad URL, body)       None    True       False
    """

    def __init__(
        self,
        message: str = "",
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        code: int | None = None,
        permanent: bool = False,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.permanent = permanent
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status is not None else ""
        wait = f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"Whapi {self.method} {self.path} failed: {status}{self.message}{wait}"

    def __repr__(self) -> str:
        return (
            f"WhapiError({self.message!r}, method={self.method!r}, path={self.path!r}, status={self.status!r}, "
            f"code={self.code!r}, permanent={self.permanent!r}, outcome_unknown={self.outcome_unknown!r}, "
            f"retry_after={self.retry_after!r})"
        )

    def __reduce__(self):
        # The keyword-only constructor defeats Exception's default pickling (django-q pickles failures).
        return (_rebuild_error, (self.__dict__.copy(),))


def _rebuild_error(state: dict[str, Any]) -> WhapiError:
    return WhapiError(**{key: value for key, value in state.items() if not key.startswith("_")})


# ------------------------------------------------------------------------------------------------
# Parsing helpers: tolerant for optional fields, strict (ValueError) for the ones we cannot do without.
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


def _optional_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _required_int(payload: dict[str, Any], key: str, what: str) -> int:
    value = _optional_int(payload.get(key))
    if value is None:
        raise ValueError(f"{what} has no numeric {key!r}")
    return value


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _required_id(payload: Any, what: str) -> str:
    if not isinstance(payload, dict):
        raise ValueError(f"{what} is not a JSON object")
    value = _optional_str(payload.get("id"))
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
    """A partner project (§1.2 Project)."""

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
            name=_optional_str(payload.get("name")) or "",
            creation_ts=_timestamp(payload.get("creationTS")),
            is_default=payload.get("isDefault") is True,
            raw=payload,
        )


@dataclass(frozen=True)
class WhapiChannel:
    """A partner channel (§1.2 Channel). Timestamps are aware UTC datetimes made from milliseconds.

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
            name=_optional_str(payload.get("name")) or "",
            project_id=_optional_str(payload.get("projectId")),
            api_url=_optional_str(payload.get("apiUrl")),
            token=_optional_str(payload.get("token")),
            server=_optional_int(payload.get("server")),
            # The spec: "empty means live".
            mode=_optional_str(payload.get("mode")) or "live",
            status=_optional_str(payload.get("status")),
            stopped=payload.get("stopped") is True,
            creation_ts=_timestamp(payload.get("creationTS")),
            active_till=_timestamp(payload.get("activeTill")),
            trial=_timestamp(payload.get("trial")),
            blocked=_optional_bool(payload.get("blocked")),
            phone=_optional_str(payload.get("phone")),
            raw=payload,
        )


@dataclass(frozen=True)
class Health:
    """A channel's health (§2 Health): from `GET /health` or a channel.post webhook's `health` object.

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
        `start_at` or `uptime` (both required by the spec; they order health events, §3)."""
        if not isinstance(payload, dict):
            raise ValueError("health is not a JSON object")
        status = payload.get("status")
        if isinstance(status, dict):
            code, text = _optional_int(status.get("code")), _optional_str(status.get("text"))
        else:
            code, text = None, _optional_str(status)
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        return cls(
            start_at=_required_int(payload, "start_at", "health"),
            uptime=_required_int(payload, "uptime", "health"),
            status_code=code,
            status_text=text.upper() if text else "UNKNOWN",
            user_id=_optional_str(user.get("id")),
            user_name=_optional_str(user.get("name")) or _optional_str(user.get("pushname")),
            raw=payload,
        )


@dataclass(frozen=True)
class QrCode:
    """A login QR (§2 QR). `base64` never carries a `data:` prefix, whether or not Whapi sent one.

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
        image = _optional_str(payload.get("base64"))
        if image:
            # Unknown whether Whapi prefixes the image with `data:image/png;base64,` (§6): accept both.
            image = _DATA_URI_RE.sub("", image).strip() or None
        status = _optional_str(payload.get("status"))
        return cls(
            status=status.upper() if status else "UNKNOWN",
            base64=image,
            expire=_optional_int(payload.get("expire")),
            rowdata=_optional_str(payload.get("rowdata")),
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


# ------------------------------------------------------------------------------------------------
# Transport
# ------------------------------------------------------------------------------------------------
# Statuses a retry can fix; every other 4xx is permanent (wrong request, missing object, conflict).
_RETRYABLE_4XX = frozenset({408, 425, 429})
# Causes inside requests' ConnectionError meaning the request never left us.
_NOT_SENT_CAUSES = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
)
# requests' own exceptions for a request we could not even build: our input is malformed.
_MALFORMED_REQUEST = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, urllib3's `reason`, the cause/context chain)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _plain_text(body: bytes, limit: int = 200) -> str:
    """A short, single-line excerpt of a non-JSON body (an HTML error page loses its tags)."""
    text = body.decode("utf-8", errors="replace")
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decode_json(body: bytes) -> Any:
    """The decoded JSON body; raises ValueError when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError("answer is not JSON") from exc


def _ignore_answer(payload: Any) -> None:
    """Parser for action calls: nothing, `{"success": true}` or any other object means done."""
    if isinstance(payload, dict) and payload.get("success") is False:
        raise ValueError("answer says success=false")


def _expect_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("answer is not a JSON object")
    return payload


class _Client:
    """Shared transport of both clients: one call = up to 3 attempts for GET, exactly 1 otherwise."""

    # Pauses before the 2nd and 3rd attempt of a GET; also bounds the number of retries.
    retry_delays: tuple[float, ...] = (0.5, 1.0)
    # A Retry-After longer than this is not waited for inside a call: the error goes to the caller.
    max_retry_after: float = 5.0
    api_name = "Whapi"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | None,
        session: requests.Session | None,
        sleep: Callable[[float], None],
    ) -> None:
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"{self.api_name} URL must be an http(s) URL, got {base_url!r}")
        if not token:
            raise ValueError(f"{self.api_name} token is empty")
        timeout = settings.WHAPI_TIMEOUT if timeout is None else float(timeout)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        # Both the apiUrl Whapi returns ("https://gate.whapi.cloud/") and a base with a path prefix
        # ("http://127.0.0.1:8765/gate/") work once the trailing slash is dropped here.
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        parse: Callable[[Any], T] = _ignore_answer,
        shown_path: str | None = None,
    ) -> T:
        """Send one API call and return `parse(decoded JSON answer)` (None for an empty answer).

        Only GET is retried, at most len(retry_delays) times, on a non-permanent error; a write that
        timed out may have been carried out, so repeating it is the caller's decision. Raises
        WhapiError for every failure, including a 2xx answer `parse` rejects with ValueError.
        `shown_path` replaces `path` in logs and errors when the path holds personal data.
        """
        attempts = 1 + len(self.retry_delays) if method == "GET" else 1
        url = self.base_url + path
        path = shown_path or path
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(method, url, path, params, body, parse)
            except WhapiError as err:
                if err.permanent or attempt == attempts:
                    raise
                delay = self.retry_delays[attempt - 1]
                if err.retry_after is not None:
                    if err.retry_after > self.max_retry_after:
                        raise
                    delay = max(delay, err.retry_after)
                logger.info(
                    "whapi %s %s attempt %d/%d failed, retrying in %g s", method, path, attempt, attempts, delay
                )
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(
        self, method: str, url: str, path: str, params: dict[str, Any] | None, body: Any, parse: Callable[[Any], T]
    ) -> T:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            # Encoded here: requests lets a TypeError from json.dumps escape for unserialisable values.
            try:
                data = json.dumps(body, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise self._error(method, path, f"request body is not valid JSON ({exc})", permanent=True) from exc
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=(self.timeout, self.timeout),
                # A redirect would change the verb of a write and may leave Whapi's host: report it instead.
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            err = self._transport_error(method, path, exc)
            self._log(logging.INFO, method, path, type(exc).__name__, started)
            raise err from exc
        self._log(logging.DEBUG if response.ok else logging.INFO, method, path, response.status_code, started)
        if not 200 <= response.status_code < 300:
            raise self._status_error(method, path, response)
        try:
            payload = _decode_json(response.content) if response.content.strip() else None
            return parse(payload)
        except ValueError as exc:
            # Whapi did answer 2xx, so the call may well have worked: never treat this as "not done".
            raise self._error(
                method, path, f"unexpected answer: {exc}", status=response.status_code, outcome_unknown=True
            ) from exc

    def _log(self, level: int, method: str, path: str, outcome: int | str, started: float) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.log(level, "whapi %s %s -> %s in %.0f ms", method, path, outcome, elapsed_ms)

    def _error(self, method: str, path: str, message: str, **flags: Any) -> WhapiError:
        # Some servers echo what they were sent; make sure the token cannot ride along in a message.
        message = message.replace(self._token, "***")
        return WhapiError(message, method=method, path=path, **flags)

    def _status_error(self, method: str, path: str, response: requests.Response) -> WhapiError:
        status = response.status_code
        if 300 <= status < 400:
            location = urlsplit(response.headers.get("Location", "")).path or "?"
            return self._error(method, path, f"unexpected redirect to {location}", status=status, permanent=True)
        reason = response.reason or _status_phrase(status)
        try:
            payload = _decode_json(response.content) if response.content.strip() else None
        except ValueError:
            # A 4xx page that is not Whapi's JSON error came from something in front of Whapi (proxy,
            # load balancer mid-deploy): its status says little about our request, so it may pass later.
            message, code, permanent = f"{reason}: {_plain_text(response.content)}", None, False
        else:
            message, code = _error_details(payload)
            permanent = 400 <= status < 500 and status not in _RETRYABLE_4XX
        return self._error(
            method,
            path,
            message or reason,
            status=status,
            code=code,
            permanent=permanent,
            # A 4xx (429 included) means the request was refused; a 5xx may come after the work was done.
            outcome_unknown=status >= 500,
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )

    def _transport_error(self, method: str, path: str, exc: requests.exceptions.RequestException) -> WhapiError:
        host = urlsplit(self.base_url).netloc
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return self._error(method, path, f"no connection to {host} within {self.timeout:g} s")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return self._error(method, path, f"no answer within {self.timeout:g} s", outcome_unknown=True)
        if isinstance(exc, _MALFORMED_REQUEST):
            return self._error(method, path, f"request could not be built ({type(exc).__name__})", permanent=True)
        if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
            return self._error(method, path, f"could not connect to {host} ({type(exc).__name__})")
        causes = list(_causes(exc))
        if isinstance(exc, requests.exceptions.ConnectionError) and any(
            isinstance(cause, _NOT_SENT_CAUSES) for cause in causes
        ):
            refused = any(isinstance(cause, ConnectionRefusedError) for cause in causes) or "refused" in str(exc)
            unknown_host = any(isinstance(cause, urllib3.exceptions.NameResolutionError) for cause in causes)
            detail = "connection refused" if refused else "host name not found" if unknown_host else "host unreachable"
            return self._error(method, path, f"could not connect to {host} ({detail})")
        if any(isinstance(cause, urllib3.exceptions.ReadTimeoutError) for cause in causes):
            return self._error(method, path, f"no answer within {self.timeout:g} s", outcome_unknown=True)
        # Reset, remote disconnect, truncated or undecodable answer: the request went out, so it may
        # have been carried out.
        return self._error(
            method, path, f"connection closed before a full answer ({type(exc).__name__})", outcome_unknown=True
        )


def _status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error_details(payload: Any) -> tuple[str, int | None]:
    """Message and code from Whapi's `{"error": {"code", "message"}}` (or a looser variant)."""
    if not isinstance(payload, dict):
        return "", None
    error = payload.get("error")
    if isinstance(error, dict):
        message = _optional_str(error.get("message")) or _optional_str(error.get("details")) or ""
        return message, _optional_int(error.get("code"))
    return _optional_str(error) or _optional_str(payload.get("message")) or "", _optional_int(payload.get("code"))


def _segment(value: str, what: str) -> str:
    """One path segment from an id; raises ValueError for an empty one (it would change the endpoint)."""
    text = str(value).strip()
    if not text or text in (".", ".."):
        raise ValueError(f"{what} is empty or invalid: {value!r}")
    return quote(text, safe="")


def _check_phone(phone: str) -> str:
    if not isinstance(phone, str) or not _PHONE_RE.fullmatch(phone):
        raise ValueError(f"phone must be 7 to 15 digits without '+' or spaces, got {phone!r}")
    return phone


# ------------------------------------------------------------------------------------------------
# Partner API
# ------------------------------------------------------------------------------------------------
class PartnerClient(_Client):
    """The partner API ("manager", §1), authenticated with the partner token.

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
            answer = _expect_object(payload)
            page = answer.get(key)
            if not isinstance(page, list):
                raise ValueError(f"answer has no {key!r} list")
            return [build(item) for item in page], _optional_int(answer.get("total"))

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
        """All projects of the partner account (GET /projects, every page)."""
        return self._list("/projects", "projects", WhapiProject.from_payload)

    def create_project(self, name: str) -> WhapiProject:
        """Create a project (PUT /projects, never retried here) and return it."""
        return self._call("PUT", "/projects", body={"name": name}, parse=WhapiProject.from_payload)

    def get_project(self, project_id: str) -> WhapiProject:
        """One project (GET /projects/{id}); 404 → permanent WhapiError."""
        return self._call("GET", f"/projects/{_segment(project_id, 'project_id')}", parse=WhapiProject.from_payload)

    def create_channel(self, *, name: str, project_id: str, phone: str | None = None) -> WhapiChannel:
        """Buy a new channel (PUT /channels) and return it with its `token` and `api_url`.

        Never retried here: a create whose answer was lost may have bought a channel, and a second
        attempt would buy another (check `outcome_unknown`, then look for it with list_channels).
        429 means more than 20 creations in 30 minutes (§1.3); 503 means all servers are busy.
        Raises ValueError for a phone that is not 7 to 15 digits.
        """
        body: dict[str, Any] = {"name": name, "projectId": project_id}
        if phone is not None:
            body["phone"] = _check_phone(phone)

        def parse(payload: Any) -> WhapiChannel:
            channel = WhapiChannel.from_payload(payload)
            missing = [key for key, value in (("token", channel.token), ("apiUrl", channel.api_url)) if not value]
            if missing:
                raise ValueError(f"created channel {channel.id} has no {' or '.join(repr(k) for k in missing)}")
            return channel

        return self._call("PUT", "/channels", body=body, parse=parse)

    def list_channels(self, project_id: str | None = None) -> list[WhapiChannel]:
        """All channels, or those of one project (GET /channels/list[/{projectId}], every page)."""
        path = "/channels/list" if project_id is None else f"/channels/list/{_segment(project_id, 'project_id')}"
        return self._list(path, "channels", WhapiChannel.from_payload)

    def get_channel(self, channel_id: str) -> WhapiChannel:
        """One channel (GET /channels/{id}); 404 → permanent WhapiError."""
        return self._call("GET", self._channel_path(channel_id), parse=WhapiChannel.from_payload)

    def update_channel(self, channel_id: str, *, name: str, project_id: str) -> None:
        """Rename or move a channel (PATCH /channels/{id}; the spec requires both fields)."""
        self._call("PATCH", self._channel_path(channel_id), body={"name": name, "projectId": project_id})

    def delete_channel(self, channel_id: str) -> None:
        """Delete a channel (DELETE /channels/{id}); Whapi refunds its unused days to the balance."""
        self._call("DELETE", self._channel_path(channel_id))

    def start_channel(self, channel_id: str) -> None:
        """Start a stopped channel (POST /channels/{id}/start); 503 = not ready to be started."""
        self._call("POST", self._channel_path(channel_id, "start"))

    def stop_channel(self, channel_id: str, *, save_days: bool | None = None) -> None:
        """Stop a channel (POST /channels/{id}/stop); `saveDays` is sent only when given."""
        body = None if save_days is None else {"saveDays": bool(save_days)}
        self._call("POST", self._channel_path(channel_id, "stop"), body=body)

    def restart_channel(self, channel_id: str) -> None:
        """Restart a channel (POST /channels/{id}/restart), the dashboard's "Reload"."""
        self._call("POST", self._channel_path(channel_id, "restart"))

    def extend_channel(self, channel_id: str, *, days: int, comment: str) -> None:
        """Move `days` from the partner balance to the channel (POST /channels/{id}/extend).

        Not idempotent: an `outcome_unknown` error may still have moved the days. What Whapi answers
        for an insufficient balance is unknown (§1.3; the spec lists 503). Raises ValueError for
        days < 1.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be a positive whole number, got {days!r}")
        self._call("POST", self._channel_path(channel_id, "extend"), body={"days": days, "comment": comment})

    def change_mode(self, channel_id: str, mode: str) -> None:
        """Switch a channel's mode (PATCH /channels/{id}/mode); the channel restarts (~30 s, §1.3).

        Raises ValueError for a mode outside trial, dev, dev_archive, live.
        """
        if mode not in CHANNEL_MODES:
            raise ValueError(f"mode must be one of {', '.join(sorted(CHANNEL_MODES))}, got {mode!r}")
        self._call("PATCH", self._channel_path(channel_id, "mode"), body={"mode": mode})

    def _channel_path(self, channel_id: str, action: str | None = None) -> str:
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        return f"{path}/{action}" if action else path


# ------------------------------------------------------------------------------------------------
# Gate API
# ------------------------------------------------------------------------------------------------
class GateClient(_Client):
    """One channel's gate API (§2), authenticated with that channel's token.

    `api_url` is the channel's `apiUrl` as Whapi returns it; the timeout defaults to WHAPI_TIMEOUT.
    Every method raises WhapiError on failure and ValueError for arguments that cannot be right,
    before any request is sent. While a new channel starts (up to ~90 s, §1.3) the gate may answer
    404 or 5xx: retrying over that window is the caller's job.
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
        """The channel's status (GET /health). Whapi's default wakeup=true launches the channel, so
        the portal's polling sends wakeup=false unless asked."""
        return self._call("GET", "/health", params={"wakeup": "true" if wakeup else "false"}, parse=Health.from_payload)

    def get_settings(self) -> dict[str, Any]:
        """The channel's settings object (GET /settings), as sent."""
        return self._call("GET", "/settings", parse=_expect_object)

    def patch_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change top-level settings (PATCH /settings) and return the settings after the update.

        Fields left out stay unchanged, but `webhooks` replaces the whole list: send all of them.
        Returns the answer's `after_update` when present, else the whole answer.
        """
        if not isinstance(changes, dict):
            raise ValueError("settings changes must be a dict")

        def parse(payload: Any) -> dict[str, Any]:
            answer = _expect_object(payload)
            after = answer.get("after_update")
            return after if isinstance(after, dict) else answer

        return self._call("PATCH", "/settings", body=changes, parse=parse)

    def login_qr(self, *, size: int | None = None) -> QrCode:
        """A login QR (GET /users/login). Status WAITING means "ask again shortly".

        409 (already authenticated), 406 (mobile channel) and 422 (render failed) are permanent
        WhapiErrors. Raises ValueError for a size below 1.
        """
        params: dict[str, Any] = {}
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"size must be a positive whole number, got {size!r}")
            params["size"] = size
        return self._call("GET", "/users/login", params=params or None, parse=QrCode.from_payload)

    def pairing_code(self, phone: str) -> str:
        """A pairing code such as "123-456" for linking by phone number (GET /users/login/{phone}).

        Raises ValueError unless `phone` is 7 to 15 digits (no "+", no spaces).
        """
        _check_phone(phone)

        def parse(payload: Any) -> str:
            code = _optional_str(_expect_object(payload).get("code"))
            if code is None:
                raise ValueError("answer has no 'code'")
            return code

        # The phone number stays out of logs and error messages.
        return self._call("GET", f"/users/login/{phone}", parse=parse, shown_path="/users/login/{phone}")

    def logout(self) -> None:
        """Unlink the WhatsApp account (POST /users/logout)."""
        self._call("POST", "/users/logout")

    def profile(self) -> dict[str, Any]:
        """The linked account's profile (GET /users/profile): name, about, icon, icon_full."""
        return self._call("GET", "/users/profile", parse=_expect_object)


def partner_client() -> PartnerClient:
    """A PartnerClient configured from WHAPI_PARTNER_URL, WHAPI_PARTNER_TOKEN and WHAPI_TIMEOUT."""
    return PartnerClient(settings.WHAPI_PARTNER_URL, settings.WHAPI_PARTNER_TOKEN, timeout=settings.WHAPI_TIMEOUT)


# A person is waiting on the page: answer within seconds, and let the page try again itself.
INTERACTIVE_TIMEOUT = 5.0


def gate_client(api_url: str, token: str, *, interactive: bool = False) -> GateClient:
    """A GateClient for one channel, with the WHAPI_TIMEOUT timeout.

    `interactive=True` (a page waiting for the answer): at most INTERACTIVE_TIMEOUT seconds and no
    retries, so a gate that is down shows an error in seconds instead of holding the request.
    """
    if not interactive:
        return GateClient(api_url, token, timeout=settings.WHAPI_TIMEOUT)
    client = GateClient(api_url, token, timeout=min(settings.WHAPI_TIMEOUT, INTERACTIVE_TIMEOUT))
    client.retry_delays = ()
    return client
