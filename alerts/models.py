"""Who is told about what, and the record of every notification sent.

A `Recipient` is an address that wants some kinds of events: partner staff's (no customer) hear about
every customer's channels, a customer's only about its own. An address is an email or a chat
service's URL in apprise's notation (slack://…, tgram://…, msteams://…, json://… for a generic
webhook); the URL usually holds the service's token, so it is encrypted at rest and shown masked.

A `Notification` is one message to one recipient about one event: created by alerts.notify, sent by
alerts.delivery on the worker with a bounded number of attempts, and kept as the record (sent or
failed, when, why). Its `key` names the occasion (an event of one channel in one period), unique per
recipient, so an occasion is told once however often the sweep looks at it.
"""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels_app.crypto import EncryptedTextField
from channels_app.models import Channel, Customer, HandoffLink, Project


class Event(models.TextChoices):
    DISCONNECTED = "channel.disconnected", _("A connected number disconnected")
    BACK_ONLINE = "channel.back_online", _("A channel is back online after a disconnect alert")
    NOT_SCANNED = "channel.not_scanned", _("A channel is ready but nobody scanned it")
    ERROR = "channel.error", _("A channel is in error, or its webhook settings drifted")
    EXPIRING = "channel.expiring", _("A channel's paid days are running out")
    EXPIRED = "channel.expired", _("A channel expired or was stopped")
    ENDPOINT_DISABLED = "endpoint.disabled", _("An events endpoint was paused after repeated failures")
    STILL_DOWN = "partner.still_down", _("A told disconnect still lasts (staff escalation)")
    PARTNER_DAYS_LOW = "partner.days_low", _("The partner's day balance is low (staff only)")
    RENEWAL_PROBLEM = "partner.renewal_problem", _("An automatic renewal failed or reached its cap (staff only)")


# Where a message's hand-off link goes in its stored body; the link is made into a URL when it is sent.
HANDOFF_PLACEHOLDER = "[a hand-off link, in the message itself]"

# The partner's own matters, told to staff only; customers may be told the rest.
STAFF_EVENTS = {value for value in Event.values if value.startswith("partner.")}
CUSTOMER_EVENTS = [(value, label) for value, label in Event.choices if value not in STAFF_EVENTS]


def chat_url_problem(url: str) -> str:
    """Why apprise cannot send to `url` ("" when it can)."""
    import apprise

    if not apprise.Apprise().add(url):
        return "Not a chat service URL apprise knows (e.g. slack://…, tgram://…, msteams://…, json://…)."
    return ""


def masked_url(url: str) -> str:
    """A chat URL as lists show it: the service and host, never the token in it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else "…"


class Recipient(models.Model):
    code = models.UUIDField("public id", default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_recipients",
        help_text="Empty: partner staff, told about every customer's channels.",
    )
    name = models.CharField(max_length=200, blank=True, help_text="Who or what this is, for the lists.")
    # A member of the customer, told at the address their account has when a message goes out.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="alert_recipients"
    )
    email = models.EmailField(blank=True)
    chat_url = EncryptedTextField(
        "chat URL",
        blank=True,
        help_text="A chat service in apprise's notation: slack://…, tgram://…, msteams://…, json://… "
        "(a generic webhook). Stored encrypted; it usually holds the service's token.",
    )
    events = models.JSONField(default=list, help_text="The events this recipient is told about.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["customer__name", "name", "pk"]

    def __str__(self) -> str:
        return self.name or self.address

    @property
    def event_labels(self) -> list[str]:
        labels = dict(Event.choices)
        return [str(labels.get(event, event)) for event in self.events]

    @property
    def email_address(self) -> str:
        """The address mail goes to: the member's own, or the one given."""
        return self.user.email if self.user_id else self.email

    @property
    def address(self) -> str:
        """Where messages go, as lists and the record show it."""
        if self.user_id:
            return f"{self.user.get_username()} <{self.user.email}>"
        return self.email or masked_url(self.chat_url)


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    event = models.CharField(max_length=40, choices=Event.choices)
    key = models.CharField(max_length=120, help_text="The occasion: told once per recipient.")
    recipient = models.ForeignKey(Recipient, on_delete=models.SET_NULL, null=True, related_name="notifications")
    to = models.CharField(max_length=300, help_text="The address as it was, masked for chat URLs.")
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # A hand-off link the message carries: put into the body (at HANDOFF_PLACEHOLDER) when it is sent,
    # so the record never holds the link's token.
    handoff_link = models.ForeignKey(HandoffLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["recipient", "key"], name="notification_once_per_recipient")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="notification_to_send"),
            models.Index(fields=["customer", "created_at"], name="notification_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.to}"


class RenewalRule(models.Model):
    """Extend a customer's channels (or one project's) by `extend_days` once `when_days_left` or fewer
    days are left, at most `monthly_cap_days` a calendar month (UTC) for the customer (alerts/renewals.py)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="renewal_rules")
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="renewal_rules",
        help_text="Only this project's channels; empty: all of the customer's.",
    )
    extend_days = models.PositiveSmallIntegerField(
        "extend by (days)", validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    when_days_left = models.PositiveSmallIntegerField(
        "when days left are at most", validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    monthly_cap_days = models.PositiveIntegerField(
        "cap (days a month)",
        validators=[MinValueValidator(1)],
        help_text="Automatic extensions of this customer stop for the month once they would pass this many days.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["customer__name", "pk"]

    def __str__(self) -> str:
        scope = self.project.name if self.project_id else self.customer.name
        return f"{scope}: +{self.extend_days} days at {self.when_days_left} or fewer left"

    def clean(self) -> None:
        if self.project_id and self.customer_id and self.project.customer_id != self.customer_id:
            raise ValidationError({"project": "This project belongs to another customer."})
        if self.extend_days and self.monthly_cap_days and self.extend_days > self.monthly_cap_days:
            raise ValidationError({"monthly_cap_days": "The cap is smaller than one extension."})


class Renewal(models.Model):
    """One automatic extension, recorded before Whapi is asked: unique per channel and paid period
    (the `active_till` it was decided on), so a period is never paid for twice, whatever Whapi answers."""

    class Status(models.TextChoices):
        PENDING = "pending", "Asking Whapi"
        DONE = "done", "Extended"
        FAILED = "failed", "Refused by Whapi"
        UNKNOWN = "unknown", "Answer lost: check in Whapi"

    rule = models.ForeignKey(RenewalRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="renewals")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="renewals")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="renewals")
    period_end = models.DateTimeField(help_text="The channel's paid time end the renewal was decided on.")
    days = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["channel", "period_end"], name="renewal_once_per_period")]
        indexes = [models.Index(fields=["customer", "created_at"], name="renewal_customer_month")]

    def __str__(self) -> str:
        return f"{self.channel} +{self.days} days ({self.get_status_display()})"
