"""Applying what Whapi tells us about a channel — health and connect/disconnect — from webhooks and
polls alike, and the one place that changes a channel's lifecycle state (with its timeline row).

Health is ordered by `(start_at, uptime)` (`whapi-api.md` §3): a late or replayed event never rolls
the status back. Users events carry no id or timestamp, so they are made idempotent by state: a
connect for the number already connected changes nothing, while the same number connecting again
after a disconnect is applied.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from channels_app import jobs, rows
from channels_app.models import Channel, ChannelEvent, WebhookEvent
from channels_app.whapi import Health

logger = logging.getLogger(__name__)

State = Channel.State
Outcome = WebhookEvent.Outcome

# The fields applying a status or a connect reads; the rest of the row is not loaded for it.
STATUS_FIELDS = (
    "id",
    "whapi_id",
    "webhook_secret",
    "state",
    "health_status",
    "health_code",
    "health_start_at",
    "health_uptime",
    "connected_number",
    "connected_name",
    "connected_at",
    "error_source",
    "active_till",
)

# Errors a healthy report from Whapi clears (a failed action, such as a logout, leaves nothing broken);
# a failed creation or configuration needs the pipeline or staff.
RECOVERABLE_BY_HEALTH = ("health", "action", "")

# Until its webhooks are verified, a channel's lifecycle belongs to the pipeline, not to health.
PRE_CONFIGURED = (State.QUEUED, State.CREATING, State.INITIALIZING, State.CONFIGURING)


def phone_digits(user_id: object) -> str:
    """The phone number in a WhatsApp user id ("61371989950" or "61371989950@s.whatsapp.net")."""
    return "".join(ch for ch in str(user_id).split("@")[0] if ch.isdigit())


def set_state(channel: Channel, state: str, *, source: str, detail: str = "", force: bool = False) -> bool:
    """Move `channel` to `state` and append the change to its timeline; False when it was there already."""
    previous = channel.state
    if previous == state and not force:
        return False
    _move(channel, state, {}, source=source, detail=detail, forced=force and previous == state)
    return True


def _move(channel: Channel, state: str, fields: dict[str, Any], *, source: str, detail: str, forced: bool = False):
    """Set `fields` and the new state in one UPDATE, and add the move to the timeline."""
    previous, now = channel.state, timezone.now()
    _set(channel, {**fields, "state": state, "state_changed_at": now})
    rows.insert(
        ChannelEvent(
            channel=channel,
            from_state="" if forced else previous,
            to_state=state,
            source=source,
            detail=detail[:2000],
            at=now,
        )
    )
    logger.info("channel %s: %s -> %s (%s) %s", channel.pk, previous, state, source, detail)


def _set(channel: Channel, fields: dict[str, Any]) -> None:
    """Write `fields` to the channel's row and to the loaded instance."""
    rows.update(Channel, channel.pk, fields)
    for name, value in fields.items():
        setattr(channel, name, value)


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
    if text == "STOP":
        expired = channel.active_till and channel.active_till <= timezone.now()
        return (State.EXPIRED if expired else State.STOPPED), note
    # INIT, LAUNCH, NOT_INIT and texts we do not know are transient: keep the state.
    return channel.state, note


def lock_channel(channel_id: int) -> Channel:
    """The channel's STATUS_FIELDS, locked until the surrounding transaction ends; raises
    Channel.DoesNotExist when it is gone."""
    channel = rows.select(Channel, STATUS_FIELDS, "id", channel_id, lock=True)
    if channel is None:
        raise Channel.DoesNotExist(f"no channel {channel_id}")
    return channel


def apply_health(channel_id: int, health: Health, *, source: str) -> str:
    """Apply a health report unless we already know a newer one; returns a WebhookEvent outcome."""
    with transaction.atomic():
        return apply_health_to(lock_channel(channel_id), health, source=source)


def apply_health_to(channel: Channel, health: Health, *, source: str) -> str:
    """`apply_health` for a channel the caller locked in the current transaction."""
    return write(channel, plan_health(channel, health, source=source), source=source)


@dataclass(frozen=True)
class Change:
    """What one report from Whapi does to a channel, decided from the channel's STATUS_FIELDS alone.

    The plan_* functions decide it and write nothing; `write` carries it out. Keeping the two apart
    lets the webhook receiver store a change that only sets status columns without taking the
    channel's lock (see webhooks.py).
    """

    outcome: str  # a WebhookEvent outcome
    detail: str = ""  # for the ledger
    fields: dict[str, Any] = field(default_factory=dict)  # columns to set
    state: str = ""  # the lifecycle state to move to ("" keeps the current one)
    note: str = ""  # the timeline's note for that move
    follow_ups: tuple[str, ...] = ()  # tasks to run soon for the channel (jobs.follow_up)


def write(channel: Channel, change: Change, *, source: str) -> str:
    """Carry out `change` on a channel the caller locked in the current transaction; returns its outcome."""
    for task in change.follow_ups:
        jobs.follow_up(task, channel.pk)
    if change.state and change.state != channel.state:
        _move(channel, change.state, change.fields, source=source, detail=change.note)
    elif change.fields:
        _set(channel, change.fields)
    return change.outcome


def plan_health(channel: Channel, health: Health, *, source: str) -> Change:
    """A health report, unless we already know a newer one (`start_at`, `uptime`)."""
    new_state, note = _state_for_health(channel, health)
    may_move = channel.state not in (*PRE_CONFIGURED, State.DELETED) and (
        channel.state != State.ERROR or channel.error_source in RECOVERABLE_BY_HEALTH
    )
    follow_ups: tuple[str, ...] = ()
    key = (health.start_at, health.uptime)
    if channel.health_start_at is not None and channel.health_uptime is not None:
        known = (channel.health_start_at, channel.health_uptime)
        if key < known:
            return Change(Outcome.STALE)
        if key == known:
            # Same report again: nothing to do, unless a users event moved the state away from it since.
            if health.status_text == channel.health_status and not (may_move and new_state != channel.state):
                return Change(Outcome.DUPLICATE)
            if source == ChannelEvent.Source.WEBHOOK:
                # uptime has a resolution of one second: two different reports within the same
                # second cannot be ordered. Take this one, and let a fresh /health settle it.
                follow_ups = ("check_channel_health",)
    now = timezone.now()
    fields = {
        "health_status": health.status_text,
        "health_code": health.status_code,
        "health_start_at": health.start_at,
        "health_uptime": health.uptime,
        "last_confirmed_at": now,
        "status_stale": False,
    }
    if health.status_text == "AUTH" and health.user_id and phone_digits(health.user_id):
        fields.update(
            connected_number=phone_digits(health.user_id), connected_name=health.user_name or channel.connected_name
        )
        if not channel.connected_at or channel.state != State.CONNECTED:
            fields["connected_at"] = now
    elif health.status_text == "QR":
        fields.update(connected_number="", connected_name="")
    if channel.error_source in RECOVERABLE_BY_HEALTH and health.status_text in ("AUTH", "QR"):
        fields.update(last_error="", error_source="")
    elif health.status_text in ("ERROR", "SYNC_ERROR"):
        fields.update(
            last_error=f"Whapi reports {health.status_text} for this channel.",
            last_error_at=now,
            error_source="health",
        )
    state = new_state if may_move and new_state != channel.state else ""
    return Change(Outcome.APPLIED, fields=fields, state=state, note=note, follow_ups=follow_ups)


def plan_user_connected(channel: Channel, *, number: str, name: str) -> Change:
    """A WhatsApp account linked (users.post)."""
    if channel.state == State.CONNECTED and channel.connected_number == number:
        return Change(Outcome.DUPLICATE)
    now = timezone.now()
    return Change(
        Outcome.APPLIED,
        fields={"connected_number": number, "connected_name": name, "connected_at": now, "last_confirmed_at": now},
        state=State.CONNECTED if channel.state not in (State.CONNECTED, State.DELETED) else "",
        note=f"number +{number} connected",
    )


def plan_user_disconnected(channel: Channel, *, number: str) -> Change:
    """A WhatsApp account unlinked (users.delete)."""
    if not channel.connected_number and channel.state != State.CONNECTED:
        return Change(Outcome.DUPLICATE)
    if number and channel.connected_number and channel.connected_number != number:
        # A logout of a number that is no longer the connected one: nothing to undo.
        return Change(Outcome.STALE)
    return Change(
        Outcome.APPLIED,
        fields={"connected_number": "", "connected_name": ""},
        state=State.DISCONNECTED if channel.state not in (State.DISCONNECTED, State.DELETED) else "",
        note=f"number +{number} disconnected",
    )
