"""The transport both Whapi clients share: `BaseClient`, plus the helpers that read answers and errors.

A call sends `Authorization: Bearer <token>` and `Accept: application/json`, uses a (connect, read)
timeout and turns every failure into `WhapiError`, whose `permanent` and `outcome_unknown` flags tell
the caller whether to retry and whether the call may have happened anyway. Only GET requests are
retried here (at most twice); a write is retried, if at all, by the caller, which knows whether
repeating it is safe. Action calls may answer `{"success": true}` or nothing at all (docs/whapi.md §6).
"""

from __future__ import annotations

import email.utils
import http
import http.cookiejar
import json
import logging
import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from django.conf import settings

from channels_app.whapi.errors import WhapiError
from channels_app.whapi.payloads import optional_int, optional_str

# The package's name, not this module's: every module of the package logs as "channels_app.whapi".
logger = logging.getLogger("channels_app.whapi")

T = TypeVar("T")

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


def reusable_session() -> requests.Session:
    """A session for many calls made one after another in one thread, to any channels' gates: it keeps
    its connections to a host open between calls (one TCP and TLS handshake per host, not per call)
    and accepts no cookies, so nothing one channel's answer sets is sent with another channel's call.
    Not for sharing between threads; close it when done."""
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    if not set(urllib.request.getproxies()) - {"no"}:  # NO_PROXY alone configures no proxy
        # requests reads the environment on every call (proxy variables, .netrc, CA bundle variables):
        # with no proxy configured that costs more CPU than the rest of a gate call, so the session
        # reads the CA bundle variables once, here, and nothing per call. (With a proxy it keeps
        # requests' per-call reading, which also honours NO_PROXY.) A .netrc entry is never wanted:
        # every call carries its channel's own Authorization header.
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def in_lanes(items: list[Any], sessions: list[requests.Session], call: Callable[[Any, requests.Session | None], T]):
    """`call(item, session)` for each item, in order: len(`sessions`) at a time, each lane a thread
    with one of the sessions (in this thread, with the one session or none, when there is at most
    one session or item). Returns each call's result, or the exception it raised. For gate calls
    only: `call` must not touch the database, whose connections belong to the caller's thread."""
    if len(sessions) <= 1 or len(items) <= 1:
        session = sessions[0] if sessions else None
        return [_outcome(call, item, session) for item in items]
    lanes = min(len(sessions), len(items))
    results: list[Any] = [None] * len(items)

    def lane(index: int) -> None:
        for position in range(index, len(items), lanes):
            results[position] = _outcome(call, items[position], sessions[index])

    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="gate-lane") as pool:
        for future in [pool.submit(lane, index) for index in range(lanes)]:
            future.result()
    return results


def _outcome(call: Callable[[Any, requests.Session | None], T], item: Any, session: requests.Session | None):
    try:
        return call(item, session)
    except Exception as exc:
        return exc


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


def expect_object(payload: Any) -> dict[str, Any]:
    """Parser for answers that must be an object: the object itself, else ValueError."""
    if not isinstance(payload, dict):
        raise ValueError("answer is not a JSON object")
    return payload


class BaseClient:
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
        message = optional_str(error.get("message")) or optional_str(error.get("details")) or ""
        return message, optional_int(error.get("code"))
    return optional_str(error) or optional_str(payload.get("message")) or "", optional_int(payload.get("code"))


# ------------------------------------------------------------------------------------------------
# Arguments both clients check before sending anything
# ------------------------------------------------------------------------------------------------
# ASCII digits only: \d would also accept other scripts' digits, and $ a trailing newline.
_PHONE_RE = re.compile(r"[0-9]{7,15}")


def check_phone(phone: str) -> str:
    if not isinstance(phone, str) or not _PHONE_RE.fullmatch(phone):
        raise ValueError(f"phone must be 7 to 15 digits without '+' or spaces, got {phone!r}")
    return phone
