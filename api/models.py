"""API keys: who may call /api/v1/, for which customer or channel, and whether it may write.

A key is shown once, when it is made. At rest it is a short public prefix (to find the row) and the
SHA-256 of the whole key: a key is 256 random bits, so a fast hash is enough (the password hasher's
slowness protects guessable passwords, and would cost every API request tens of milliseconds).
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from channels_app.models import Channel, Customer


class ApiKey(models.Model):
    """A bearer key: partner-wide (no customer, staff only), one customer's, or one channel's."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the system that uses it.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="Empty: a partner key, which may act for any customer.",
    )
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="Set: the key sees this one channel only.",
    )
    can_write = models.BooleanField(default=False, help_text="Off: read-only.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__isnull=True) | models.Q(customer__isnull=False),
                name="api_key_channel_has_customer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope(self) -> str:
        """'partner', 'customer' or 'channel'."""
        if self.customer_id is None:
            return "partner"
        return "channel" if self.channel_id else "customer"

    @property
    def audit_label(self) -> str:
        """How the audit log names actions made with this key."""
        return f"API key {self.prefix} ({self.name})"[:150]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiRateWindow(models.Model):
    """How many requests a key made in one window of the rate limit (api.throttle): a row per key and
    window, counted up in one UPDATE, so every web server sees the same count. A key's older windows
    are dropped when its next window starts: the table holds about one row per key in use."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "window_start"], name="one_rate_window_per_key")]

    def __str__(self) -> str:
        return f"{self.hits} requests from {self.window_start:%H:%M:%S}"
