"""One channel: read, rename, delete, log out, restart; connect a phone (QR code, pairing code,
hand-off link); the customer's own webhook; the timeline; the channel's token.

Every route loads the channel through api.scope.channel_for_key, and every change goes through the
function the pages call (channels_app.actions, channels_app.handoff) with the key as the actor, so
it is audited under the key (AuditLog.Source.API). The pages' rules apply as they are: a QR code or
pairing code only when the channel can be linked, a restart only in error, no hand-off link for a
connected number.
"""

import base64
from datetime import timedelta
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from api import scope
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page
from api.problems import ApiProblem, field_error, from_action_error
from api.schemas import (
    HANDOFF_MINUTES,
    ChannelOut,
    ChannelRenameIn,
    HandoffIn,
    HandoffOut,
    HandoffRevokeOut,
    PairingCodeIn,
    PairingCodeOut,
    QrOut,
    TimelinePage,
    TokenOut,
    WebhookIn,
    WebhookOut,
    channel_out,
    timeline_out,
)
from channels_app import actions, background, handoff
from channels_app.actions import ActionError
from channels_app.forms import PairingCodeForm
from channels_app.models import AuditLog, Channel
from channels_app.views.channel_status import DEFAULT_QR_SECONDS, can_connect, can_restart

router = Router(tags=["channels"])
Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")
Cursor = Query(None, max_length=500, description="The `next` link's cursor.")
API = AuditLog.Source.API


def _out(channel: Channel) -> dict:
    return channel_out(channel, customer=channel.project.customer, queue=True)


@router.get("/channels/{uuid:code}", response=ChannelOut, url_name="channel_get", summary="One channel")
def channel_get(request: HttpRequest, code: UUID):
    """Where the channel stands; poll it while `in_progress` (every few seconds is plenty)."""
    return _out(scope.channel_for_key(request.auth, code))


@router.patch("/channels/{uuid:code}", response=ChannelOut, summary="Rename a channel")
def channel_rename(request: HttpRequest, code: UUID, payload: ChannelRenameIn):
    channel = scope.channel_for_key(request.auth, code, write=True)
    try:
        actions.channel_rename(channel, name=payload.name, actor=request.auth, source=API)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    return _out(channel)


@router.delete("/channels/{uuid:code}", response={204: None}, summary="Delete a channel")
def channel_delete(request: HttpRequest, code: UUID):
    """Log the number out and delete the channel in Whapi (its unused days go back to the partner's
    balance); a queued channel is withdrawn. On the pages only owners may; any read-write key may."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    try:
        actions.channel_delete(channel, actor=request.auth, source=API)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    return Status(204, None)


@router.post("/channels/{uuid:code}/logout", response=ChannelOut, summary="Log the number out")
def channel_logout(request: HttpRequest, code: UUID):
    """The WhatsApp number is unlinked; the channel then waits for a scan again."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    try:
        actions.channel_logout(channel, actor=request.auth, source=API)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    return _out(channel)


@router.post("/channels/{uuid:code}/restart", response={202: ChannelOut}, summary="Restart a channel in error")
def channel_restart(request: HttpRequest, code: UUID):
    """Only a channel in error (`can_restart`), as on the pages; 409 otherwise."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    if not can_restart(channel):
        raise ApiProblem("conflict", "Only a channel in error can be restarted.")
    try:
        actions.channel_restart(channel, actor=request.auth, source=API)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    return Status(202, _out(channel))


def _connectable(channel: Channel) -> None:
    if not can_connect(channel):
        raise ApiProblem("conflict", "This channel cannot be linked right now; see its state and `can_connect`.")


@router.get(
    "/channels/{uuid:code}/qr",
    response={200: QrOut},
    summary="The QR code to scan",
    openapi_extra={
        "responses": {
            200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
            409: {"description": "Not linkable now, or a number is linked already"},
            503: {"description": "Whapi is preparing the code: ask again after Retry-After"},
        }
    },
)
def channel_qr(request: HttpRequest, response: HttpResponse, code: UUID):
    """The current QR code: a PNG with `Accept: image/png`, else JSON with the PNG in base64.
    `X-QR-Expires-In` (and `expires_in`) say when to ask for the next one. A read-write key only:
    the code links a phone to the channel."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    _connectable(channel)
    try:
        qr = actions.channel_qr(channel)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    if qr is None:
        # Whapi says a number is linked: a health check brings the channel's state up to date.
        background.enqueue_on_commit("channel_health_check", channel.pk)
        raise ApiProblem("conflict", "A number is linked to this channel already.")
    if qr.png is None:
        raise ApiProblem("not-ready", "The QR code is being prepared; ask again shortly.", headers={"Retry-After": "2"})
    expires = qr.expire if qr.expire and qr.expire > 0 else DEFAULT_QR_SECONDS
    headers = {"Cache-Control": "no-store", "X-QR-Expires-In": str(expires)}
    if "image/png" in request.headers.get("Accept", ""):
        return HttpResponse(qr.png, content_type="image/png", headers=headers)
    for name, value in headers.items():
        response[name] = value
    return {"mime_type": "image/png", "base64": base64.b64encode(qr.png).decode(), "expires_in": expires}


@router.post("/channels/{uuid:code}/pairing-code", response=PairingCodeOut, summary="A pairing code for a phone")
def channel_pairing_code(request: HttpRequest, code: UUID, payload: PairingCodeIn):
    """Link by phone number instead of a scan: WhatsApp on that phone asks for this code."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    form = PairingCodeForm({"phone": payload.phone})  # the pages' reading of a number (spaces, +, dashes)
    if not form.is_valid():
        raise field_error("phone", form.errors["phone"][0])
    _connectable(channel)
    try:
        pairing = actions.channel_pairing_code(
            channel, phone=form.cleaned_data["phone"], actor=request.auth, source=API
        )
    except ActionError as exc:
        raise from_action_error(exc) from exc
    return {"code": pairing}


@router.post("/channels/{uuid:code}/handoff", response={201: HandoffOut}, summary="Make a hand-off link")
def channel_handoff_create(request: HttpRequest, code: UUID, payload: HandoffIn):
    """A link that shows the channel's QR code to whoever holds the phone, without a login; the URL is
    in this answer only. Every older link of the channel stops working."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    if payload.minutes not in HANDOFF_MINUTES:
        raise field_error("minutes", f"Choose one of {', '.join(map(str, HANDOFF_MINUTES))} minutes.")
    if channel.state == Channel.State.CONNECTED:
        raise ApiProblem("conflict", "The number is connected: a hand-off link is needed only to link a phone.")
    replaced = handoff.active_handoff_link(channel) is not None
    link = handoff.handoff_create(
        channel=channel, lifetime=timedelta(minutes=payload.minutes), actor=request.auth, source=API
    )
    return Status(201, {"url": handoff.handoff_url(link), "expires_at": link.expires_at, "replaced": replaced})


@router.delete("/channels/{uuid:code}/handoff", response=HandoffRevokeOut, summary="Stop the hand-off links")
def channel_handoff_revoke(request: HttpRequest, code: UUID):
    channel = scope.channel_for_key(request.auth, code, write=True)
    return {"revoked": handoff.handoff_revoke(channel=channel, actor=request.auth, source=API)}


def _webhook(channel: Channel) -> dict:
    events = [event for event in channel.customer_webhook_events or [] if isinstance(event, dict)]
    return {"url": channel.customer_webhook_url, "events": events}


@router.get("/channels/{uuid:code}/webhook", response=WebhookOut, summary="The customer's own webhook")
def channel_webhook_get(request: HttpRequest, code: UUID):
    """Where Whapi posts this channel's events (messages, statuses…) for the customer's system."""
    return _webhook(scope.channel_for_key(request.auth, code))


@router.put("/channels/{uuid:code}/webhook", response=WebhookOut, summary="Set the customer's own webhook")
def channel_webhook_put(request: HttpRequest, code: UUID, payload: WebhookIn):
    """The URL rules of the pages apply (public https addresses; 422 on `url` or `events`). An empty
    URL removes the webhook. `applied`: Whapi holds the settings now; false: they are saved and
    applied once the channel is set up, or retried (`detail` says why)."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    events = [{"type": event.type.value, "method": event.method.value} for event in payload.events]
    detail = None
    try:
        applied = actions.channel_set_customer_webhook(
            channel, url=payload.url, events=events if payload.url.strip() else [], actor=request.auth, source=API
        )
    except ActionError as exc:
        if exc.field:
            raise from_action_error(exc) from exc
        applied, detail = False, str(exc)  # saved; Whapi did not take it yet and the portal keeps trying
    return {**_webhook(channel), "applied": applied, "detail": detail}


@router.get("/channels/{uuid:code}/timeline", response=TimelinePage, summary="The channel's timeline")
def channel_timeline(
    request: HttpRequest,
    code: UUID,
    limit: int = Limit,
    cursor: str | None = Cursor,
):
    """Its state changes, newest first, a page at a time."""
    channel = scope.channel_for_key(request.auth, code)
    rows, next_url = keyset_page(
        request, channel.timeline.all(), order="at", descending=True, cursor=cursor, limit=limit, datetime_key=True
    )
    with_detail = request.auth.scope == "partner"
    return {"items": [timeline_out(event, with_detail=with_detail) for event in rows], "next": next_url}


@router.post("/channels/{uuid:code}/token", response=TokenOut, summary="Reveal the channel's Whapi token")
def channel_token(request: HttpRequest, response: HttpResponse, code: UUID):
    """The token of the channel's own Whapi API (`api_url`), for sending messages; every reveal is
    audited under the key. A read-write key only."""
    channel = scope.channel_for_key(request.auth, code, write=True)
    try:
        token = actions.channel_reveal_token(channel, actor=request.auth, source=API)
    except ActionError as exc:
        raise from_action_error(exc) from exc
    response["Cache-Control"] = "no-store"
    return {"token": token}
