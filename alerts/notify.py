"""Telling people: one Notification row per recipient that wants the event, for the customer's channel.

Creating the rows is all that happens here, in the caller's transaction (a status write), so telling
never waits for a mail server or a chat service: alerts.delivery sends them on the worker. The
(recipient, key) pair is unique, so telling the same occasion again adds nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise, lazy

from alerts.models import HANDOFF_PLACEHOLDER, STAFF_EVENTS, Notification, Recipient
from channels_app import handoff
from channels_app.models import AuditLog, Channel, Customer
from portal.locale import recipient_language

# A hand-off link made for a message works this long (the longest a customer can choose).
HANDOFF_LIFETIME = timedelta(hours=24)


def words(write: Callable[[], str]) -> Promise:
    """A text written when it is read: `write()` is called in the language active then, which
    `notify` sets to each recipient's (`portal.locale.recipient_language`)."""
    return lazy(write, str)()


@dataclass(frozen=True)
class Message:
    """What an event says, in two versions of its link: the customer's channel page and the admin's.

    The texts are plain strings or lazy ones (gettext_lazy, `words`): each recipient's row is written
    in that recipient's language."""

    subject: str | Promise
    text: str | Promise  # without the link
    fix: str | Promise  # what the link does, e.g. "Scan the QR code again"
    # Customers get a hand-off link (the channel's active one, or a new one for 24 hours) instead of
    # the channel page: for a scan by whoever holds the phone.
    handoff: bool = False


def recipients_for(event: str, customer_id: int | None) -> list[Recipient]:
    """Active recipients that want `event` and may hear about the customer's channels: partner staff's,
    and the customer's own (none of a customer's when `customer_id` is None: a partner matter)."""
    if event in STAFF_EVENTS:
        customer_id = None  # the partner's own matters are never told to customers
    candidates = (
        Recipient.objects.filter(active=True)
        .filter(Q(customer__isnull=True) | Q(customer_id=customer_id))
        .select_related("user__profile")
    )
    # A recipient's events are a short list; filtered here so that SQLite (no JSON containment) and
    # PostgreSQL read the same way.
    return [recipient for recipient in candidates if event in recipient.events]


def channel_link(channel: Channel, *, staff: bool) -> str:
    path = (
        reverse("admin:channels_app_channel_change", args=[channel.pk])
        if staff
        else reverse("channels_app:channel", args=[channel.code])
    )
    return settings.PORTAL_BASE_URL + path


def notify(
    event: str,
    channel: Channel | None,
    *,
    key: str,
    message: Message,
    link: str = "",
    customer: Customer | None = None,
    customer_link: str = "",
) -> int:
    """Queue `message` for every recipient of `event`: about `channel` (its page is the link), or, with
    no channel, a partner matter for staff (`link`, an admin page), or a matter of `customer`'s told to
    its recipients too (with `customer_link`, their page). Returns how many rows are new."""
    now = timezone.now()
    if channel is not None:
        customer = channel.project.customer if channel.project_id else None
    told = set(Notification.objects.filter(key=key).values_list("recipient_id", flat=True))
    recipients = [r for r in recipients_for(event, customer.pk if customer else None) if r.pk not in told]
    if not recipients:
        return 0  # told already (checked first, so that no hand-off link is made for nothing)
    handoff_link = None
    if message.handoff and channel is not None and any(r.customer_id for r in recipients):
        handoff_link = handoff.active_handoff_link(channel) or handoff.handoff_create(
            channel=channel, lifetime=HANDOFF_LIFETIME, actor=None, source=AuditLog.Source.SYSTEM
        )

    def link_for(recipient: Recipient) -> str:
        if channel is None:
            return customer_link if recipient.customer_id and customer_link else link
        if handoff_link is not None and recipient.customer_id:
            return HANDOFF_PLACEHOLDER
        return channel_link(channel, staff=recipient.customer_id is None)

    rows = []
    for recipient in recipients:
        with translation.override(recipient_language(recipient.user)):
            subject, body = str(message.subject), f"{message.text}\n\n{message.fix}: {link_for(recipient)}\n"
        rows.append(
            Notification(
                event=event,
                key=key,
                recipient=recipient,
                to=recipient.address,
                customer=customer,
                channel=channel,
                handoff_link=handoff_link if recipient.customer_id else None,
                subject=subject,
                body=body,
                next_attempt_at=now,
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return Notification.objects.filter(key=key).count() - len(told)
