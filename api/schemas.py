"""What the API takes and answers: pydantic schemas (ninja's Schema), from which the OpenAPI document
is made. Answers are built from the models by the `*_out` functions, so a schema's fields are the
only ones a client sees (a channel's token and secrets are never among them)."""

from datetime import datetime
from enum import Enum
from typing import Annotated
from uuid import UUID

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, Field

from channels_app.actions import CUSTOMER_EVENT_METHODS, CUSTOMER_EVENT_TYPES
from channels_app.forms import HandoffForm
from channels_app.models import Channel, ChannelEvent, Customer, Project
from channels_app.views.channel_status import can_connect, can_restart, channel_status


def _without_nul(value: str) -> str:
    # Django's form fields refuse NUL (ProhibitNullCharactersValidator); PostgreSQL can neither store
    # nor search one, so it would be a 500.
    if "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    return value


Text = Annotated[str, AfterValidator(_without_nul)]
"""A string the API takes and stores or searches: without NUL characters."""

ChannelState = Enum("ChannelState", {state.value.upper(): state.value for state in Channel.State}, type=str)
EventType = Enum("EventType", {name.upper(): name for name in CUSTOMER_EVENT_TYPES}, type=str)
EventMethod = Enum("EventMethod", {name.upper(): name for name in CUSTOMER_EVENT_METHODS}, type=str)


# ------------------------------------------------------------------------------------------------
# Customers and projects
# ------------------------------------------------------------------------------------------------
class CustomerOut(Schema):
    code: UUID
    name: str
    channel_quota: int


class CustomerDetailOut(CustomerOut):
    channels_in_use: int = Field(description="Channels that count against the quota (all but the deleted).")


class CustomerPage(Schema):
    items: list[CustomerOut]
    next: str | None = Field(description="The next page's URL; null on the last page.")


class ProjectOut(Schema):
    id: str = Field(description="The project's Whapi id: what `project` names when requesting a channel.")
    name: str


def project_out(project: Project) -> dict:
    return {"id": project.whapi_id, "name": project.name}


def customer_out(customer: Customer) -> dict:
    return {"code": customer.code, "name": customer.name, "channel_quota": customer.channel_quota}


# ------------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------------
class QueueOut(Schema):
    position: int = Field(description="1 for the next channel to be created.")
    eta: datetime = Field(description="When it is expected to be created, if the create budget is the only wait.")
    eta_seconds: int
    retrying: bool = Field(description="Whapi could not be reached before; it is tried again.")


class ChannelOut(Schema):
    code: UUID
    name: str
    state: ChannelState
    state_label: str
    state_meaning: str
    in_progress: bool = Field(description="The state is about to change by itself: poll again.")
    can_connect: bool = Field(description="A QR code or a pairing code may be asked for now.")
    can_restart: bool
    customer: UUID
    project: ProjectOut | None
    number: str | None = Field(description="The linked WhatsApp number, +digits; null when none is linked.")
    number_name: str | None
    mode: str | None
    whapi_id: str | None = Field(description="Whapi's id of the channel, once created.")
    api_url: str | None = Field(description="The channel's own Whapi API (POST /channels/{code}/token for its token).")
    days_left: int | None
    active_till: datetime | None
    requested_at: datetime
    state_changed_at: datetime
    queue: QueueOut | None = Field(None, description="While queued: the position and when it is expected.")
    init_until: datetime | None = Field(None, description="While initializing: when Whapi's start-up pause ends.")


class ChannelPage(Schema):
    items: list[ChannelOut]
    next: str | None = Field(description="The next page's URL; null on the last page.")


# The fields a list row needs: the channel's encrypted token and secrets are not even read.
CHANNEL_ROW_FIELDS = (
    "code",
    "name",
    "state",
    "project",
    "connected_number",
    "connected_name",
    "mode",
    "whapi_id",
    "api_url",
    "active_till",
    "requested_at",
    "state_changed_at",
    "init_until",
    "disconnect_reported_at",
    "project__whapi_id",
    "project__name",
)


def channel_out(channel: Channel, *, customer: Customer, queue: bool = False) -> dict:
    """A channel as the API shows it; `queue`: with its queue position and ETA while queued (two more
    queries, so not for every row of a list)."""
    now = timezone.now()
    out = {
        "code": channel.code,
        "name": channel.name,
        "state": channel.state,
        "state_label": channel.get_state_display(),
        "state_meaning": channel.state_meaning,
        "in_progress": channel.changing,
        "can_connect": can_connect(channel, now),
        "can_restart": can_restart(channel),
        "customer": customer.code,
        "project": project_out(channel.project) if channel.project_id else None,
        "number": channel.display_number or None,
        "number_name": channel.connected_name or None,
        "mode": channel.mode or None,
        "whapi_id": channel.whapi_id or None,
        "api_url": channel.api_url or None,
        "days_left": channel.days_left(now),
        "active_till": channel.active_till,
        "requested_at": channel.requested_at,
        "state_changed_at": channel.state_changed_at,
        "init_until": channel.init_until if channel.state == Channel.State.INITIALIZING else None,
        "queue": None,
    }
    if queue and channel.state == Channel.State.QUEUED:
        # The queue's place and ETA as the channel page shows them (one place computes them).
        status = channel_status(channel, now=now)
        out["queue"] = {key: status[key] for key in ("position", "eta", "eta_seconds", "retrying")}
    return out


class ChannelCreateIn(Schema):
    name: Text = Field(min_length=1, max_length=150)
    project: Text | None = Field(
        None, description="The project's id (GET /customers/{code}/projects); optional when the customer has one."
    )


class ChannelRenameIn(Schema):
    name: Text = Field(min_length=1, max_length=150)


# ------------------------------------------------------------------------------------------------
# Connecting a phone
# ------------------------------------------------------------------------------------------------
class QrOut(Schema):
    mime_type: str = "image/png"
    base64: str = Field(description="The PNG, base64-encoded.")
    expires_in: int = Field(description="Seconds until this QR code expires; ask for a new one then.")


class PairingCodeIn(Schema):
    phone: str = Field(
        min_length=1, max_length=32, description="With country code, digits only (spaces, dashes, + allowed)."
    )


class PairingCodeOut(Schema):
    code: str


HANDOFF_MINUTES = tuple(minutes for minutes, _ in HandoffForm.LIFETIMES)


class HandoffIn(Schema):
    minutes: int = Field(30, description=f"How long the link works: one of {', '.join(map(str, HANDOFF_MINUTES))}.")


class HandoffOut(Schema):
    url: str = Field(description="The link to send to whoever holds the phone; shown this once.")
    expires_at: datetime
    replaced: bool = Field(description="An older link of the channel stopped working.")


class HandoffRevokeOut(Schema):
    revoked: int = Field(description="How many links were still working.")


# ------------------------------------------------------------------------------------------------
# The customer's own webhook, the timeline, the token
# ------------------------------------------------------------------------------------------------
class WebhookEvent(Schema):
    type: EventType
    method: EventMethod = EventMethod.POST


class WebhookIn(Schema):
    url: str = Field("", max_length=500, description="Empty: remove the webhook.")
    events: list[WebhookEvent] = Field(default_factory=list)


class WebhookOut(Schema):
    url: str
    events: list[WebhookEvent]
    applied: bool | None = Field(None, description="PUT: whether Whapi took the settings now (else: later).")
    detail: str | None = None


class TimelineEntry(Schema):
    at: datetime
    from_state: str | None
    to_state: str
    source: str
    detail: str | None = Field(None, description="Partner keys only: the note for staff.")


class TimelinePage(Schema):
    items: list[TimelineEntry]
    next: str | None


def timeline_out(event: ChannelEvent, *, with_detail: bool) -> dict:
    return {
        "at": event.at,
        "from_state": event.from_state or None,
        "to_state": event.to_state,
        "source": event.source,
        "detail": event.detail if with_detail else None,
    }


class TokenOut(Schema):
    token: str = Field(description="The channel's Whapi API token (Authorization: Bearer for its api_url).")
