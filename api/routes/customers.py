"""Customers, their projects and their channels (the list, and requesting one)."""

import hashlib
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Header, Query, Router, Status

from api import scope
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page, public_url
from api.problems import ApiProblem, field_error, from_action_error
from api.schemas import (
    CHANNEL_ROW_FIELDS,
    ChannelCreateIn,
    ChannelOut,
    ChannelPage,
    ChannelState,
    CustomerDetailOut,
    CustomerPage,
    ProjectOut,
    Text,
    channel_out,
    customer_out,
    project_out,
)
from channels_app import access, actions
from channels_app.actions import ActionError
from channels_app.models import AuditLog

router = Router(tags=["customers"])
API = AuditLog.Source.API

Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")
Cursor = Query(None, max_length=500, description="The `next` link's cursor.")
StateFilter = Query(None, description="Only channels in these states (repeat for several).")
Search = Query("", max_length=100, description="Name contains it, or the number does (when it looks like one).")
ProjectFilter = Query("", max_length=64, description="Only this project's channels (its id).")


@router.get("/customers", response=CustomerPage, summary="The customers the key may see")
def customers_list(request: HttpRequest, limit: int = Limit, cursor: str | None = Cursor):
    """A partner key: every customer, by name. A customer's or channel's key: its own customer."""
    rows, next_url = keyset_page(
        request, scope.customers_for_key(request.auth), order="name", tiebreak="code", cursor=cursor, limit=limit
    )
    return {"items": [customer_out(customer) for customer in rows], "next": next_url}


@router.get("/customers/{uuid:code}", response=CustomerDetailOut, summary="One customer")
def customer_get(request: HttpRequest, code: UUID):
    customer = scope.customer_for_key(request.auth, code)
    return {**customer_out(customer), "channels_in_use": access.channels_for(customer).count()}


@router.get("/customers/{uuid:code}/projects", response=list[ProjectOut], summary="The customer's projects")
def customer_projects(request: HttpRequest, code: UUID):
    customer = scope.customer_for_key(request.auth, code)
    return [project_out(project) for project in access.projects_for(customer)]


@router.get("/customers/{uuid:code}/channels", response=ChannelPage, summary="The customer's channels")
def customer_channels(
    request: HttpRequest,
    code: UUID,
    state: list[ChannelState] = StateFilter,
    q: Text = Search,
    project: Text = ProjectFilter,
    limit: int = Limit,
    cursor: str | None = Cursor,
):
    """Oldest request first, a page at a time (a channel key: its own channel only). Each page is one
    query on the customer's index, whatever the number of channels; there is no total."""
    customer = scope.customer_for_key(request.auth, code)
    projects = list(access.projects_for(customer))
    channels = scope.channels_for_key(request.auth, customer, projects=projects).only(*CHANNEL_ROW_FIELDS)
    if state:
        channels = channels.filter(state__in=[item.value for item in state])
    if q.strip():
        channels = channels.matching(q.strip())
    if project:
        chosen = next((p for p in projects if p.whapi_id == project), None)
        if chosen is None:
            raise field_error("project", "No such project of this customer.")
        channels = channels.filter(project=chosen)
    rows, next_url = keyset_page(
        request, channels, order="requested_at", tiebreak="code", cursor=cursor, limit=limit, datetime_key=True
    )
    return {"items": [channel_out(channel, customer=customer) for channel in rows], "next": next_url}


IdempotencyKey = Header(
    None,
    alias="Idempotency-Key",
    min_length=1,
    max_length=255,
    description="Any unique string (a UUID): the same key again returns the first request's channel.",
)


def _request_key(api_key, idempotency_key: str) -> str:
    # Scoped to the API key (another key's Idempotency-Key never finds this channel) and hashed to fit
    # the pipeline's 64 characters.
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"api-{api_key.prefix}-{digest}"


@router.post(
    "/customers/{uuid:code}/channels",
    response={202: ChannelOut},
    summary="Request a channel",
    openapi_extra={"responses": {409: {"description": "Quota used up, or the Idempotency-Key was used elsewhere"}}},
)
def channel_create(
    request: HttpRequest,
    response: HttpResponse,
    code: UUID,
    payload: ChannelCreateIn,
    idempotency_key: str | None = IdempotencyKey,
):
    """Queue a new channel: 202 with its state, queue position and ETA, and its address in `Location`.

    The quota and the create budget apply as on the pages. With an `Idempotency-Key`, a repeat
    returns the first request's channel (202 again, `Idempotent-Replayed: true`), however often it is
    sent; the same key for another customer is 409.
    """
    customer = scope.customer_for_key(request.auth, code, create=True)
    projects = [project for project in access.projects_for(customer) if project.whapi_id]
    if payload.project:
        project = next((p for p in projects if p.whapi_id == payload.project), None)
        if project is None:
            raise field_error("project", "No such project of this customer, linked to Whapi.")
    elif len(projects) == 1:
        project = projects[0]
    else:
        message = "Name the project: this customer has several." if projects else "This customer has no project yet."
        raise field_error("project", message)
    request_key = _request_key(request.auth, idempotency_key) if idempotency_key else None
    try:
        channel, recorded = actions.channel_request(
            project=project, name=payload.name, actor=request.auth, source=API, request_key=request_key
        )
    except ActionError as exc:
        raise from_action_error(exc) from exc
    if channel.project_id is None or channel.project.customer_id != customer.pk:
        raise ApiProblem("idempotency-conflict", "This Idempotency-Key was used to request a channel elsewhere.")
    response["Location"] = public_url(reverse("api-v1:channel_get", args=[channel.code]))
    if not recorded:
        response["Idempotent-Replayed"] = "true"
    return Status(202, channel_out(channel, customer=customer, queue=True))
