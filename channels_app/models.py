"""The portal's data: customers (tenants) and their members, mirrors of Whapi projects and channels,
the webhook ledger, each channel's timeline and the shared channel-creation budget.

Field names follow Whapi's where Whapi has one (docs/whapi.md §1.2); Whapi's millisecond timestamps
are stored as aware datetimes. Secrets (channel token, webhook secret) are encrypted at rest.

The channel's state vocabulary lives here, once: the states with their labels and one-line meanings,
the groups of states the pipeline, the admin, the customer pages and the filters ask about, and
`Channel.days_left`.
"""

import math
import re
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels_app.crypto import EncryptedTextField


class Customer(models.Model):
    """A partner's customer: the tenant that owns projects and channels."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    channel_quota = models.PositiveIntegerField(
        default=5, help_text="How many channels (not deleted) the customer may have at once."
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="customers")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one customer."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATOR = "operator", _("Operator")
        VIEWER = "viewer", _("Viewer")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "user"], name="one_membership_per_customer")]

    def __str__(self) -> str:
        return f"{self.user} – {self.customer} ({self.role})"


class Project(models.Model):
    """Mirror of a Whapi project (`GET /projects`), assigned to at most one customer."""

    whapi_id = models.CharField("Whapi id", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    whapi_created_at = models.DateTimeField("created in Whapi", null=True, blank=True)
    is_default = models.BooleanField(default=False)
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="projects")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.whapi_id})"


# The header that carries a channel's webhook secret: we configure it on the channel's webhook in Whapi
# (Whapi sends the headers we configure, docs/whapi.md §3) and the receiver authenticates it.
WEBHOOK_SECRET_HEADER = "X-Portal-Secret"


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def new_creation_marker() -> str:
    # Goes into the name we send to Whapi, so that a create whose answer was lost can be found again
    # in the project's channel list (Whapi documents no idempotency key for PUT /channels, docs/whapi.md §1.3).
    return "pp-" + secrets.token_hex(5)


_NUMBER_LIKE = re.compile(r"^[\d\s+().-]+$")


class ChannelQuerySet(models.QuerySet):
    def without_secrets(self) -> "ChannelQuerySet":
        """The channels with their encrypted columns (token, webhook secrets) left unread, for writers
        of status that never need them (the callbacks applier, a checks loop's answers): decrypting
        them costs more than reading the rest of the row. Reading one anyway costs a query."""
        return self.defer("token", "webhook_secret", "previous_webhook_secret")

    def in_use(self) -> "ChannelQuerySet":
        """The channels that count against their customer's quota: every one not deleted (a deleted
        channel's unused days went back to the partner balance)."""
        return self.exclude(state=Channel.State.DELETED)

    def matching(self, q: str) -> "ChannelQuerySet":
        """Channels whose name contains `q`, or whose connected number does when `q` looks like one
        ("+49 151 …", "(415) 555-0123": only its digits count). The dashboard's and the API's search."""
        match = models.Q(name__icontains=q)
        digits = re.sub(r"\D", "", q)
        if digits and _NUMBER_LIKE.match(q):
            match |= models.Q(connected_number__contains=digits)
        return self.filter(match)


class Channel(models.Model):
    """A Whapi channel (one WhatsApp number) and our provisioning state for it."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CREATING = "creating", _("Creating")
        INITIALIZING = "initializing", _("Initializing")
        CONFIGURING = "configuring", _("Configuring")
        WAITING_SCAN = "waiting_scan", _("Waiting for scan")
        CONNECTED = "connected", _("Connected")
        DISCONNECTED = "disconnected", _("Disconnected")
        ERROR = "error", _("Error")
        STOPPED = "stopped", _("Stopped")
        EXPIRED = "expired", _("Expired")
        DELETED = "deleted", _("Deleted")

    # What each state means, in a line that staff and customers both read (details are added by each page).
    STATE_MEANINGS = {
        State.QUEUED: _(
            "Queued for creation: Whapi creates a limited number of channels per half hour, so requests take turns."
        ),
        State.CREATING: _("Being created in Whapi."),
        State.INITIALIZING: _(
            "Created in Whapi and starting up on its servers; Whapi asks for this pause before a new channel is used."
        ),
        State.CONFIGURING: _("Setting and verifying the webhooks of the channel (its notifications)."),
        State.WAITING_SCAN: _("Ready to connect: no WhatsApp number is linked yet."),
        State.CONNECTED: _("Connected: a WhatsApp number is linked and the API sends and receives messages."),
        State.DISCONNECTED: _("Disconnected: no phone is linked any more; scanning the QR code links one again."),
        State.ERROR: _("Error: something needs attention."),
        State.STOPPED: _("Stopped in Whapi; it has to be started again."),
        State.EXPIRED: _("Expired: its paid time ran out; extending it brings it back."),
        State.DELETED: _("Deleted."),
    }
    # Until its webhooks are verified, a channel's lifecycle belongs to the pipeline, not to Whapi's health.
    SETTING_UP = (State.QUEUED, State.CREATING, State.INITIALIZING, State.CONFIGURING)
    # The steps the customer's progress bar shows; reaching the last one means done.
    PIPELINE_STEPS = (*SETTING_UP, State.WAITING_SCAN, State.CONNECTED)
    # States with a channel in Whapi to ask (its gate API may be called once the init delay is over).
    PRESENT_IN_WHAPI = (
        State.INITIALIZING,
        State.CONFIGURING,
        State.WAITING_SCAN,
        State.CONNECTED,
        State.DISCONNECTED,
        State.ERROR,
        State.STOPPED,
        State.EXPIRED,
    )
    # States in which a phone can be linked: the QR code and the pairing code are offered.
    CONNECTABLE = (State.WAITING_SCAN, State.DISCONNECTED)
    # Configured and running: the webhook settings must still be what we set (the drift check).
    LIVE = (State.WAITING_SCAN, State.CONNECTED, State.DISCONNECTED)
    # States that change by themselves soon: pages keep polling, the admin refreshes.
    CHANGING = (*SETTING_UP, State.WAITING_SCAN)

    class Mode(models.TextChoices):
        TRIAL = "trial", _("Trial")
        DEV = "dev", _("Sandbox (dev)")
        DEV_ARCHIVE = "dev_archive", _("Sandbox archive")
        LIVE = "live", _("Live")

    code = models.UUIDField("public id", default=uuid.uuid4, unique=True, editable=False)
    # Indexed with state (Meta.indexes), which also serves the foreign key.
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="channels", db_index=False
    )
    name = models.CharField(max_length=200)

    # The creation request.
    request_key = models.CharField(
        max_length=64, unique=True, null=True, blank=True, help_text="Idempotency key of the request that asked for it."
    )
    creation_marker = models.CharField(max_length=32, default=new_creation_marker, editable=False)
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    create_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    init_until = models.DateTimeField(
        null=True, blank=True, help_text="Creation + WHAPI_INIT_DELAY: the gate API is not touched before."
    )

    # Mirror of Whapi's channel object (docs/whapi.md §1.2).
    whapi_id = models.CharField("Whapi id", max_length=32, unique=True, null=True, blank=True)
    whapi_name = models.CharField("name in Whapi", max_length=255, blank=True)
    whapi_project_id = models.CharField("Whapi project id", max_length=64, blank=True)
    api_url = models.URLField("API URL", max_length=255, blank=True)
    token = EncryptedTextField(blank=True)
    server = models.IntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, blank=True)
    whapi_status = models.CharField("status in Whapi", max_length=32, blank=True)
    stopped = models.BooleanField(default=False)
    whapi_created_at = models.DateTimeField("created in Whapi", null=True, blank=True)
    active_till = models.DateTimeField(null=True, blank=True)
    trial_till = models.DateTimeField(null=True, blank=True)

    # Our lifecycle. Indexed with requested_at and with project (Meta.indexes), which serve lookups by
    # state too: every index of this table is written again by each status update that moves a due time.
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    state_changed_at = models.DateTimeField(default=timezone.now)

    # Health as last seen (webhook or poll), ordered by (start_at, uptime).
    health_status = models.CharField(max_length=32, blank=True)
    health_code = models.IntegerField(null=True, blank=True)
    health_start_at = models.BigIntegerField(null=True, blank=True)
    health_uptime = models.BigIntegerField(null=True, blank=True)
    last_confirmed_at = models.DateTimeField(null=True, blank=True)
    status_stale = models.BooleanField(default=False)
    # When the channel's health is next asked of Whapi (null: nothing to ask). Set by every report
    # (quiet for 15 minutes after it, or at once when a report wants confirming) and claimed by the
    # checks sweep (channels_app.checks), which pushes it on before asking.
    health_check_due_at = models.DateTimeField(null=True, blank=True)

    connected_number = models.CharField(max_length=32, blank=True)
    connected_name = models.CharField(max_length=200, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    # A users.delete callback said the number logged out; shown as "checking" until a health report
    # confirms it (docs/whapi.md §3: a replayed or spurious callback must not flip the channel).
    disconnect_reported_at = models.DateTimeField(null=True, blank=True)
    # Alerts (alerts/rules.py): when a disconnect of a connected channel is told if it lasts (the end of
    # ALERT_GRACE_SECONDS, or a recheck), and when it was told (a reconnect then says "back online").
    disconnect_alert_due_at = models.DateTimeField(null=True, blank=True)
    disconnect_alerted_at = models.DateTimeField(null=True, blank=True)
    # The smallest EXPIRY_REMINDER_DAYS threshold told for the paid period ending at `active_till`
    # (`expiry_reminded_for`): each threshold once per period; an extension starts a new one.
    expiry_reminded_for = models.DateTimeField(null=True, blank=True)
    expiry_reminded_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # The waiting-for-scan period (its `state_changed_at`) whose "not scanned yet" reminder was told.
    scan_reminded_for = models.DateTimeField(null=True, blank=True)

    # Webhook configuration.
    webhook_secret = EncryptedTextField(default=new_webhook_secret, editable=False)
    # The secret before a rotation: accepted too until Whapi's settings are read back with the new one.
    previous_webhook_secret = EncryptedTextField(blank=True, editable=False)
    customer_webhook_url = models.URLField(max_length=500, blank=True)
    customer_webhook_events = models.JSONField(default=list, blank=True)
    configure_attempts = models.PositiveIntegerField(default=0)
    next_configure_at = models.DateTimeField(null=True, blank=True)
    webhooks_applied_at = models.DateTimeField(null=True, blank=True)
    webhooks_verified_at = models.DateTimeField(null=True, blank=True)
    webhooks_readback = models.JSONField(default=dict, blank=True)
    # When the webhook settings are next read back from Whapi (null: not configured yet, or not live).
    settings_check_due_at = models.DateTimeField(null=True, blank=True)

    reconcile_attempts = models.PositiveIntegerField(default=0)

    class ErrorSource(models.TextChoices):
        CREATE = "create", "Creating"
        CONFIGURE = "configure", "Configuring webhooks"
        HEALTH = "health", "Whapi health"
        ACTION = "action", "Action"

    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    error_source = models.CharField(max_length=16, choices=ErrorSource.choices, blank=True)
    # Errors a healthy report from Whapi clears (a failed action, such as a logout, leaves nothing broken);
    # a failed creation or configuration needs the pipeline or staff.
    ERRORS_HEALTH_CLEARS = (ErrorSource.HEALTH, ErrorSource.ACTION, "")

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["state", "requested_at"], name="channel_state_requested"),
            # A customer's dashboard: its projects' channels, oldest request first (id breaks ties), a page at a time.
            models.Index(fields=["project", "requested_at", "id"], name="channel_project_requested"),
            # A customer's channels counted against its quota (all but the deleted), and filtered by state,
            # read from the index alone.
            models.Index(fields=["project", "state"], name="channel_project_state"),
            models.Index(fields=["health_check_due_at"], name="channel_health_check_due"),
            models.Index(fields=["settings_check_due_at"], name="channel_settings_check_due"),
            # The "needs a look" counts of the channel list and the operations home (fleet.attention_counts).
            models.Index(fields=["active_till"], name="channel_active_till"),
            models.Index(fields=["state"], condition=models.Q(status_stale=True), name="channel_stale"),
            # The alerts sweep's disconnects to tell (a handful at any time).
            models.Index(
                fields=["disconnect_alert_due_at"],
                condition=models.Q(disconnect_alert_due_at__isnull=False),
                name="channel_disconnect_alert_due",
            ),
        ]
        # Staff actions that change a channel in Whapi, each granted on its own (see channels_app.admin).
        permissions = [
            ("operate_channel", "Can configure webhooks, refresh the status and restart channels"),
            ("extend_channel", "Can extend channels (spends partner days)"),
            ("change_mode", "Can change a channel's mode"),
            ("logout_number", "Can log a channel's number out"),
            ("delete_in_whapi", "Can delete channels in Whapi"),
            ("reveal_token", "Can reveal a channel's API token"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.whapi_id})" if self.whapi_id else self.name

    def __repr__(self) -> str:
        # Django's default repr would be fine, but spelling it out keeps secrets out by construction.
        return f"<Channel {self.pk} {self.whapi_id or '-'} {self.state}>"

    @property
    def customer(self) -> Customer | None:
        return self.project.customer if self.project_id else None

    @property
    def changing(self) -> bool:
        """Whether the channel's state is about to change by itself: pages keep polling it."""
        return self.state in self.CHANGING or self.disconnect_checking

    @property
    def disconnect_checking(self) -> bool:
        """Whether a reported disconnect is being confirmed with Whapi (the pages say "checking")."""
        return self.state == self.State.CONNECTED and self.disconnect_reported_at is not None

    @property
    def state_meaning(self) -> str:
        """What the state means, in the active language."""
        return str(self.STATE_MEANINGS[self.state])

    @property
    def present_in_whapi(self) -> bool:
        """Whether the channel exists in Whapi (created, not deleted): only then can Whapi act on it."""
        return bool(self.whapi_id) and self.state in self.PRESENT_IN_WHAPI

    @property
    def display_number(self) -> str:
        """The linked WhatsApp number as every page writes it, "+<digits>"; "" when none is linked."""
        return f"+{self.connected_number}" if self.connected_number else ""

    def days_left(self, now=None) -> int | None:
        """Days until the channel's paid time ends, rounded up (0 once it ended); None when unknown,
        and for a deleted channel (its unused days went back to the partner balance).

        Rounded up, so that `days_left() <= N` exactly when the paid time ends within N days. Every
        page that shows days left (the staff console and the customer pages) shows this number.
        """
        if self.active_till is None or self.state == self.State.DELETED:
            return None
        seconds = (self.active_till - (now or timezone.now())).total_seconds()
        return max(0, math.ceil(seconds / 86400))


class WebhookEvent(models.Model):
    """Ledger: every callback received on the webhook URL, stored raw before it is applied."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", "Received"
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Duplicate (no change)"
        STALE = "stale", "Older than what we know"
        IGNORED = "ignored", "Ignored event type"
        UNKNOWN_CHANNEL = "unknown_channel", "Unknown channel"
        FAILED = "failed", "Failed"

    # Indexed with received_at (Meta.indexes), which also serves the foreign key.
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_events", db_index=False
    )
    whapi_channel_id = models.CharField(max_length=32, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    event_method = models.CharField(max_length=16, blank=True)
    body = models.TextField(help_text="The raw request body.")
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        # Each one serves a list of the admin newest first (channels_app.admin.ledger), and the first
        # also retention's "oldest first"; every callback pays for four, so no more than these.
        indexes = [
            models.Index(fields=["received_at", "id"], name="ledger_received"),
            models.Index(fields=["channel", "received_at"], name="ledger_channel_received"),
            models.Index(fields=["whapi_channel_id", "received_at"], name="ledger_whapi_id_received"),
            models.Index(fields=["outcome", "received_at"], name="ledger_outcome_received"),
            # The callbacks applier's queue: the few rows still to apply, oldest first, whatever the ledger's size.
            models.Index(fields=["id"], condition=models.Q(outcome="received"), name="ledger_to_apply"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type}.{self.event_method} for {self.whapi_channel_id or '?'} ({self.outcome})"


class ChannelEvent(models.Model):
    """Timeline: one row for every state or status change of a channel."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        POLL = "poll", "Poll"
        STAFF = "staff", "Staff"
        CUSTOMER = "customer", "Customer"
        API = "api", "API"
        SYSTEM = "system", "System"

    # Indexed with `at` (Meta.indexes): a channel's newest events, and the foreign key.
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="timeline", db_index=False)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32)
    source = models.CharField(max_length=16, choices=Source.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["channel", "at"], name="timeline_channel_at")]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state} ({self.source})"


class CreateBudget(models.Model):
    """The single row that serialises access to the create budget (see channels_app.budget).

    `blocked_until` holds back every creation after Whapi answered 429 itself (for example because
    channels were also created by hand in Whapi's panel).
    """

    blocked_until = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=300, blank=True)
    # One pump at a time sends creations, so they reach Whapi in queue order (see budget.pump_lease).
    pump_lease_until = models.DateTimeField(null=True, blank=True)
    pump_lease_owner = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return "Channel-creation budget"


class CreateAttempt(models.Model):
    """One `PUT /channels` we sent (or were about to send): the ledger the create budget counts."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="create_log")
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"create attempt at {self.at:%Y-%m-%d %H:%M:%S} ({self.outcome or 'pending'})"


class AuditLog(models.Model):
    """Who changed what in Whapi or in tenancy, from where, and whether it worked."""

    class Source(models.TextChoices):
        STAFF = "staff", "Staff"
        CUSTOMER = "customer", "Customer"
        HANDOFF = "handoff", "Hand-off link"
        API = "api", "API"
        SYSTEM = "system", "System"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="The actor's name when it was recorded.")
    api_key = models.CharField(
        max_length=16, blank=True, db_index=True, help_text="The prefix of the API key the action was made with."
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    ok = models.BooleanField(default=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.target_label} ({'ok' if self.ok else 'failed'})"


class BulkJob(models.Model):
    """A staff action run in the background over many channels, with an outcome per channel."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} on {self.items.count()} channels ({self.status})"


class BulkJobItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        OK = "ok", "Done"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Outcome unknown"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "channel"], name="one_item_per_channel_per_job")]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"


class HandoffLink(models.Model):
    """A signed, expiring, revocable link that shows one channel's QR / pairing code and status to
    whoever holds the phone, without a login. Only the newest link of a channel works."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="handoff_links")
    nonce = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"hand-off link for {self.channel} until {self.expires_at:%Y-%m-%d %H:%M}"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now


class FailedLogin(models.Model):
    """One failed login, kept to throttle guessing (shared by every web process)."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"failed login for {self.username} at {self.at:%Y-%m-%d %H:%M:%S}"


class PasswordResetRequest(models.Model):
    """One request for a password-reset mail, kept to throttle them (shared by every web process)."""

    email = models.CharField(max_length=254, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"password reset requested at {self.at:%Y-%m-%d %H:%M:%S}"


class Invitation(models.Model):
    """An owner's invitation of an email address to a customer, with a role. Nobody becomes a member
    until the invited person accepts it by its signed link (see channels_app.members)."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.VIEWER)
    nonce = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invitation to {self.customer} as {self.role}"

    def is_pending(self, now=None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


class UserProfile(models.Model):
    """A user's own settings for the customer pages. Blank means "as the browser says": the time
    zone from the browser's cookie (portal/timezones.py), the language from its Accept-Language."""

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        SPANISH = "es", "Español"
        PORTUGUESE_BRAZIL = "pt-br", "Português (Brasil)"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # An IANA zone name (zoneinfo.available_timezones(); checked by forms.ProfileForm).
    time_zone = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=8, blank=True, choices=Language.choices)

    def __str__(self) -> str:
        return f"profile of {self.user}"
