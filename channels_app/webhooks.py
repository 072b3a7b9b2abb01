"""The webhook receiver: one URL for every channel; Whapi posts body-mode callbacks to it.

Contract (Whapi's side of it: docs/whapi.md §3):
- POST only, CSRF-exempt, body at most MAX_BODY bytes (413 beyond);
- malformed JSON, a non-object, a missing or wrong-typed `channel_id`/`event` → 400;
- authenticated by the channel's secret in the WEBHOOK_SECRET_HEADER header *and* bound to the body's
  `channel_id` (the secret of channel A cannot move channel B); missing or wrong → 401, nothing stored;
- every authenticated callback is stored raw in the ledger, committed before the answer: the
  receiver checks the event's shape (its handler's parse step) and stores the row as `received`, one
  INSERT with no transaction and no lock, and answers 200 `{"ok": true, "outcome": "received"}`;
- the applier (`callbacks_apply`, the periodic "callbacks" schedule, polling every APPLY_IDLE_SECONDS)
  applies the stored callbacks, per channel in the order they were stored, idempotently, and records
  each one's outcome; unknown event types are stored, answered 200 and marked ignored;
- no Whapi call in the request or the applier: a report that wants confirming sets the channel's due
  check (`health_check_due_at`) in the channel's UPDATE, and the checks sweep asks Whapi;
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
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from django.db import DataError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_app.crypto import decrypt
from channels_app.models import WEBHOOK_SECRET_HEADER, Channel, ChannelEvent, WebhookEvent
from channels_app.status import (
    Change,
    change_fields,
    change_for_health,
    change_for_user_connected,
    change_for_user_disconnected,
    channel_lock,
    channel_update,
    phone_digits,
)
from channels_app.whapi import Health, WhapiError

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
STATUS_LENGTH = Channel._meta.get_field("health_status").max_length
NAME_LENGTH = Channel._meta.get_field("connected_name").max_length
SECRET_META = "HTTP_" + WEBHOOK_SECRET_HEADER.upper().replace("-", "_")  # the header as WSGI names it
Outcome = WebhookEvent.Outcome
# The receiver's lookup (_authenticated_channel): a channel's id and both webhook secrets, as stored.
CHANNEL_SECRETS = "SELECT id, webhook_secret, previous_webhook_secret FROM channels_app_channel WHERE whapi_id = %s"
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
    return replace(change, detail="; ".join(filter(None, [change.detail, _made_safe(notes)])))


class User(NamedTuple):
    """The account a `users` event is about."""

    number: str
    name: str


def parse_channel_post(payload: dict, notes: list[str]) -> Health:
    health = payload.get("health")
    if not isinstance(health, dict):
        raise Malformed("`health` must be an object")
    try:
        parsed = Health.from_payload(health)
    except (WhapiError, ValueError, TypeError) as exc:
        raise Malformed(f"`health` is malformed: {exc}") from exc
    code = parsed.status_code
    if code is not None and code not in INT_RANGE:
        code = None
        notes.append("the status code out of range, not stored")
    user_id = parsed.user_id and _fit_number(phone_digits(parsed.user_id), notes)
    start_at, uptime = (min(max(value, 0), BIGINT_MAX) for value in (parsed.start_at, parsed.uptime))
    if (start_at, uptime) != (parsed.start_at, parsed.uptime):
        notes.append("start_at or uptime out of range, clamped")
    return replace(
        parsed,
        start_at=start_at,
        uptime=uptime,
        status_text=_fit(parsed.status_text, STATUS_LENGTH, "status text", notes),
        status_code=code,
        user_id=user_id or parsed.user_id,
        user_name=parsed.user_name and _fit(parsed.user_name, NAME_LENGTH, "user name", notes),
    )


def decide_channel_post(channel: Channel, health: Health) -> Change:
    return change_for_health(channel, health, source=WEBHOOK)


def parse_users(payload: dict, notes: list[str]) -> User:
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str | int) or str(user.get("id")) == "":
        raise Malformed("`user` must be an object with an `id`")
    number = phone_digits(user["id"])
    if not number:
        raise Malformed("`user.id` holds no phone number")
    name = user.get("name") if isinstance(user.get("name"), str) else ""
    return User(_fit_number(number, notes), _fit(name, NAME_LENGTH, "user name", notes))


def decide_users_post(channel: Channel, user: User) -> Change:
    change = change_for_user_connected(channel, number=user.number, name=user.name)
    if change.outcome == Outcome.APPLIED:
        # Let Whapi confirm, and make sure a reconnect finds our webhooks still in place.
        change = replace(change, check_soon=("health", "settings"))
    return change


def decide_users_delete(channel: Channel, user: User) -> Change:
    change = change_for_user_disconnected(channel, number=user.number)
    if change.outcome == Outcome.APPLIED or channel.disconnect_checking:
        # Ask Whapi's health (again, if an earlier check did not get through).
        change = replace(change, check_soon=("health",))
    return change


def parse_channel_patch(payload: dict, notes: list[str]) -> dict:
    if not isinstance(payload.get("qr"), dict):
        raise Malformed("`qr` must be an object")
    return payload["qr"]


def decide_channel_patch(channel: Channel, qr: dict) -> Change:
    # A QR refresh pushed by Whapi: the pages fetch the QR from the gate themselves; nothing to change.
    return Change(Outcome.IGNORED)


@dataclass(frozen=True)
class EventHandler:
    """How one event type is handled, in two steps. `parse` reads the payload into a typed value,
    without the channel (the receiver runs it to refuse a malformed callback with 400), raising
    Malformed when the payload lacks what the event type needs, and appending to `notes` what it had
    to make safe; `decide` gets the locked channel and that value and decides what the callback
    changes (status.Change), writing nothing."""

    parse: Callable[[dict, list[str]], Any]
    decide: Callable[[Channel, Any], Change]


EVENT_HANDLERS: dict[tuple[str, str], EventHandler] = {
    ("channel", "post"): EventHandler(parse_channel_post, decide_channel_post),
    ("channel", "patch"): EventHandler(parse_channel_patch, decide_channel_patch),
    ("users", "post"): EventHandler(parse_users, decide_users_post),
    ("users", "delete"): EventHandler(parse_users, decide_users_delete),
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


def read_body(request: HttpRequest) -> bytes | None:
    """The raw body of a Whapi callback (this receiver's and the partner's `days` one), or None when
    it is over MAX_BODY. A request without a Content-Length (sent
    chunked; the server hands it on de-chunked) is read from the input stream, up to the limit."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length:
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            return None
        raw = request.body
    else:
        raw = request.META["wsgi.input"].read(MAX_BODY + 1)
    return raw if len(raw) <= MAX_BODY else None


def body_text(raw: bytes, notes: list[str]) -> str:
    """The body as text for the ledger, in the encoding JSON was sent in (UTF-8, -16 or -32)."""
    text = raw.decode(json.detect_encoding(raw), errors="replace")
    if "\x00" in text:
        notes.append("NUL characters in the stored body replaced by U+FFFD")
        text = text.replace("\x00", "\ufffd")
    return text


@csrf_exempt
@require_POST
def whapi_webhook(request: HttpRequest) -> JsonResponse:
    raw = read_body(request)
    if raw is None:
        return _error(413, f"Body larger than {MAX_BODY} bytes.")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return _error(400, "Body is not JSON.")
    if not isinstance(payload, dict):
        return _error(400, "Body must be a JSON object.")
    whapi_id, event = payload.get("channel_id"), payload.get("event")
    if not isinstance(whapi_id, str) or not whapi_id or len(whapi_id) > 32 or not whapi_id.isprintable():
        return _error(400, "`channel_id` must be a non-empty string of printable characters.")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event.get("event"), str):
        return _error(400, "`event` must be an object with string `type` and `event`.")

    secret = request.META.get(SECRET_META, "")
    if not secret:
        return _refused()
    notes: list[str] = []
    ledger = WebhookEvent(
        whapi_channel_id=whapi_id,
        event_type=_fit(event["type"], 32, "event type", notes),
        event_method=_fit(event["event"], 16, "event method", notes),
        body=body_text(raw, notes),
    )
    try:
        channel_pk = _authenticated_channel(whapi_id, secret)
    except Exception:
        # Nothing vouches for this body yet: store nothing (replay would trust it); Whapi retries.
        logger.exception("webhook for channel %r: the channel could not be read", whapi_id)
        return _error(503, "Temporarily unable to take callbacks.")
    if channel_pk is None:
        return _refused()
    ledger.channel_id = channel_pk
    handler = EVENT_HANDLERS.get((ledger.event_type, ledger.event_method))
    try:
        if handler is not None:
            handler.parse(payload, [])  # the shape only: the applier parses the stored body again
    except Malformed as exc:
        # Whapi would resend the same body forever; say why once, and keep it in the ledger.
        return _store_failed(ledger, str(exc), 400)
    except Exception as exc:
        # A bug must not lose an authenticated callback: it is in the ledger for replay.
        logger.exception("webhook for channel %r failed", whapi_id)
        return _store_failed(ledger, f"internal error: {type(exc).__name__}", 503)
    # One INSERT, committed before the answer, so an answered callback is never lost; the applier
    # (callbacks_apply) applies it within a fraction of a second.
    ledger.outcome, ledger.detail = Outcome.RECEIVED, _made_safe(notes)
    try:
        ledger.save()
    except Exception:
        # The database refuses the row (down, the channel removed meanwhile): Whapi retries; never a 500.
        logger.exception("webhook for channel %r could not be stored", whapi_id)
        return _error(503, "Temporarily unable to take callbacks.")
    return JsonResponse({"ok": True, "outcome": ledger.outcome})


def _authenticated_channel(whapi_id: str, secret: str) -> int | None:
    """The id of the channel whose Whapi id and webhook secret these are; None for an unknown id or a
    wrong secret. During a rotation the secret before it is accepted too, until Whapi has the new one.

    One statement on a cursor rather than a queryset, the request path's only hand-written SQL: it
    runs for every callback, and building the query, compiling it and making a model instance of the
    row cost a third of a callback's CPU (docs/benchmarks.md, "The receiver's lookup on a cursor").
    `whapi_id` is unique, so there is one row or none; the secrets come as stored, encrypted.
    """
    with connection.cursor() as cursor:
        cursor.execute(CHANNEL_SECRETS, [whapi_id])
        row = cursor.fetchone()
    if row is None:
        return None
    channel_pk, *stored = row
    given = secret.encode()
    # Both compared, so the time taken says nothing about which one matched.
    matches = [bool(known) and hmac.compare_digest(given, decrypt(known).encode()) for known in stored]
    return channel_pk if any(matches) else None


def _made_safe(notes: list[str]) -> str:
    return "made safe: " + ", ".join(notes) if notes else ""


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


# ------------------------------------------------------------------------------------------------
# The applier: stored callbacks → the channels
# ------------------------------------------------------------------------------------------------
# One applier run lasts this long. The "callbacks" schedule starts one every minute, so two overlap for
# 20 s (their channel claims keep each channel's callbacks in order) and a callback never waits for
# a gap between runs; django-q2's task timeout is 120 s.
APPLY_SECONDS = 80.0
# Stored callbacks one round claims at most.
APPLY_BATCH = 200
# A round that found nothing to apply waits this long before it looks again: a callback's change is
# on its channel about this soon after the answer.
APPLY_IDLE_SECONDS = 0.3


def _decide(channel: Channel, ledger: WebhookEvent) -> Change:
    """What a stored callback changes on `channel` (locked; as the callbacks before it left it), by
    the two steps of its event type's handler. Raises Malformed, and what the handler raises."""
    if channel.state == Channel.State.DELETED:
        return Change(Outcome.IGNORED, detail="channel is deleted")
    handler = EVENT_HANDLERS.get((ledger.event_type, ledger.event_method))
    if handler is None:
        return Change(Outcome.IGNORED, detail="event type not handled")
    try:
        payload = json.loads(ledger.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise Malformed("the stored body is not a JSON object")
    notes: list[str] = []
    value = handler.parse(payload, notes)
    return _noted(handler.decide(channel, value), notes)


def _apply_events(channel: Channel, events: list[WebhookEvent]) -> None:
    """Apply `events` (stored callbacks of `channel`, oldest first) to the channel, which the caller
    locked in the current transaction; sets each event's outcome and detail, and saves nothing of
    the ledger. Raises what writing the channel raises.

    Each callback is decided from the channel as the one before it left it (its fields set in memory);
    the channel is written once, through `status.channel_update`, and once more before each state
    move, so every move has its own timeline row, as if the callbacks had been applied one by one.
    """
    pending: dict[str, Any] = {}
    for event in events:
        try:
            change = _decide(channel, event)
        except Malformed as exc:
            event.outcome, event.detail = Outcome.FAILED, str(exc)
            continue
        fields = change_fields(change)
        if change.state:
            channel_update(channel, {**pending, **fields}, state=change.state, source=WEBHOOK, detail=change.note)
            pending = {}
        else:
            pending.update(fields)
            for name, value in fields.items():
                setattr(channel, name, value)
        received = event.detail if event.outcome == Outcome.RECEIVED else ""
        event.outcome, event.detail = change.outcome, "; ".join(filter(None, [change.detail, received]))[:4000]
    if pending:
        channel_update(channel, pending)


def _failure(exc: Exception) -> str:
    if isinstance(exc, DataError | OverflowError | UnicodeError):
        return f"a value the database refuses: {type(exc).__name__}"
    return f"internal error: {type(exc).__name__}"


def _apply_channel(channel: Channel, events: list[WebhookEvent]) -> None:
    """`_apply_events` in a savepoint. When it fails (a bug, a value the database refuses), the
    callbacks are applied again one by one, each in its own savepoint, so only those that fail are
    marked failed (replayable from the admin) and the rest of the batch goes on."""
    received = [(event.outcome, event.detail) for event in events]
    try:
        with transaction.atomic():
            _apply_events(channel, events)
        return
    except Exception as exc:
        for event, (outcome, detail) in zip(events, received, strict=True):
            event.outcome, event.detail = outcome, detail
        if len(events) == 1:
            logger.exception("webhook %s for channel %s failed", events[0].pk, events[0].whapi_channel_id)
            events[0].outcome, events[0].detail = Outcome.FAILED, _failure(exc)
            return
    for event in events:
        _apply_channel(channel_lock(channel.pk), [event])  # read again: the failed savepoint left nothing


def callbacks_apply_batch(limit: int = APPLY_BATCH) -> int:
    """Apply up to `limit` stored callbacks (outcome RECEIVED), oldest first; returns how many were
    given an outcome.

    One transaction. The channels of the oldest callbacks are locked with SKIP LOCKED (one SELECT),
    so a channel another applier holds is left to it; then the pending callbacks of the channels
    locked here are read again, oldest first by ledger id. Whoever holds a channel's lock therefore
    applies that channel's oldest pending callbacks, and callbacks are applied per channel in the
    order they were stored, also with several appliers at once (two worker clusters). The outcomes
    are written with one UPDATE per distinct outcome and detail. An applier that dies leaves its
    callbacks RECEIVED for the next one: re-applying them is safe, the handlers are idempotent.
    """
    oldest = WebhookEvent.objects.filter(outcome=Outcome.RECEIVED).order_by("pk")[:limit]
    channel_ids = set(oldest.values_list("channel_id", flat=True))
    if not channel_ids:
        return 0  # nothing stored since the last round: one SELECT, no transaction
    with transaction.atomic():
        if None in channel_ids:  # the channel row was removed after its callback was stored
            channel_ids.discard(None)
            WebhookEvent.objects.filter(outcome=Outcome.RECEIVED, channel__isnull=True).update(
                outcome=Outcome.UNKNOWN_CHANNEL, detail="the channel was removed before the callback was applied"
            )
        channels = {
            channel.pk: channel
            # FOR NO KEY UPDATE: the receiver's INSERT of a callback for a locked channel (whose
            # foreign key takes a key-share lock) does not wait for this transaction.
            for channel in Channel.objects.without_secrets()
            .select_for_update(skip_locked=True, no_key=True)
            .filter(pk__in=channel_ids)
            .order_by("pk")
        }
        events = list(
            WebhookEvent.objects.filter(outcome=Outcome.RECEIVED, channel_id__in=list(channels)).order_by("pk")[:limit]
        )
        by_channel: dict[int, list[WebhookEvent]] = {}
        for event in events:
            by_channel.setdefault(event.channel_id, []).append(event)
        for channel_id, its_events in by_channel.items():
            _apply_channel(channels[channel_id], its_events)
        # The outcomes: one UPDATE per distinct outcome and detail (a storm's callbacks mostly share
        # theirs), not bulk_update's CASE over every row.
        alike: dict[tuple[str, str], list[int]] = {}
        for event in events:
            alike.setdefault((event.outcome, event.detail), []).append(event.pk)
        for (outcome, detail), ids in alike.items():
            WebhookEvent.objects.filter(pk__in=ids).update(outcome=outcome, detail=detail)
    return len(events)


def callbacks_apply(*, seconds: float = APPLY_SECONDS, limit: int = APPLY_BATCH) -> int:
    """Periodic: apply stored callbacks for `seconds`, a batch at a time, looking again every
    APPLY_IDLE_SECONDS when there are none; at least one round. Returns how many were applied."""
    deadline = time.monotonic() + seconds
    done = 0
    while True:
        applied = callbacks_apply_batch(limit)
        done += applied
        if time.monotonic() >= deadline:
            return done
        if not applied:
            time.sleep(min(APPLY_IDLE_SECONDS, max(0.0, deadline - time.monotonic())))


def replay(event: WebhookEvent) -> str:
    """Apply a stored callback again through EVENT_HANDLERS (e.g. one that failed before a fix), as
    the applier does.

    Records the new outcome on the ledger row, with the previous one in `detail`, and returns it.
    Handlers are idempotent, so replaying a callback that was applied changes nothing (DUPLICATE or
    STALE). The body is trusted: it was authenticated when it was received.
    """
    previous = f"{event.outcome}: {event.detail}" if event.detail else event.outcome
    channel = event.channel or Channel.objects.filter(whapi_id=event.whapi_channel_id).first()
    if channel is None:
        event.outcome, event.detail = Outcome.UNKNOWN_CHANNEL, "no channel with this Whapi id"
    else:
        event.channel, event.outcome, event.detail = channel, Outcome.RECEIVED, ""
        with transaction.atomic():
            try:
                locked = channel_lock(channel.pk)
            except Channel.DoesNotExist:
                event.outcome, event.detail = Outcome.UNKNOWN_CHANNEL, "no channel with this Whapi id"
            else:
                _apply_channel(locked, [event])
    detail = event.detail
    detail = f"replayed at {timezone.now():%Y-%m-%d %H:%M:%S} UTC{f': {detail}' if detail else ''} (was {previous})"
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=event.outcome, detail=detail[:4000], channel=channel)
    event.detail = detail[:4000]
    return event.outcome
