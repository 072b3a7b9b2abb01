"""What Whapi says about a channel (health, connect, disconnect; by webhook or poll) → the channel's
status and lifecycle state; and the one write path for both.

`channel_update` is the only function that writes a channel's status columns or moves its state
(with the move's timeline row): the webhook receiver, the health poll, the pipeline, the actions and
replay all call it, directly or through `change_write`.

Health is ordered by `(start_at, uptime)` (docs/whapi.md §3): a late or replayed report never rolls
the status back. Users events carry no id or timestamp, so they are made idempotent by state: a
connect for the number already connected changes nothing, while the same number connecting again
after a disconnect is applied.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.rules import alert_fields
from channels_app.models import Channel, ChannelEvent, WebhookEvent
from channels_app.whapi import Health, WhapiError, gate_client
from channels_app.whapi.transport import in_lanes
from events.emit import events_for_move

logger = logging.getLogger(__name__)

State = Channel.State
ErrorSource = Channel.ErrorSource
Outcome = WebhookEvent.Outcome

RETRY_DELAYS = (15, 30, 60, 120, 300, 600)  # seconds, by attempt number
# A report that wants confirming is checked this soon: a burst of callbacks for one channel makes one check.
CHECK_SOON = timedelta(seconds=2)
# A health check that did not get an answer is tried again this much later.
CHECK_RETRY = timedelta(minutes=2)
# Which due column each kind of check has (channels_app.checks sweeps both).
CHECK_COLUMNS = {"health": "health_check_due_at", "settings": "settings_check_due_at"}


def health_check_next(now: datetime) -> datetime:
    """When a channel confirmed at `now` is asked again if Whapi stays quiet (HEALTH_CHECK_EVERY)."""
    return now + timedelta(seconds=settings.HEALTH_CHECK_EVERY)


def phone_digits(user_id: object) -> str:
    """The phone number in a WhatsApp user id ("61371989950" or "61371989950@s.whatsapp.net")."""
    return "".join(ch for ch in str(user_id).split("@")[0] if ch in "0123456789")


# ------------------------------------------------------------------------------------------------
# The one write path
# ------------------------------------------------------------------------------------------------
def channel_update(
    channel: Channel,
    fields: dict[str, Any] | None = None,
    *,
    state: str = "",
    source: str = ChannelEvent.Source.SYSTEM,
    detail: str = "",
    force: bool = False,
) -> bool:
    """Set `fields` on `channel` and, when `state` is given and differs from the channel's (or `force`),
    move it there and add the move to its timeline. Returns whether the state moved.

    Only the named columns are written (`save(update_fields=…)`), so a caller holding an older copy
    of the channel overwrites nothing else. A caller that decides from the channel's current values
    locks it first (`channel_lock`).
    """
    fields = dict(fields or {})
    previous = channel.state
    moves = bool(state) and (state != previous or force)
    now = timezone.now()
    if moves:
        fields.update(state=state, state_changed_at=now)
    for name, value in fields.items():
        setattr(channel, name, value)
    if moves:
        # Events and alerts decide from the channel as it is after the move (its new error, number,
        # days); events first, since alerts clear the told disconnect a reconnect ends.
        events_for_move(channel, previous, state, now)
        for name, value in alert_fields(channel, previous, state, now).items():
            fields[name] = value
            setattr(channel, name, value)
    if fields:
        channel.save(update_fields=[*fields, "updated_at"])
    if moves:
        ChannelEvent.objects.create(
            channel=channel,
            from_state="" if previous == state else previous,
            to_state=state,
            source=source,
            detail=detail[:2000],
            at=now,
        )
        logger.info("channel %s: %s -> %s (%s) %s", channel.pk, previous, state, source, detail)
    return moves


def channel_record_error(channel: Channel, message: str, *, source: str, state: str = "", **fields: Any) -> None:
    """Leave `message` on the channel as its last error (for staff), with `fields` set alongside, and
    move it to `state` if given (the move's timeline note is the message)."""
    fields = {"last_error": message, "last_error_at": timezone.now(), "error_source": source, **fields}
    channel_update(channel, fields, state=state, detail=message)
    logger.warning("channel %s (%s): %s", channel.pk, channel.whapi_id or "not created", message)


def channel_give_up(channel: Channel, reason: str, *, source: str, **fields: Any) -> None:
    """Leave the reason on the channel and move it to ERROR, for staff to see."""
    channel_record_error(channel, reason, source=source, state=State.ERROR, **fields)


def retry_delay(attempt: int) -> timedelta:
    """How long to wait after failed attempt number `attempt` (bounded by the last of RETRY_DELAYS)."""
    return timedelta(seconds=RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])


def channel_retry_later(
    channel: Channel,
    reason: str,
    *,
    source: str,
    attempts: int,
    limit: int,
    retry_field: str = "",
    give_up_reason: str = "",
    **fields: Any,
) -> datetime | None:
    """After failed attempt number `attempts` of something for the channel: give up once `limit`
    attempts were made (ERROR, with `give_up_reason` or the reason), or leave the reason with the time
    of the next attempt (also stored in `retry_field`). `fields` are stored alongside.

    Returns when to try again, for the caller to schedule; None when it gave up.
    """
    if attempts >= limit:
        channel_give_up(
            channel, give_up_reason or f"{reason} (gave up after {attempts} attempts)", source=source, **fields
        )
        return None
    retry_at = timezone.now() + retry_delay(attempts)
    if retry_field:
        fields[retry_field] = retry_at
    channel_record_error(channel, f"{reason}; trying again at {retry_at:%H:%M:%S} UTC.", source=source, **fields)
    return retry_at


def channel_lock(channel_id: int) -> Channel:
    """The channel, locked until the surrounding transaction ends (a no-op on SQLite, whose immediate
    transactions serialise writers anyway); raises Channel.DoesNotExist when it is gone."""
    return Channel.objects.select_for_update().get(pk=channel_id)


# ------------------------------------------------------------------------------------------------
# Deciding what a report changes
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """What one report from Whapi does to a channel: decided by the change_for_* functions, which
    write nothing, and carried out by `change_write`."""

    outcome: str  # a WebhookEvent outcome
    detail: str = ""  # for the ledger
    fields: dict[str, Any] = field(default_factory=dict)  # columns to set
    state: str = ""  # the lifecycle state to move to ("" keeps the current one)
    note: str = ""  # the timeline's note for that move
    check_soon: tuple[str, ...] = ()  # checks to make soon ("health", "settings"): their due columns move to now


def change_write(channel: Channel, change: Change, *, source: str) -> str:
    """Carry out `change` on a channel the caller locked in the current transaction; returns its outcome.

    A check wanted soon is a due column set in the same UPDATE (the checks sweep picks it up), so a
    report that wants confirming costs no more than one that does not.
    """
    channel_update(channel, change_fields(change), state=change.state, source=source, detail=change.note)
    return change.outcome


def change_fields(change: Change) -> dict[str, Any]:
    """The columns `change` sets: its fields, and the due column of each check it wants soon."""
    fields = dict(change.fields)
    soon = timezone.now() + CHECK_SOON
    for kind in change.check_soon:
        fields[CHECK_COLUMNS[kind]] = soon
    return fields


def _confirmed(now: datetime) -> dict[str, Any]:
    """The columns of a channel Whapi has just told us about: confirmed now, asked again if it stays quiet."""
    return {"last_confirmed_at": now, "status_stale": False, "health_check_due_at": health_check_next(now)}


def _state_for_health(channel: Channel, health: Health) -> tuple[str, str]:
    """The lifecycle state a health status implies, with a note for the timeline."""
    text = health.status_text
    note = f"Whapi status {text}"
    if text == "AUTH":
        return State.CONNECTED, note
    if text == "QR":
        if channel.state in (State.CONNECTED, State.DISCONNECTED) or channel.connected_number:
            return State.DISCONNECTED, note
        return State.WAITING_SCAN, note
    if text in ("ERROR", "SYNC_ERROR"):
        return State.ERROR, note
    if text == "STOP":  # trial or subscription over, or stopped by hand (docs/whapi.md §2)
        expired = channel.active_till and channel.active_till <= timezone.now()
        return (State.EXPIRED if expired else State.STOPPED), note
    # INIT, LAUNCH, NOT_INIT and texts we do not know are transient: keep the state (docs/whapi.md §6).
    return channel.state, note


def change_for_health(channel: Channel, health: Health, *, source: str) -> Change:
    """A health report, unless we already know a newer one (`start_at`, `uptime`)."""
    new_state, note = _state_for_health(channel, health)
    may_move = channel.state not in (*Channel.SETTING_UP, State.DELETED) and (
        channel.state != State.ERROR or channel.error_source in Channel.ERRORS_HEALTH_CLEARS
    )
    check_soon: tuple[str, ...] = ()
    now = timezone.now()
    # An answer we asked for confirms the channel even when it tells nothing new; a callback that
    # tells nothing new (a retry, a replay) writes nothing.
    asked = source != ChannelEvent.Source.WEBHOOK
    key = (health.start_at, health.uptime)
    if channel.health_start_at is not None and channel.health_uptime is not None:
        known = (channel.health_start_at, channel.health_uptime)
        if key < known:
            return Change(Outcome.STALE, fields=_confirmed(now) if asked else {})
        if key == known:
            # Same report again: nothing to do, unless a users event moved the state away from it since.
            if health.status_text == channel.health_status and not (may_move and new_state != channel.state):
                return Change(Outcome.DUPLICATE, fields=_confirmed(now) if asked else {})
            if not asked:
                # uptime has a resolution of one second: two different reports within the same
                # second cannot be ordered. Take this one, and let a fresh /health settle it.
                check_soon = ("health",)
    fields = {
        "disconnect_reported_at": None,  # whatever a disconnect report said, this report settles it
        "health_status": health.status_text,
        "health_code": health.status_code,
        "health_start_at": health.start_at,
        "health_uptime": health.uptime,
        **_confirmed(now),
    }
    if health.status_text == "AUTH" and health.user_id and phone_digits(health.user_id):
        fields.update(
            connected_number=phone_digits(health.user_id), connected_name=health.user_name or channel.connected_name
        )
        if not channel.connected_at or channel.state != State.CONNECTED:
            fields["connected_at"] = now
    elif health.status_text == "QR":
        fields.update(connected_number="", connected_name="")
    if channel.error_source in Channel.ERRORS_HEALTH_CLEARS and health.status_text in ("AUTH", "QR"):
        fields.update(last_error="", error_source="")
    elif health.status_text in ("ERROR", "SYNC_ERROR"):
        fields.update(
            last_error=f"Whapi reports {health.status_text} for this channel.",
            last_error_at=now,
            error_source=ErrorSource.HEALTH,
        )
    state = new_state if may_move and new_state != channel.state else ""
    return Change(Outcome.APPLIED, fields=fields, state=state, note=note, check_soon=check_soon)


def change_for_user_connected(channel: Channel, *, number: str, name: str) -> Change:
    """A WhatsApp account linked (users.post)."""
    if channel.state == State.CONNECTED and channel.connected_number == number:
        return Change(Outcome.DUPLICATE)
    now = timezone.now()
    return Change(
        Outcome.APPLIED,
        fields={
            "connected_number": number,
            "connected_name": name,
            "connected_at": now,
            "disconnect_reported_at": None,
            **_confirmed(now),
        },
        state=State.CONNECTED if channel.state not in (State.CONNECTED, State.DELETED) else "",
        note=f"number +{number} connected",
    )


def change_for_user_disconnected(channel: Channel, *, number: str) -> Change:
    """A WhatsApp account unlinked (users.delete): recorded as reported, not yet as a disconnect.

    The callback carries no id or time, so a replayed or spurious one would flip a connected channel;
    the caller asks Whapi's health, whose answer moves the channel (QR: disconnected) or keeps it
    (AUTH). Until then the pages say the connection is being checked.
    """
    if not channel.connected_number and channel.state != State.CONNECTED:
        return Change(Outcome.DUPLICATE)
    if number and channel.connected_number and channel.connected_number != number:
        # A logout of a number that is no longer the connected one: nothing to undo.
        return Change(Outcome.STALE)
    if channel.disconnect_reported_at is not None:
        return Change(Outcome.DUPLICATE, detail="a disconnect is being confirmed already")
    return Change(
        Outcome.APPLIED,
        detail="disconnect reported; a health check confirms it",
        fields={"disconnect_reported_at": timezone.now()},
    )


# ------------------------------------------------------------------------------------------------
# Asking Whapi: a status you can trust
# ------------------------------------------------------------------------------------------------
def health_apply(channel_id: int, health: Health, *, source: str) -> str:
    """Apply a health report to the channel, locked, unless we already know a newer one; returns a
    WebhookEvent outcome."""
    with transaction.atomic():
        channel = channel_lock(channel_id)
        return change_write(channel, change_for_health(channel, health, source=source), source=source)


# The columns a health check reads before it asks (channel_health_checks).
ASK_COLUMNS = ("whapi_id", "state", "health_check_due_at", "init_until", "api_url", "token", "error_source")


def channel_health_check(
    channel_id: int, *, source: str = ChannelEvent.Source.POLL, session: requests.Session | None = None
) -> str | None:
    """Ask the channel's gate for `/health` (on `session`, when given) and apply it; returns the
    ledger-style outcome, or None when there was nothing to ask or Whapi could not be reached.
    One channel of `channel_health_checks`, which says what else it does."""
    sessions = [session] if session is not None else []
    return channel_health_checks([channel_id], source=source, sessions=sessions).get(channel_id)


def channel_health_checks(
    channel_ids: list[int], *, source: str = ChannelEvent.Source.POLL, sessions: list[requests.Session] | None = None
) -> dict[int, str | None]:
    """Ask each channel's gate for `/health`, then apply the answers in one transaction; returns each
    channel's ledger-style outcome, None when there was nothing to ask or Whapi could not be reached
    (a channel that is gone has none).

    The gates are asked len(`sessions`) at a time, each thread on a session of its own (one after the
    other in this thread, on a session of the call's own, without sessions). Only those calls run in
    other threads: every read and write of the database is made here.

    Also plans each channel's next check (`health_check_due_at`): none for a channel that is not in
    Whapi, the end of the init delay for one still starting up, CHECK_RETRY after a failure.
    When Whapi cannot be reached the status is marked stale (we keep showing the last confirmed one).

    The checks sweep calls this with the channels one loop claimed: their answers cost one lock query
    and one commit together, and each its UPDATE (and a timeline row for a move). What fails for one
    channel (a row that cannot be read, a write the database refuses) costs only that channel its
    check; with one channel, it is raised.
    """
    try:
        # What deciding whether to ask, asking and recording a failure read; the answers are applied
        # to the channels as locked afterwards.
        channels = list(Channel.objects.filter(pk__in=channel_ids).only(*ASK_COLUMNS))
    except Exception:
        if len(channel_ids) == 1:
            raise
        logger.exception("reading %d channels to check together failed; checking them one by one", len(channel_ids))
        return each_alone(
            channel_health_checks, channel_ids, "health", source=source, sessions=sessions[:1] if sessions else None
        )
    outcomes: dict[int, str | None] = {}
    to_ask: list[Channel] = []
    for channel in channels:
        outcomes[channel.pk] = None
        if not channel.whapi_id or channel.state not in Channel.PRESENT_IN_WHAPI:
            if channel.health_check_due_at is not None:
                alone_in_batch(len(channel_ids), channel, channel_update, channel, {"health_check_due_at": None})
        elif channel.init_until and timezone.now() < channel.init_until:
            alone_in_batch(
                len(channel_ids), channel, channel_update, channel, {"health_check_due_at": channel.init_until}
            )
        else:
            to_ask.append(channel)
    answers: dict[int, Health] = {}
    for channel, answer in zip(to_ask, in_lanes(to_ask, sessions or [], _health_ask), strict=True):
        if isinstance(answer, Health):
            answers[channel.pk] = answer
        elif isinstance(answer, WhapiError):
            alone_in_batch(len(channel_ids), channel, _health_unanswered, channel, answer)
        elif len(channel_ids) == 1:
            raise answer
        else:
            # One channel's failure must not cost the others their check; its claim runs out, and it
            # is asked again then.
            logger.error("health check of channel %s failed", channel.pk, exc_info=answer)
    if not answers:
        return outcomes
    try:
        with transaction.atomic():
            # FOR NO KEY UPDATE: the receiver's INSERT of a callback for one of these channels (whose
            # foreign key takes a key-share lock) does not wait for this transaction.
            locked = list(
                Channel.objects.without_secrets().select_for_update(no_key=True).filter(pk__in=answers).order_by("pk")
            )
            for channel in locked:
                change = change_for_health(channel, answers[channel.pk], source=source)
                outcomes[channel.pk] = change_write(channel, change, source=source)
    except Exception:
        if len(answers) == 1:
            raise
        # One channel's write failed (a bug, a value the database refuses) and took the others' with
        # it: apply them one by one, so only that one fails.
        logger.exception("applying %d health answers together failed; applying them one by one", len(answers))
        for channel_id, health in answers.items():
            try:
                outcomes[channel_id] = health_apply(channel_id, health, source=source)
            except Channel.DoesNotExist:
                outcomes.pop(channel_id, None)
            except Exception:
                logger.exception("health answer for channel %s could not be applied", channel_id)
                outcomes[channel_id] = None
        return outcomes
    for channel_id in set(answers) - {channel.pk for channel in locked}:
        outcomes.pop(channel_id, None)  # gone since it was asked
    return outcomes


def _health_unanswered(channel: Channel, exc: WhapiError) -> None:
    retry = {"status_stale": True, "health_check_due_at": timezone.now() + CHECK_RETRY}
    with transaction.atomic():
        # Decided from the error the channel has now, not the one read before asking: a configuration
        # that gave up meanwhile keeps its reason.
        try:
            channel = Channel.objects.without_secrets().select_for_update(no_key=True).get(pk=channel.pk)
        except Channel.DoesNotExist:
            return  # gone since it was asked
        if channel.error_source in Channel.ERRORS_HEALTH_CLEARS:
            channel_record_error(channel, f"Whapi health check failed: {exc}", source=ErrorSource.HEALTH, **retry)
        else:
            # A creation or configuration failure says more about the channel: keep that reason.
            channel_update(channel, retry)


def alone_in_batch(count: int, channel: Channel, write: Callable[..., Any], *args: Any) -> Any:
    """`write(*args)` for one channel of a batch of `count`, and what it returns: raised when the batch
    is that channel, else logged (None), so one channel's failure costs the others nothing (its claim
    runs out; it is asked again then). The health checks' and the settings read-backs' rule."""
    try:
        return write(*args)
    except Exception:
        if count == 1:
            raise
        logger.exception("recording the check of channel %s failed", channel.pk)
        return None


def each_alone(
    check: Callable[..., dict[int, Any]], channel_ids: list[int], what: str, **kwargs: Any
) -> dict[int, Any]:
    """`check([channel_id], **kwargs)` for each channel on its own, merged; one that raises is logged
    and left out: the fallback of a batch check whose shared step failed."""
    results: dict[int, Any] = {}
    for channel_id in channel_ids:
        try:
            results.update(check([channel_id], **kwargs))
        except Exception:
            logger.exception("%s check of channel %s failed", what, channel_id)
    return results


def _health_ask(channel: Channel, session: requests.Session | None) -> Health:
    return gate_client(channel.api_url, channel.token, session=session).health(wakeup=False)
