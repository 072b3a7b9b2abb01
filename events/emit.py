"""Writing events: one `Event` row and one pending `Delivery` per endpoint of the channel's customer
that is switched on and wants the type, in the caller's transaction (a status write), so the event
exists exactly when the change it tells of does. Sending happens on the worker (events/delivery.py).

Where each type is emitted (docs/events.md has the payloads):

- `channel.created`: the move to `initializing`, when Whapi created the channel and the portal
  adopted it; `channel.ready_for_scan`: the move to `waiting_scan`; `channel.connected`: the move to
  `connected`, with the number, unless it ends a drop within the alerts' grace that was never told;
  `channel.error`: the move to `error`; `channel.deleted`: the move to `deleted`. All through
  `events_for_move`, which `channels_app.status.channel_update` calls for every move.
- `channel.disconnected`: where alerts.rules tells the disconnect, after ALERT_GRACE_SECONDS and
  Whapi's confirmation (or, unconfirmed, UNCONFIRMED_AFTER later: `"confirmed": false`).
- `channel.expiring`: where alerts.rules reminds of the paid time's end (each EXPIRY_REMINDER_DAYS
  threshold once a period), with the days left.

No endpoint wants it: nothing is written (one indexed query per state move).
"""

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from channels_app.models import Channel
from events.models import Delivery, Endpoint, Event, EventType

State = Channel.State

# The state moves that are events of their own (the others are told by alerts.rules, or not at all).
MOVE_EVENTS = {
    State.INITIALIZING: EventType.CREATED,
    State.WAITING_SCAN: EventType.READY_FOR_SCAN,
    State.CONNECTED: EventType.CONNECTED,
    State.ERROR: EventType.ERROR,
    State.DELETED: EventType.DELETED,
}


def iso(moment: datetime) -> str:
    """A moment as events write it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def channel_data(channel: Channel) -> dict[str, Any]:
    """What every event says about its channel: its public id (the `code` of the portal's pages and
    API), name, state and number; never its Whapi token or webhook secret."""
    return {
        "channel_id": str(channel.code),
        "name": channel.name,
        "state": channel.state,
        "number": channel.display_number or None,
    }


def endpoints_for(channel: Channel, event_type: str) -> list[Endpoint]:
    """The switched-on endpoints of the channel's customer that want `event_type` (a paused one
    too: its deliveries wait for the pause to end)."""
    if channel.project_id is None:
        return []
    candidates = Endpoint.objects.filter(customer__projects=channel.project_id, active=True)
    # A short list per customer, filtered here so that SQLite (no JSON containment) reads as PostgreSQL.
    return [endpoint for endpoint in candidates if event_type in endpoint.event_types]


def event_emit(*, channel: Channel, type: str, data: dict[str, Any] | None = None) -> Event | None:
    """Write the event `type` of `channel` (with `data` added to the channel's) and a pending delivery
    to each endpoint that wants it; None, and nothing written, when no endpoint does."""
    endpoints = endpoints_for(channel, type)
    if not endpoints:
        return None
    now = timezone.now()
    event = Event.objects.create(
        customer_id=endpoints[0].customer_id,
        channel=channel,
        type=type,
        payload={
            "type": type,
            "timestamp": iso(now),
            "data": {**channel_data(channel), **(data or {})},
        },
        created_at=now,
    )
    Delivery.objects.bulk_create(
        [Delivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now) for endpoint in endpoints]
    )
    return event


def events_for_move(channel: Channel, previous: str, state: str, now: datetime) -> None:
    """Emit the event a state move from `previous` to `state` is, if any (status.channel_update calls
    this for every move, with the channel as the move leaves it, before alerts.rules.alert_fields)."""
    event_type = MOVE_EVENTS.get(state)
    if event_type is None or previous == state:
        return
    data: dict[str, Any] = {"previous_state": previous}
    if state == State.CONNECTED:
        # A drop within the grace was never told as `channel.disconnected`: its end is no news either.
        if previous == State.DISCONNECTED and channel.disconnect_alerted_at is None:
            return
        data["connected_at"] = iso(channel.connected_at or now)
    if state == State.ERROR:
        data["error_source"] = channel.error_source or None
    event_emit(channel=channel, type=event_type, data=data)
