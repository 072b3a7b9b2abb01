"""Events to customers' systems: the endpoints customers register, the events their channels had, and
the deliveries of each event to each endpoint with a row per attempt (the delivery log).

An `Endpoint` is a URL of the customer's that wants some event types, with a signing secret in the
Standard Webhooks format (`whsec_<base64>`, encrypted at rest, shown once). An `Event` is one thing
that happened to one channel, with the JSON body every endpoint gets and its `webhook_id`, the same
for every delivery, retry and replay of it. A `Delivery` is one event to one endpoint (a replay is a
new delivery of the same event); an `Attempt` is one POST of it, with the answer's status code and
latency. events/emit.py writes events and deliveries; events/delivery.py sends them on the worker.
"""

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels_app.crypto import EncryptedTextField
from channels_app.models import Channel, Customer


class EventType(models.TextChoices):
    CREATED = "channel.created", _("A channel was created in Whapi")
    READY_FOR_SCAN = "channel.ready_for_scan", _("A channel is ready for its QR code to be scanned")
    CONNECTED = "channel.connected", _("A WhatsApp number connected to a channel")
    DISCONNECTED = "channel.disconnected", _("A connected number disconnected (once it lasted)")
    ERROR = "channel.error", _("A channel is in error")
    EXPIRING = "channel.expiring", _("A channel's paid days are running out")
    DELETED = "channel.deleted", _("A channel was deleted")


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class Endpoint(models.Model):
    code = models.UUIDField("public id", default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="event_endpoints")
    url = models.CharField("URL", max_length=500)
    event_types = models.JSONField(
        default=list, help_text="The event types sent to this endpoint; a type added later is not sent until chosen."
    )
    description = models.CharField(max_length=200, blank=True)
    # Standard Webhooks' format, so that its libraries take it as it is; never shown after it is made.
    secret = EncryptedTextField(default=new_signing_secret, editable=False)
    active = models.BooleanField(default=True, help_text="Switched off: no new deliveries, pending ones wait.")
    disabled_until = models.DateTimeField(
        null=True, blank=True, help_text="Paused after repeated failures: nothing is sent to it until then."
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["customer__name", "pk"]

    def __str__(self) -> str:
        return self.description or self.url

    @property
    def event_labels(self) -> list[str]:
        labels = dict(EventType.choices)
        return [str(labels.get(event_type, event_type)) for event_type in self.event_types]

    def is_paused(self, now=None) -> bool:
        return self.disabled_until is not None and self.disabled_until > (now or timezone.now())


class Event(models.Model):
    webhook_id = models.CharField(max_length=40, default=new_webhook_id, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    type = models.CharField(max_length=40, choices=EventType.choices)
    # The body as sent: {"type": …, "timestamp": …, "data": {…}}; never a token or secret.
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["created_at"], name="event_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The last attempt's result, for the log's one line per delivery (its attempts have the rest).
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_to_send"),
            models.Index(fields=["endpoint", "-id"], name="delivery_log"),  # the log pages on by id
            models.Index(fields=["created_at"], name="delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint}"


class Attempt(models.Model):
    """One POST of a delivery: when, the answer's status code (none when there was no answer), how long
    it took, and why it failed in a short line (never the answer's body or a header)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["at"], name="attempt_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
