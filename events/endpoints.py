"""Audited operations on a customer's endpoints and deliveries, for the customer pages and the admin:
register, rotate the secret, switch off and on, delete, and replay deliveries.

A replay is a new delivery of the same event to the same endpoint: the same `webhook-id` (so a
receiver that keeps the ids it has seen can tell), a new signature and timestamp, its own attempts.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app import webhook_urls
from channels_app.audit import acting_user, audit
from channels_app.models import Customer
from events.delivery import CLAIM
from events.models import Delivery, Endpoint, EventType, new_signing_secret

# Deliveries one range replay makes at most; a longer range is replayed in parts.
REPLAY_LIMIT = 1000


class EndpointError(Exception):
    """The request cannot be done; the text says why, fit to show."""


def url_problem(url: str) -> str:
    """Why an endpoint may not have `url` ("" when it may): the rules of the customer's own webhook."""
    return webhook_urls.customer_url_problem(url, sender="The portal")


def endpoint_create(
    *, customer: Customer, url: str, event_types: list[str], description: str, actor, source: str
) -> Endpoint:
    """Register an endpoint; its secret is on the returned object (show it once, it is not shown again).
    Raises EndpointError for a URL the rules refuse or an unknown event type."""
    url = url.strip()
    if problem := url_problem(url):
        raise EndpointError(problem)
    unknown = set(event_types) - set(EventType.values)
    if unknown or not event_types:
        raise EndpointError(_("Choose at least one of the event types listed."))
    endpoint = Endpoint.objects.create(
        customer=customer,
        url=url,
        event_types=[value for value in EventType.values if value in event_types],
        description=description.strip(),
        created_by=acting_user(actor),
    )
    audit(actor=actor, source=source, action="events.endpoint_create", target=customer, detail=url)
    return endpoint


def endpoint_rotate_secret(*, endpoint: Endpoint, actor, source: str) -> str:
    """Give the endpoint a new secret and return it (shown once); the old one stops signing at once."""
    endpoint.secret = new_signing_secret()
    endpoint.save(update_fields=["secret"])
    audit(actor=actor, source=source, action="events.secret_rotate", target=endpoint.customer, detail=endpoint.url)
    return endpoint.secret


def endpoint_switch(*, endpoint: Endpoint, on: bool, actor, source: str) -> None:
    """Switch the endpoint on (also ending a pause after failures, and its streak) or off (no new
    deliveries; pending ones wait until it is on again)."""
    fields = {"active": on}
    if on:
        fields.update(disabled_until=None, consecutive_failures=0)
    Endpoint.objects.filter(pk=endpoint.pk).update(**fields)
    if on:
        # What waits goes at the sender's next look, not at its retry time (up to 10 hours away). A
        # delivery being sent right now has its attempt time at most CLAIM ahead (delivery._claim):
        # it is left alone, so nothing is sent twice at once.
        now = timezone.now()
        Delivery.objects.filter(
            endpoint=endpoint, status=Delivery.Status.PENDING, next_attempt_at__gt=now + CLAIM
        ).update(next_attempt_at=now)
    for name, value in fields.items():
        setattr(endpoint, name, value)
    action = "events.endpoint_on" if on else "events.endpoint_off"
    audit(actor=actor, source=source, action=action, target=endpoint.customer, detail=endpoint.url)


def endpoint_delete(*, endpoint: Endpoint, actor, source: str) -> None:
    """Delete the endpoint with its deliveries and their log."""
    url, customer = endpoint.url, endpoint.customer
    endpoint.delete()
    audit(actor=actor, source=source, action="events.endpoint_delete", target=customer, detail=url)


def delivery_replay(*, delivery: Delivery, actor, source: str) -> Delivery:
    """Send the delivery's event to its endpoint again, as a new delivery due now."""
    replay = Delivery.objects.create(
        event_id=delivery.event_id, endpoint_id=delivery.endpoint_id, next_attempt_at=timezone.now(), replay_of=delivery
    )
    audit(
        actor=actor,
        source=source,
        action="events.replay",
        target=delivery.endpoint.customer,
        detail=f"{delivery.event.webhook_id} to {delivery.endpoint.url}",
    )
    return replay


def deliveries_replay(
    *, endpoint: Endpoint, since: datetime, until: datetime, failed_only: bool, actor, source: str
) -> int:
    """Send again the events of `since`…`until` the endpoint had deliveries of (each event once,
    however many deliveries it had, and none still waiting for one; with `failed_only`, only those
    none of whose deliveries succeeded), at most REPLAY_LIMIT, oldest first. Returns how many
    deliveries were made."""
    if since >= until:
        raise EndpointError(_("The start of the range must be before its end."))
    deliveries = Delivery.objects.filter(endpoint=endpoint, event__created_at__gte=since, event__created_at__lt=until)
    events = deliveries.values_list("event_id", flat=True)
    # An event still waiting for a delivery to this endpoint is on its way already: not doubled.
    waiting = deliveries.filter(status=Delivery.Status.PENDING).values("event_id")
    events = events.exclude(event_id__in=waiting)
    if failed_only:
        succeeded = deliveries.filter(status=Delivery.Status.SUCCEEDED).values("event_id")
        events = events.exclude(event_id__in=succeeded)
    event_ids = list(events.order_by("event__created_at", "event_id").distinct()[:REPLAY_LIMIT])
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.bulk_create(
            [Delivery(event_id=event_id, endpoint=endpoint, next_attempt_at=now) for event_id in event_ids]
        )
        audit(
            actor=actor,
            source=source,
            action="events.replay_range",
            target=endpoint.customer,
            detail=f"{len(event_ids)} events of {since:%Y-%m-%d %H:%M}–{until:%Y-%m-%d %H:%M} UTC to {endpoint.url}",
        )
    return len(event_ids)
