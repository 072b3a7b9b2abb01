"""Tenancy of the API: which customers and channels a key may see, and whether it may write.

The API's counterpart of channels_app.access, and the only place its rules live; every route loads
its customer or channel through these helpers:
- a partner key (staff-made, no customer) sees every customer;
- a customer key sees its customer and that customer's channels;
- a channel key sees its one channel, its customer (whose channel list shows that channel only) and
  the customer's projects; it cannot request channels;
- anything else is "not found" (404), with the same answer as an id that exists nowhere, so nothing
  tells a key that another tenant's object exists;
- a read-only key asking to change something gets 403 (after the 404 check: it may see the object);
- a revoked key never gets here (401, api.auth).
"""

from uuid import UUID

from django.db.models import QuerySet

from api.models import ApiKey
from api.problems import ApiProblem, not_found
from channels_app import access
from channels_app.models import Channel, Customer, Project


def _check_write(api_key: ApiKey, write: bool) -> None:
    if write and not api_key.can_write:
        raise ApiProblem("forbidden", "This API key is read-only.")


def customers_for_key(api_key: ApiKey) -> QuerySet[Customer]:
    """The customers the key may see."""
    if api_key.scope == "partner":
        return Customer.objects.all()
    return Customer.objects.filter(pk=api_key.customer_id)


def customer_for_key(api_key: ApiKey, code: UUID, *, write: bool = False, create: bool = False) -> Customer:
    """The customer with this code; 404 outside the key's scope, 403 when `write` and the key is
    read-only, or `create` (requesting a channel) and the key is a channel's."""
    customer = customers_for_key(api_key).filter(code=code).first()
    if customer is None:
        raise not_found()
    _check_write(api_key, write or create)
    if create and api_key.scope == "channel":
        raise ApiProblem("forbidden", "A channel's API key cannot request channels.")
    return customer


def channels_for_key(
    api_key: ApiKey, customer: Customer, *, projects: list[Project] | None = None
) -> QuerySet[Channel]:
    """The customer's channels (not deleted) the key may see, oldest request first; a channel key's
    one channel only. `customer` comes from `customer_for_key`."""
    channels = access.channels_for(customer, projects=projects)
    if api_key.scope == "channel":
        channels = channels.filter(pk=api_key.channel_id)
    return channels


def channel_for_key(api_key: ApiKey, code: UUID, *, write: bool = False) -> Channel:
    """The channel with this code, with its project and customer; 404 when it is deleted, belongs to
    no customer or is outside the key's scope, 403 when `write` and the key is read-only."""
    channels = (
        Channel.objects.select_related("project__customer")
        .filter(code=code, project__customer__isnull=False)
        .exclude(state=Channel.State.DELETED)
    )
    if api_key.scope != "partner":
        channels = channels.filter(project__customer_id=api_key.customer_id)
    if api_key.scope == "channel":
        channels = channels.filter(pk=api_key.channel_id)
    channel = channels.first()
    if channel is None:
        raise not_found()
    _check_write(api_key, write)
    return channel
