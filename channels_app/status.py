"""Applying what Whapi tells us about a channel — health and connect/disconnect — from webhooks and
polls alike, and the one place that changes a channel's lifecycle state (with its timeline row).

Health is ordered by `(start_at, uptime)` (`whapi-api.md` §3): a late or replayed event never rolls
the status back. Users events carry no id or timestamp, so they are made idempotent by state: a
connect for the number already connected changes nothing, while the same number connecting again
after a disconnect is applied.
"""

import logging

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
    now = timezone.now()
    rows.update(Channel, channel.pk, {"state": state, "state_changed_at": now})
    channel.state, channel.state_changed_at = state, now
    rows.insert(
        ChannelEvent(
            channel=channel,
            from_state="" if force and previous == state else previous,
            to_state=state,
            source=source,
            detail=detail[:2000],
            at=now,
        )
    )
    logger.info("channel %s: %s -> %s (%s) %s", channel.pk, previous, state, source, detail)
    return True


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
    """The channel's STATUS_FIELDS, locked until the surrounding transaction ends."""
    return Channel.objects.select_for_update().only(*STATUS_FIELDS).get(pk=channel_id)


def apply_health(channel_id: int, health: Health, *, source: str) -> str:
    """Apply a health report unless we already know a newer one; returns a WebhookEvent outcome."""
    with transaction.atomic():
        return apply_health_to(lock_channel(channel_id), health, source=source)


def apply_health_to(channel: Channel, health: Health, *, source: str) -> str:
    """`apply_health` for a channel the caller locked in the current transaction."""
    new_state, note = _state_for_health(channel, health)
    may_move = channel.state not in (*PRE_CONFIGURED, State.DELETED) and (
        channel.state != State.ERROR or channel.error_source in RECOVERABLE_BY_HEALTH
    )
    key = (health.start_at, health.uptime)
    if channel.health_start_at is not None and channel.health_uptime is not None:
        known = (channel.health_start_at, channel.health_uptime)
        if key < known:
            return Outcome.STALE
        if key == known:
            # Same report again: nothing to do, unless a users event moved the state away from it since.
            if health.status_text == channel.health_status and not (may_move and new_state != channel.state):
                return Outcome.DUPLICATE
            if source == ChannelEvent.Source.WEBHOOK:
                # uptime has a resolution of one second: two different reports within the same
                # second cannot be ordered. Take this one, and let a fresh /health settle it.
                jobs.follow_up("check_channel_health", channel.pk)
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
    rows.update(Channel, channel.pk, fields)
    for name, value in fields.items():
        setattr(channel, name, value)
    if may_move:
        set_state(channel, new_state, source=source, detail=note)
    return Outcome.APPLIED


def apply_user_connected(channel_id: int, *, number: str, name: str, source: str) -> str:
    """A WhatsApp account linked (users.post); returns a WebhookEvent outcome."""
    with transaction.atomic():
        return apply_user_connected_to(lock_channel(channel_id), number=number, name=name, source=source)


def apply_user_connected_to(channel: Channel, *, number: str, name: str, source: str) -> str:
    """`apply_user_connected` for a channel the caller locked in the current transaction."""
    if channel.state == State.CONNECTED and channel.connected_number == number:
        return Outcome.DUPLICATE
    now = timezone.now()
    rows.update(
        Channel,
        channel.pk,
        {"connected_number": number, "connected_name": name, "connected_at": now, "last_confirmed_at": now},
    )
    channel.connected_number, channel.connected_name = number, name
    if channel.state not in (State.DELETED,):
        set_state(channel, State.CONNECTED, source=source, detail=f"number +{number} connected")
    return Outcome.APPLIED


def apply_user_disconnected(channel_id: int, *, number: str, source: str) -> str:
    """A WhatsApp account unlinked (users.delete); returns a WebhookEvent outcome."""
    with transaction.atomic():
        return apply_user_disconnected_to(lock_channel(channel_id), number=number, source=source)


def apply_user_disconnected_to(channel: Channel, *, number: str, source: str) -> str:
    """`apply_user_disconnected` for a channel the caller locked in the current transaction."""
    if not channel.connected_number and channel.state != State.CONNECTED:
        return Outcome.DUPLICATE
    if number and channel.connected_number and channel.connected_number != number:
        # A logout of a number that is no longer the connected one: nothing to undo.
        return Outcome.STALE
    rows.update(Channel, channel.pk, {"connected_number": "", "connected_name": ""})
    channel.connected_number = channel.connected_name = ""
    if channel.state not in (State.DELETED,):
        set_state(channel, State.DISCONNECTED, source=source, detail=f"number +{number} disconnected")
    return Outcome.APPLIED
