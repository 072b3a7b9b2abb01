"""The webhook receiver: one URL for every channel; Whapi posts body-mode callbacks to it.

Contract (Whapi's side of it: docs/whapi.md §3):
- POST only, CSRF-exempt, body at most MAX_BODY bytes (413 beyond);
- malformed JSON, a non-object, a missing or wrong-typed `channel_id`/`event` → 400;
- authenticated by the channel's secret in the WEBHOOK_SECRET_HEADER header *and* bound to the body's
  `channel_id` (the secret of channel A cannot move channel B); missing or wrong → 401, nothing stored;
- every authenticated callback is stored raw in the ledger, committed together with its effects
  before the answer;
- handled events are applied (idempotently); unknown event types are stored and answered 200;
- no Whapi call inside the request: a report that wants confirming sets the channel's due check
  (`health_check_due_at`) in the same UPDATE, and the checks sweep asks Whapi;
- a stored callback can be applied again with `replay` (the webhook ledger in the admin).
Answers other than 200 make Whapi retry, so everything Whapi should not retry gets 200 — except an
authenticated callback whose payload lacks what its type needs, which the contract answers with 400
(it is kept in the ledger, and Whapi drops it after `webhook_max_age_seconds` if set).
"""

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from django.db import DataError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_app.models import WEBHOOK_SECRET_HEADER, Channel, ChannelEvent, WebhookEvent
from channels_app.status import (
    Change,
    change_for_health,
    change_for_user_connected,
    change_for_user_disconnected,
    change_write,
    channel_lock,
    phone_digits,
)
from channels_app.whapi import Health, WhapiError

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
STATUS_LENGTH = Channel._meta.get_field("health_status").max_length
NAME_LENGTH = Channel._meta.get_field("connected_name").max_length
SECRET_META = "HTTP_" + WEBHOOK_SECRET_HEADER.upper().replace("-", "_")  # the header as WSGI names it
Outcome = WebhookEvent.Outcome
WEBHOOK = ChannelEvent.Source.WEBHOOK


class Malformed(ValueError):
    """The payload of an authenticated callback does not have the shape its event type needs."""


# Values from a callback that go into columns are made to fit them, and the ledger says what was
# changed: a value PostgreSQL refuses (a NUL character, too long for its column, an integer out of
# range) would otherwise fail the callback on every retry of Whapi's.
INT_RANGE = range(-(2**31), 2**31)
BIGINT_MAX = 2**63 - 1


def _fit(value: str, limit: int, what: str, notes: list[str]) -> str:
    """`value` without NUL characters or lone surrogates (which no database stores), and at most
    `limit` characters long (cut ones end in "…")."""
    storable = value.encode("utf-8", "replace").decode("utf-8")
    if storable != value:
        value = storable
        notes.append(f"characters that cannot be stored replaced in the {what}")
    if "\x00" in value:
        value = value.replace("\x00", "")
        notes.append(f"NUL characters removed from the {what}")
    if len(value) > limit:
        value = value[: limit - 1] + "…"
        notes.append(f"the {what} cut to {limit} characters")
    return value


def _fit_number(digits: str, notes: list[str]) -> str:
    limit = Channel._meta.get_field("connected_number").max_length
    if len(digits) > limit:
        notes.append(f"the user id cut to {limit} digits")
        return digits[:limit]
    return digits


def _noted(change: Change, notes: list[str]) -> Change:
    """`change` with what was made safe added to its ledger detail."""
    if not notes:
        return change
    return replace(change, detail="; ".join(filter(None, [change.detail, "made safe: " + ", ".join(notes)])))


def _user(payload: dict, notes: list[str]) -> tuple[str, str]:
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str | int) or str(user.get("id")) == "":
        raise Malformed("`user` must be an object with an `id`")
    number = phone_digits(user["id"])
    if not number:
        raise Malformed("`user.id` holds no phone number")
    name = user.get("name") if isinstance(user.get("name"), str) else ""
    return _fit_number(number, notes), _fit(name, NAME_LENGTH, "user name", notes)


def handle_channel_post(channel: Channel, payload: dict) -> Change:
    health = payload.get("health")
    if not isinstance(health, dict):
        raise Malformed("`health` must be an object")
    try:
        parsed = Health.from_payload(health)
    except (WhapiError, ValueError, TypeError) as exc:
        raise Malformed(f"`health` is malformed: {exc}") from exc
    notes: list[str] = []
    code = parsed.status_code
    if code is not None and code not in INT_RANGE:
        code = None
        notes.append("the status code out of range, not stored")
    user_id = parsed.user_id and _fit_number(phone_digits(parsed.user_id), notes)
    start_at, uptime = (min(max(value, 0), BIGINT_MAX) for value in (parsed.start_at, parsed.uptime))
    if (start_at, uptime) != (parsed.start_at, parsed.uptime):
        notes.append("start_at or uptime out of range, clamped")
    parsed = replace(
        parsed,
        start_at=start_at,
        uptime=uptime,
        status_text=_fit(parsed.status_text, STATUS_LENGTH, "status text", notes),
        status_code=code,
        user_id=user_id or parsed.user_id,
        user_name=parsed.user_name and _fit(parsed.user_name, NAME_LENGTH, "user name", notes),
    )
    return _noted(change_for_health(channel, parsed, source=WEBHOOK), notes)


def handle_users_post(channel: Channel, payload: dict) -> Change:
    notes: list[str] = []
    number, name = _user(payload, notes)
    change = change_for_user_connected(channel, number=number, name=name)
    if change.outcome == Outcome.APPLIED:
        # Let Whapi confirm, and make sure a reconnect finds our webhooks still in place.
        change = replace(change, check_soon=("health", "settings"))
    return _noted(change, notes)


def handle_users_delete(channel: Channel, payload: dict) -> Change:
    notes: list[str] = []
    number, _ = _user(payload, notes)
    change = change_for_user_disconnected(channel, number=number)
    if change.outcome == Outcome.APPLIED or channel.disconnect_checking:
        # Ask Whapi's health (again, if an earlier check did not get through).
        change = replace(change, check_soon=("health",))
    return _noted(change, notes)


def handle_channel_patch(channel: Channel, payload: dict) -> Change:
    # A QR refresh pushed by Whapi: the pages fetch the QR from the gate themselves; nothing to change.
    if not isinstance(payload.get("qr"), dict):
        raise Malformed("`qr` must be an object")
    return Change(Outcome.IGNORED)


# Each handler gets the locked channel and decides what the callback changes (status.Change), writing
# nothing; it raises Malformed when the payload lacks what its event type needs.
EVENT_HANDLERS: dict[tuple[str, str], Callable[[Channel, dict], Change]] = {
    ("channel", "post"): handle_channel_post,
    ("channel", "patch"): handle_channel_patch,
    ("users", "post"): handle_users_post,
    ("users", "delete"): handle_users_delete,
}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


class RefusalCounter:
    """Refused callbacks (no or a wrong secret, an unknown channel), counted per process and logged as
    a summary at most once a minute: a flood of forged callbacks must not flood the log too."""

    INTERVAL = 60.0

    def __init__(self) -> None:
        self.count = 0  # since the process started
        self._unlogged = 0
        self._next_log = 0.0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1
            self._unlogged += 1
            now = time.monotonic()
            if now < self._next_log:
                return
            unlogged, self._unlogged, self._next_log = self._unlogged, 0, now + self.INTERVAL
        logger.warning("webhook: %d callback(s) refused (unknown channel or wrong secret) in the last minute", unlogged)


_refusals = RefusalCounter()


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over MAX_BODY. A request without a Content-Length (sent
    chunked; the server hands it on de-chunked) is read from the input stream, up to the limit."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length:
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            return None
        raw = request.body
    else:
        raw = request.META["wsgi.input"].read(MAX_BODY + 1)
    return raw if len(raw) <= MAX_BODY else None


def _body_text(raw: bytes, notes: list[str]) -> str:
    """The body as text for the ledger, in the encoding JSON was sent in (UTF-8, -16 or -32)."""
    text = raw.decode(json.detect_encoding(raw), errors="replace")
    if "\x00" in text:
        notes.append("NUL characters in the stored body replaced by U+FFFD")
        text = text.replace("\x00", "\ufffd")
    return text


@csrf_exempt
@require_POST
def whapi_webhook(request: HttpRequest) -> JsonResponse:
    raw = _read_body(request)
    if raw is None:
        return _error(413, f"Body larger than {MAX_BODY} bytes.")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return _error(400, "Body is not JSON.")
    if not isinstance(payload, dict):
        return _error(400, "Body must be a JSON object.")
    channel_id, event = payload.get("channel_id"), payload.get("event")
    if not isinstance(channel_id, str) or not channel_id or len(channel_id) > 32 or not channel_id.isprintable():
        return _error(400, "`channel_id` must be a non-empty string of printable characters.")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event.get("event"), str):
        return _error(400, "`event` must be an object with string `type` and `event`.")

    secret = request.META.get(SECRET_META, "")
    if not secret:
        return _refused()
    notes: list[str] = []
    ledger = WebhookEvent(
        whapi_channel_id=channel_id,
        event_type=_fit(event["type"], 32, "event type", notes),
        event_method=_fit(event["event"], 16, "event method", notes),
        body=_body_text(raw, notes),
    )
    try:
        channel = _authenticated_channel(channel_id, secret)
    except Exception:
        # Nothing vouches for this body yet: store nothing (replay would trust it); Whapi retries.
        logger.exception("webhook for channel %r: the channel could not be read", channel_id)
        return _error(503, "Temporarily unable to take callbacks.")
    if channel is None:
        return _refused()
    ledger.channel = channel
    try:
        # One transaction: the channel locked, the change decided and written, the ledger row added.
        # It commits before the answer, so an answered callback is never lost.
        with transaction.atomic():
            change = _noted(_apply(channel.pk, ledger, payload), notes)
            ledger.outcome, ledger.detail = change.outcome, change.detail
            ledger.save()
    except Channel.DoesNotExist:
        return _refused()  # removed since it was authenticated
    except Malformed as exc:
        # Whapi would resend the same body forever; say why once, and keep it in the ledger.
        return _store_failed(ledger, str(exc), 400)
    except (DataError, OverflowError, UnicodeError) as exc:
        # The database refuses a value of this callback, and would on every retry: keep it for replay
        # after a fix, and tell Whapi it was taken.
        logger.exception("webhook for channel %r could not be applied", channel_id)
        return _store_failed(ledger, f"a value the database refuses: {type(exc).__name__}", 200)
    except Exception as exc:
        # A bug must not lose an authenticated callback: it is in the ledger for replay.
        logger.exception("webhook for channel %r failed", channel_id)
        return _store_failed(ledger, f"internal error: {type(exc).__name__}", 503)
    return JsonResponse({"ok": True, "outcome": ledger.outcome})


def _authenticated_channel(whapi_id: str, secret: str) -> Channel | None:
    """The channel whose Whapi id and webhook secret these are; None for an unknown id or a wrong secret.
    During a rotation the secret before it is accepted too, until Whapi has the new one."""
    channel = Channel.objects.only("id", "webhook_secret", "previous_webhook_secret").filter(whapi_id=whapi_id).first()
    if channel is None:
        return None
    given = secret.encode()
    secrets = [channel.webhook_secret, channel.previous_webhook_secret]
    # Both compared, so the time taken says nothing about which one matched.
    matches = [bool(known) and hmac.compare_digest(given, known.encode()) for known in secrets]
    return channel if any(matches) else None


def _apply(channel_id: int, ledger: WebhookEvent, payload: dict) -> Change:
    """Lock the channel (in the caller's transaction), decide what the callback changes and write it;
    returns the change. Raises Channel.DoesNotExist, and what the handler raises.

    Deciding under the lock is what makes concurrent callbacks safe: a newer report stored by another
    worker since the channel was authenticated is seen here, so it is never rolled back.
    """
    channel = channel_lock(channel_id)
    change = _decide(channel, ledger, payload)
    change_write(channel, change, source=WEBHOOK)
    return change


def _refused() -> JsonResponse:
    _refusals.add()
    return _error(401, "Unknown channel or wrong secret.")


def _store_failed(ledger: WebhookEvent, detail: str, status: int) -> JsonResponse:
    ledger.pk, ledger.outcome, ledger.detail = None, Outcome.FAILED, detail
    try:
        ledger.save()
    except Exception:
        # The database refuses the row too (down, the channel row removed meanwhile, a value it cannot
        # store): Whapi retries; the answer is never a 500.
        logger.exception("webhook for channel %r could not be stored", ledger.whapi_channel_id)
        return _error(503, "Temporarily unable to take callbacks.")
    return _error(status, detail)


def _decide(channel: Channel, ledger: WebhookEvent, payload: dict) -> Change:
    """What the callback changes, by the handler of its event type. Raises what the handler raises."""
    if channel.state == Channel.State.DELETED:
        return Change(Outcome.IGNORED, detail="channel is deleted")
    handler = EVENT_HANDLERS.get((ledger.event_type, ledger.event_method))
    if handler is None:
        return Change(Outcome.IGNORED, detail="event type not handled")
    return handler(channel, payload)


def _dispatch(ledger: WebhookEvent, channel: Channel, payload: dict) -> tuple[str, str, int]:
    """Apply one stored callback in its own savepoint; returns (outcome, detail, HTTP status for Whapi)."""
    try:
        with transaction.atomic():
            change = _apply(channel.pk, ledger, payload)
            return change.outcome, change.detail, 200
    except Malformed as exc:
        return Outcome.FAILED, str(exc), 400
    except Exception as exc:
        logger.exception("webhook %s for channel %s failed", ledger.pk, ledger.whapi_channel_id)
        return Outcome.FAILED, f"internal error: {type(exc).__name__}", 503


def replay(event: WebhookEvent) -> str:
    """Apply a stored callback again through EVENT_HANDLERS (e.g. one that failed before a fix).

    Records the new outcome on the ledger row, with the previous one in `detail`, and returns it.
    Handlers are idempotent, so replaying a callback that was applied changes nothing (DUPLICATE or
    STALE). The body is trusted: it was authenticated when it was received.
    """
    previous = f"{event.outcome}: {event.detail}" if event.detail else event.outcome
    channel = event.channel or Channel.objects.filter(whapi_id=event.whapi_channel_id).first()
    try:
        payload = json.loads(event.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        outcome, detail = Outcome.FAILED, "the stored body is not a JSON object"
    elif channel is None:
        outcome, detail = Outcome.UNKNOWN_CHANNEL, "no channel with this Whapi id"
    else:
        outcome, detail, _status = _dispatch(event, channel, payload)
    detail = f"replayed at {timezone.now():%Y-%m-%d %H:%M:%S} UTC{f': {detail}' if detail else ''} (was {previous})"
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome, detail=detail[:4000], channel=channel)
    event.outcome, event.detail, event.channel = outcome, detail[:4000], channel
    return outcome
