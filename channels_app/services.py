"""Write operations of the provisioning pipeline: request → create (within the budget, never twice)
→ wait out init → configure webhooks (read back and verified) → live status; plus the Whapi sync.

Every function here is safe to run twice: state lives in model columns and is claimed with locked
reads or conditional updates, so a redelivered task finds the work done and does nothing.
Whapi failures are stored on the channel (`last_error`, `error_source`) for staff, never swallowed.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from channels_app import budget, jobs
from channels_app.models import Channel, ChannelEvent, CreateAttempt, Customer, Project
from channels_app.status import PRE_CONFIGURED, apply_health, set_state
from channels_app.whapi import WhapiChannel, WhapiError, WhapiProject, gate_client, partner_client

logger = logging.getLogger(__name__)

Source = ChannelEvent.Source
State = Channel.State

# The header that carries a channel's webhook secret; Whapi sends the headers we configure (max 5).
SECRET_HEADER = "X-Portal-Secret"
OUR_EVENTS = [
    {"type": "channel", "method": "post"},
    {"type": "channel", "method": "patch"},
    {"type": "users", "method": "post"},
    {"type": "users", "method": "delete"},
]
DEFAULT_CUSTOMER_EVENTS = [{"type": "messages", "method": "post"}, {"type": "statuses", "method": "post"}]
CALLBACK_BACKOFF_MS = 5000
MAX_CALLBACK_BACKOFF_MS = 900000

MAX_CREATE_ATTEMPTS = 5
MAX_RECONCILE_ATTEMPTS = 6
MAX_CONFIGURE_ATTEMPTS = 6
RETRY_DELAYS = (15, 30, 60, 120, 300, 600)  # seconds, by attempt number
# A channel still CREATING this long after its claim lost its worker (the task timeout is shorter).
STALE_CREATING = timedelta(seconds=300)
# How long one pump run keeps claiming channels (django-q2 kills a task after 120 s).
PUMP_SECONDS = 60
# Channels not heard of for this long are polled; so are channels still mid-provisioning.
QUIET_TOO_LONG = timedelta(minutes=15)
SETTINGS_RECHECK = timedelta(hours=6)


class ServiceError(Exception):
    """A request the portal refuses, with a message fit to show the person who made it."""


def retry_delay(attempt: int) -> timedelta:
    return timedelta(seconds=RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])


def webhook_url() -> str:
    return settings.PORTAL_BASE_URL + reverse("channels_app:whapi_webhook")


def _record_error(channel: Channel, message: str, source: str, **fields) -> None:
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(last_error=message, last_error_at=now, error_source=source, **fields)
    channel.last_error, channel.last_error_at, channel.error_source = message, now, source
    for name, value in fields.items():
        setattr(channel, name, value)
    logger.warning("channel %s (%s): %s", channel.pk, channel.whapi_id or "not created", message)


def _give_up(channel: Channel, reason: str, source: str, **fields) -> None:
    """Leave the reason on the channel and move it to ERROR, for staff to see."""
    _record_error(channel, reason, source, **fields)
    set_state(channel, State.ERROR, source=Source.SYSTEM, detail=reason)


# ------------------------------------------------------------------------------------------------
# Requesting a channel
# ------------------------------------------------------------------------------------------------
def channel_request(
    *,
    project: Project,
    name: str,
    requested_by=None,
    request_key: str | None = None,
    source: str = Source.SYSTEM,
    enforce_quota: bool = True,
) -> Channel:
    """Record a request for a new channel in `project` and queue it; returns at once.

    The same `request_key` (a double-submitted form) returns the channel of the first request.
    Raises ServiceError when the name is empty, the project is unknown to Whapi, or the customer's
    quota is used up (then nothing is recorded and nothing is sent to Whapi).
    """
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the channel a name.")
    if len(name) > 150:
        raise ServiceError("The channel name can be at most 150 characters long.")
    if not project.whapi_id:
        raise ServiceError("This project is not linked to a Whapi project.")
    if request_key:
        existing = Channel.objects.filter(request_key=request_key).first()
        if existing:
            return existing
    try:
        with transaction.atomic():
            if enforce_quota and project.customer_id:
                # Locking the customer makes two requests at once count each other.
                customer = Customer.objects.select_for_update().get(pk=project.customer_id)
                in_use = Channel.objects.filter(project__customer=customer).exclude(state=State.DELETED).count()
                if in_use >= customer.channel_quota:
                    raise ServiceError(
                        f"{customer.name} already has {in_use} of its {customer.channel_quota} channels. "
                        "Delete a channel or ask for a higher quota."
                    )
            channel = Channel.objects.create(
                project=project,
                name=name,
                requested_by=requested_by,
                request_key=request_key or None,
                whapi_project_id=project.whapi_id,
            )
            ChannelEvent.objects.create(channel=channel, to_state=State.QUEUED, source=source, detail="requested")
            jobs.enqueue_on_commit("pump_create_queue")
    except IntegrityError:
        # Two submissions of the same form raced; the first one's channel stands.
        existing = Channel.objects.filter(request_key=request_key).first() if request_key else None
        if existing is None:
            raise
        return existing
    return channel


# ------------------------------------------------------------------------------------------------
# Creating channels within the budget
# ------------------------------------------------------------------------------------------------
def create_queue_pump(*, limit: int = 50) -> int:
    """Create queued channels, oldest first, as far as the budget allows; returns how many were tried.

    One pump at a time holds the lease, so creations reach Whapi in queue order; a pump that finds
    the lease taken returns at once (the holder picks its channels up). When the budget is spent, a
    one-off schedule wakes the pump at the next free slot.
    """
    recover_stale_creating()
    tried = 0
    # Stop claiming well before django-q2's task timeout: each creation may take WHAPI_TIMEOUT and more.
    deadline = time.monotonic() + PUMP_SECONDS
    for _round in range(3):
        with budget.pump_lease() as owner:
            if owner is None:
                break
            while tried < limit and time.monotonic() < deadline and budget.renew_lease(owner):
                claim = budget.claim_next()
                if claim.channel is None:
                    if claim.retry_at:
                        jobs.schedule_once("create-queue-wakeup", "pump_create_queue", claim.retry_at)
                    break
                channel_create(claim.channel)
                tried += 1
        # A request committed while we were letting go found the lease taken: look once more.
        if not budget.claimable_now():
            break
        if tried >= limit or time.monotonic() >= deadline:
            jobs.enqueue("pump_create_queue")  # more is ready: carry on in a fresh task
            break
    return tried


def channel_create(channel: Channel) -> None:
    """Send `PUT /channels` for a channel that `budget.claim_next` moved to CREATING.

    Never retried blindly: an unknown outcome is reconciled against Whapi's channel list first.
    """
    marker_name = f"{channel.name} [{channel.creation_marker}]"
    Channel.objects.filter(pk=channel.pk).update(whapi_name=marker_name)
    if CreateAttempt.objects.filter(channel=channel, outcome="unknown").exists():
        # An earlier attempt's outcome was unknown and its channel was not listed then. Whapi may
        # have finished it since: look once more right before sending another create.
        try:
            remote_channels = partner_client().list_channels(project_id=channel.whapi_project_id)
        except WhapiError as exc:
            _mark_attempt(channel, "not sent")
            _requeue_or_fail(channel, f"Whapi could not be asked whether an earlier attempt created it: {exc}")
            return
        mine = [remote for remote in remote_channels if channel.creation_marker in (remote.name or "")]
        if mine:
            _mark_attempt(channel, "adopted")
            channel_adopt(channel, mine[0], detail="found in Whapi before trying again")
            return
    try:
        remote = partner_client().create_channel(name=marker_name, project_id=channel.whapi_project_id)
    except WhapiError as exc:
        _create_failed(channel, exc)
        return
    _mark_attempt(channel, "created")
    channel_adopt(channel, remote, detail="created in Whapi")


def _mark_attempt(channel: Channel, outcome: str) -> None:
    attempt = CreateAttempt.objects.filter(channel=channel).order_by("-at").first()
    if attempt and not attempt.outcome:
        CreateAttempt.objects.filter(pk=attempt.pk).update(outcome=outcome)


def _create_failed(channel: Channel, exc: WhapiError) -> None:
    now = timezone.now()
    if exc.status == 429:
        # Whapi counted more creations than we did (e.g. channels made in its panel): wait, keep our place.
        until = now + timedelta(seconds=exc.retry_after or settings.WHAPI_CREATE_WINDOW)
        budget.block_until(until, f"Whapi answered 429: {exc.message}")
        _mark_attempt(channel, "429")
        _record_error(
            channel, f"Whapi's creation limit was reached; queued again until {until:%H:%M:%S} UTC.", "create"
        )
        set_state(channel, State.QUEUED, source=Source.SYSTEM, detail="Whapi answered 429 Too Many Requests")
        jobs.schedule_once("create-queue-wakeup", "pump_create_queue", until)
    elif exc.outcome_unknown:
        _mark_attempt(channel, "unknown")
        _record_error(
            channel, f"Whapi's answer to the creation was lost ({exc}); checking whether it was created.", "create"
        )
        channel_reconcile(channel)
    elif exc.permanent:
        _mark_attempt(channel, f"refused {exc.status}")
        _give_up(channel, f"Whapi refused to create the channel: {exc}", "create")
    else:
        _mark_attempt(channel, "not sent")
        _requeue_or_fail(channel, f"Whapi could not be reached to create the channel: {exc}")


def _requeue_or_fail(channel: Channel, reason: str) -> None:
    if channel.create_attempts >= MAX_CREATE_ATTEMPTS:
        _give_up(channel, f"{reason} (gave up after {channel.create_attempts} attempts)", "create")
        return
    retry_at = timezone.now() + retry_delay(channel.create_attempts)
    _record_error(channel, f"{reason}; trying again at {retry_at:%H:%M:%S} UTC.", "create", next_attempt_at=retry_at)
    set_state(channel, State.QUEUED, source=Source.SYSTEM, detail=reason)
    jobs.schedule_once("create-queue-wakeup", "pump_create_queue", retry_at)


def channel_reconcile(channel: Channel) -> None:
    """After a create with an unknown outcome: adopt the channel Whapi made for us, or prove it made none.

    The creation marker in the name we sent identifies our channel in the project's list. Only when
    the list shows no such channel is the request queued again; while Whapi cannot be asked, the
    channel stays CREATING and the check is retried (bounded), never the creation.
    """
    try:
        remote_channels = partner_client().list_channels(project_id=channel.whapi_project_id)
    except WhapiError as exc:
        attempts = channel.reconcile_attempts + 1
        if attempts >= MAX_RECONCILE_ATTEMPTS:
            reason = (
                "Could not confirm with Whapi whether the channel was created; check Whapi's panel for a channel "
                f"named '{channel.whapi_name}' before asking again. Last error: {exc}"
            )
            _give_up(channel, reason, "create", reconcile_attempts=attempts)
            return
        retry_at = timezone.now() + retry_delay(attempts)
        _record_error(
            channel,
            f"Checking whether Whapi created the channel failed ({exc}); checking again at {retry_at:%H:%M:%S} UTC.",
            "create",
            reconcile_attempts=attempts,
        )
        jobs.schedule_once(f"reconcile-{channel.pk}", "reconcile_channel", retry_at, channel.pk)
        return
    mine = [remote for remote in remote_channels if channel.creation_marker in (remote.name or "")]
    if mine:
        channel_adopt(channel, mine[0], detail="found in Whapi after a lost answer")
        return
    _requeue_or_fail(channel, "Whapi did not create the channel")


def recover_stale_creating() -> None:
    """Channels left CREATING by a worker that died mid-task are reconciled, not created again."""
    cutoff = timezone.now() - STALE_CREATING
    for channel in Channel.objects.filter(state=State.CREATING, state_changed_at__lt=cutoff, whapi_id__isnull=True):
        # Claim it so two pumps do not reconcile the same channel at once.
        if Channel.objects.filter(
            pk=channel.pk, state=State.CREATING, state_changed_at=channel.state_changed_at
        ).update(state_changed_at=timezone.now()):
            channel.refresh_from_db()
            channel_reconcile(channel)


def _init_until(remote: WhapiChannel, now: datetime) -> datetime:
    # Whapi's creationTS is the reference when our clocks agree; otherwise count from now.
    created = remote.creation_ts if remote.creation_ts and abs(remote.creation_ts - now) < timedelta(minutes=5) else now
    return created + timedelta(seconds=settings.WHAPI_INIT_DELAY)


def mirror_fields(remote: WhapiChannel) -> dict:
    """The Channel fields that mirror a Whapi channel object (everything but id and token)."""
    return {
        "whapi_name": remote.name or "",
        "whapi_project_id": remote.project_id or "",
        "api_url": remote.api_url or "",
        "server": remote.server,
        "mode": remote.mode or "",
        "whapi_status": remote.status or "",
        "stopped": bool(remote.stopped),
        "whapi_created_at": remote.creation_ts,
        "active_till": remote.active_till,
        "trial_till": remote.trial,
    }


def channel_adopt(channel: Channel, remote: WhapiChannel, *, detail: str) -> None:
    """Store the Whapi channel created for `channel` and schedule its configuration after init."""
    now = timezone.now()
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        if locked.whapi_id:
            return  # adopted already (a redelivered task)
        if locked.state == State.DELETED:
            _discard_unwanted(locked, remote)
            return
        for name, value in mirror_fields(remote).items():
            setattr(locked, name, value)
        locked.whapi_id = remote.id
        locked.token = remote.token
        locked.init_until = _init_until(remote, now)
        locked.last_error, locked.error_source, locked.reconcile_attempts = "", "", 0
        locked.save()
        set_state(locked, State.INITIALIZING, source=Source.SYSTEM, detail=detail)
        jobs.schedule_once(f"configure-{locked.pk}", "configure_channel", locked.init_until, locked.pk)
    channel.refresh_from_db()


def _discard_unwanted(channel: Channel, remote: WhapiChannel) -> None:
    """Whapi made a channel for a request deleted meanwhile: delete it there too, so it costs nothing."""
    Channel.objects.filter(pk=channel.pk).update(whapi_id=remote.id, **mirror_fields(remote))
    try:
        partner_client().delete_channel(remote.id)
    except WhapiError as exc:
        _record_error(channel, f"Created in Whapi after it was deleted here; deleting it there failed: {exc}", "create")
        return
    ChannelEvent.objects.create(
        channel=channel,
        from_state=State.DELETED,
        to_state=State.DELETED,
        source=Source.SYSTEM,
        detail=f"Whapi created {remote.id} after the request was deleted; deleted it in Whapi",
    )


# ------------------------------------------------------------------------------------------------
# Configuring webhooks after init
# ------------------------------------------------------------------------------------------------
def desired_settings(channel: Channel) -> dict:
    """The complete settings we want on the channel (Whapi replaces the whole webhooks list on PATCH)."""
    webhooks = [
        {
            "url": webhook_url(),
            "mode": "body",
            "events": OUR_EVENTS,
            "headers": {SECRET_HEADER: channel.webhook_secret},
        }
    ]
    if channel.customer_webhook_url:
        webhooks.append(
            {
                "url": channel.customer_webhook_url,
                "mode": "body",
                "events": channel.customer_webhook_events or DEFAULT_CUSTOMER_EVENTS,
            }
        )
    return {
        "webhooks": webhooks,
        "callback_persist": True,
        "callback_backoff_delay_ms": CALLBACK_BACKOFF_MS,
        "max_callback_backoff_delay_ms": MAX_CALLBACK_BACKOFF_MS,
    }


def settings_mismatches(desired: dict, actual: dict) -> list[str]:
    """What differs between the settings we asked for and what Whapi holds; [] when they agree."""
    problems = []
    for key in ("callback_persist", "callback_backoff_delay_ms", "max_callback_backoff_delay_ms"):
        if actual.get(key) != desired[key]:
            problems.append(f"{key} is {actual.get(key)!r}, expected {desired[key]!r}")
    actual_hooks = [hook for hook in actual.get("webhooks") or [] if isinstance(hook, dict)]
    by_url = {hook.get("url"): hook for hook in actual_hooks}
    for hook in desired["webhooks"]:
        found = by_url.get(hook["url"])
        if found is None:
            problems.append(f"webhook {hook['url']} is missing")
            continue
        if (found.get("mode") or "body") != hook["mode"]:
            problems.append(f"webhook {hook['url']} has mode {found.get('mode')!r}")
        have = {(e.get("type"), e.get("method")) for e in found.get("events") or [] if isinstance(e, dict)}
        missing = {(e["type"], e["method"]) for e in hook["events"]} - have
        if missing:
            problems.append(f"webhook {hook['url']} lacks events {sorted(f'{t}.{m}' for t, m in missing)}")
        headers = found.get("headers") or {}
        for name, value in hook.get("headers", {}).items():
            if headers.get(name) != value:
                problems.append(f"webhook {hook['url']} has a wrong {name} header")  # never show the value
    extra = set(by_url) - {hook["url"] for hook in desired["webhooks"]}
    if extra:
        problems.append(f"unexpected webhooks {sorted(str(url) for url in extra)}")
    return problems


def _masked_settings(actual: dict) -> dict:
    """A copy of read-back settings safe to store and show: header values hidden."""
    copy = dict(actual)
    copy["webhooks"] = [
        {**hook, "headers": dict.fromkeys(hook.get("headers") or {}, "••••")} if isinstance(hook, dict) else hook
        for hook in actual.get("webhooks") or []
    ]
    return copy


def channel_configure(channel_id: int, *, source: str = Source.SYSTEM) -> bool:
    """Apply the desired settings with `PATCH /settings`, read them back and verify; True when verified.

    Does nothing before `init_until`. Failures are retried with backoff (bounded) and the reason is
    left on the channel; a channel that cannot be configured ends in ERROR.
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None or not channel.whapi_id or channel.state in (State.QUEUED, State.CREATING, State.DELETED):
        return False
    now = timezone.now()
    if channel.init_until and now < channel.init_until:
        jobs.schedule_once(f"configure-{channel.pk}", "configure_channel", channel.init_until, channel.pk)
        return False
    if channel.state == State.INITIALIZING:
        set_state(channel, State.CONFIGURING, source=source, detail="init delay over")
    desired = desired_settings(channel)
    gate = gate_client(channel.api_url, channel.token)
    try:
        gate.patch_settings(desired)
        actual = gate.get_settings()
    except WhapiError as exc:
        _configure_failed(channel, f"Setting the webhooks failed: {exc}", permanent=exc.status in (401, 403))
        return False
    problems = settings_mismatches(desired, actual)
    if problems:
        _configure_failed(channel, "Whapi did not keep the webhook settings: " + "; ".join(problems))
        return False
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        webhooks_applied_at=now,
        webhooks_verified_at=now,
        webhooks_readback=_masked_settings(actual),
        configure_attempts=0,
        next_configure_at=None,
        **({"last_error": "", "error_source": ""} if channel.error_source == "configure" else {}),
    )
    channel.refresh_from_db()
    if channel.state in (State.CONFIGURING, State.ERROR):
        set_state(channel, State.WAITING_SCAN, source=source, detail="webhooks set and verified")
    channel_check_health(channel.pk, source=Source.SYSTEM)
    return True


def _configure_failed(channel: Channel, reason: str, *, permanent: bool = False) -> None:
    attempts = channel.configure_attempts + 1
    if permanent or attempts >= MAX_CONFIGURE_ATTEMPTS:
        _give_up(channel, f"{reason} (gave up after {attempts} attempts)", "configure", configure_attempts=attempts)
        return
    retry_at = timezone.now() + retry_delay(attempts)
    _record_error(
        channel,
        f"{reason}; trying again at {retry_at:%H:%M:%S} UTC.",
        "configure",
        configure_attempts=attempts,
        next_configure_at=retry_at,
    )
    jobs.schedule_once(f"configure-{channel.pk}", "configure_channel", retry_at, channel.pk)


def channel_verify_settings(channel_id: int) -> bool:
    """Re-read a live channel's settings and re-apply them when someone changed them; True when they were fine."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None or not channel.whapi_id or channel.state in (*PRE_CONFIGURED, State.DELETED):
        return False
    try:
        actual = gate_client(channel.api_url, channel.token).get_settings()
    except WhapiError as exc:
        _record_error(channel, f"Reading the webhook settings failed: {exc}", "configure")
        return False
    problems = settings_mismatches(desired_settings(channel), actual)
    if not problems:
        Channel.objects.filter(pk=channel.pk).update(webhooks_verified_at=timezone.now())
        return True
    ChannelEvent.objects.create(
        channel=channel,
        from_state=channel.state,
        to_state=channel.state,
        source=Source.SYSTEM,
        detail="webhook settings drifted, re-applying: " + "; ".join(problems),
    )
    channel_configure(channel.pk)
    return False


def settings_drift_check(*, limit: int = 200) -> int:
    """Periodic: re-verify live channels whose settings were last verified long ago."""
    cutoff = timezone.now() - SETTINGS_RECHECK
    ids = list(
        Channel.objects.filter(state__in=(State.WAITING_SCAN, State.CONNECTED, State.DISCONNECTED))
        .filter(Q(webhooks_verified_at__lt=cutoff) | Q(webhooks_verified_at__isnull=True))
        .order_by("webhooks_verified_at")
        .values_list("pk", flat=True)[:limit]
    )
    for channel_id in ids:
        channel_verify_settings(channel_id)
    return len(ids)


# ------------------------------------------------------------------------------------------------
# Health: a status you can trust
# ------------------------------------------------------------------------------------------------
def channel_check_health(channel_id: int, *, source: str = Source.POLL) -> str | None:
    """Ask the channel's gate for `/health` and apply it; returns the ledger-style outcome or None.

    When Whapi cannot be reached the status is marked stale (we keep showing the last confirmed one).
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None or not channel.whapi_id or channel.state in (State.QUEUED, State.CREATING, State.DELETED):
        return None
    if channel.init_until and timezone.now() < channel.init_until:
        return None
    try:
        health = gate_client(channel.api_url, channel.token).health(wakeup=False)
    except WhapiError as exc:
        Channel.objects.filter(pk=channel.pk).update(status_stale=True)
        if channel.error_source in ("", "health", "action"):
            # A creation or configuration failure says more about the channel: keep that reason.
            _record_error(channel, f"Whapi health check failed: {exc}", "health")
        return None
    return apply_health(channel.pk, health, source=source)


def health_poll(*, limit: int = 100) -> int:
    """Periodic: check channels mid-provisioning (past init) and channels quiet for too long."""
    now = timezone.now()
    quiet = now - QUIET_TOO_LONG
    due = (
        Channel.objects.exclude(state__in=(State.QUEUED, State.CREATING, State.DELETED))
        .filter(whapi_id__isnull=False)
        .filter(Q(init_until__isnull=True) | Q(init_until__lte=now))
        .filter(
            Q(state__in=(State.INITIALIZING, State.CONFIGURING))
            | Q(last_confirmed_at__isnull=True)
            | Q(last_confirmed_at__lt=quiet)
        )
        .order_by("last_confirmed_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    for channel_id in ids:
        channel_check_health(channel_id, source=Source.POLL)
    return len(ids)


# ------------------------------------------------------------------------------------------------
# Mirroring Whapi
# ------------------------------------------------------------------------------------------------
def projects_sync() -> dict[str, int]:
    """Mirror every Whapi project (all pages of `GET /projects`); returns counts created/updated."""
    counts = {"created": 0, "updated": 0}
    for remote in partner_client().list_projects():
        _, created = project_mirror(remote)
        counts["created" if created else "updated"] += 1
    return counts


def project_mirror(remote: WhapiProject, **fields) -> tuple[Project, bool]:
    """Create or update the mirror of a Whapi project (extra `fields`, e.g. customer, are set too)."""
    return Project.objects.update_or_create(
        whapi_id=remote.id,
        defaults={
            "name": remote.name or remote.id,
            "whapi_created_at": remote.creation_ts,
            "is_default": remote.is_default,
            "last_synced_at": timezone.now(),
            **fields,
        },
    )


def channels_sync() -> dict[str, int]:
    """Mirror every Whapi channel: update known ones, adopt ours whose answer was lost, import the
    ones made elsewhere (unassigned, webhooks untouched), and mark ours that vanished from Whapi."""
    counts = {"updated": 0, "adopted": 0, "imported": 0, "gone": 0}
    remote_channels = partner_client().list_channels()
    projects = {project.whapi_id: project for project in Project.objects.all()}
    waiting = {c.creation_marker: c for c in Channel.objects.filter(whapi_id__isnull=True, state=State.CREATING)}
    seen = set()
    for remote in remote_channels:
        seen.add(remote.id)
        local = Channel.objects.filter(whapi_id=remote.id).first()
        if local:
            Channel.objects.filter(pk=local.pk).update(**mirror_fields(remote))
            counts["updated"] += 1
            continue
        marker = next((m for m in waiting if m in (remote.name or "")), None)
        if marker:
            channel_adopt(waiting.pop(marker), remote, detail="found in Whapi by the sync")
            counts["adopted"] += 1
            continue
        with transaction.atomic():
            imported = Channel.objects.create(
                name=remote.name or remote.id,
                project=projects.get(remote.project_id),
                whapi_id=remote.id,
                token=remote.token,
                state=State.STOPPED if remote.stopped else State.WAITING_SCAN,
                last_error="Imported from Whapi: its webhooks are not managed by the portal until configured.",
                error_source="configure",
                **mirror_fields(remote),
            )
            set_state(imported, imported.state, source=Source.SYSTEM, detail="imported from Whapi", force=True)
        counts["imported"] += 1
    missing = Channel.objects.filter(whapi_id__isnull=False).exclude(state=State.DELETED).exclude(whapi_id__in=seen)
    for channel in missing:
        # Not in the list is no proof (adopted after the list was read, or shifted between pages while
        # Whapi deleted another channel): only Whapi's 404 for this very channel is.
        try:
            remote = partner_client().get_channel(channel.whapi_id)
        except WhapiError as exc:
            if exc.status == 404:
                set_state(channel, State.DELETED, source=Source.SYSTEM, detail="no longer exists in Whapi")
                counts["gone"] += 1
            continue
        Channel.objects.filter(pk=channel.pk).update(**mirror_fields(remote))
        counts["updated"] += 1
    return counts
