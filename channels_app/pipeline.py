"""The provisioning pipeline, up to a channel that exists in Whapi: request → create within the
budget (never twice) → reconcile a create whose answer was lost, or adopt what Whapi made → schedule
the configuration after the init delay (configure.py takes over from there).

Every function here is safe to run twice: state lives in model columns and is claimed with locked
reads or conditional updates, so a redelivered task finds the work done and does nothing.
Whapi failures are stored on the channel (`last_error`, `error_source`) for staff, never swallowed.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from channels_app import background, budget
from channels_app.models import Channel, ChannelEvent, CreateAttempt, Customer, Project
from channels_app.status import channel_give_up, channel_record_error, channel_retry_later, channel_update
from channels_app.whapi import WhapiChannel, WhapiError, partner_client

logger = logging.getLogger(__name__)

State = Channel.State
CREATE = Channel.ErrorSource.CREATE

MAX_CREATE_ATTEMPTS = 5
MAX_RECONCILE_ATTEMPTS = 6
# A channel still CREATING this long after its claim lost its worker (the task timeout is shorter).
STALE_CREATING = timedelta(seconds=300)
# How long one pump run keeps claiming channels (django-q2 kills a task after 120 s).
PUMP_SECONDS = 60
# The one-off schedules that start the pump again: at the budget's next free slot or after a
# back-off (WAKEUP); when a pump's lease ends, in case that pump died (LEASE_ENDED, dropped by a pump
# that lets go of its lease).
WAKEUP = "create-queue-wakeup"
LEASE_ENDED = "create-queue-lease-ended"
AFTER_LEASE = timedelta(seconds=1)
MAX_NAME_LENGTH = 150


class RequestRefused(Exception):
    """A channel request the portal refuses, with a message fit to show the person who made it.

    `reason`: "name" (empty or too long), "project" (not linked to Whapi) or "quota" (used up), for
    callers that answer each differently (the API: a field error, a conflict).
    """

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


# ------------------------------------------------------------------------------------------------
# Requesting a channel
# ------------------------------------------------------------------------------------------------
def channel_queue(
    *,
    project: Project,
    name: str,
    requested_by=None,
    request_key: str | None = None,
    source: str = ChannelEvent.Source.SYSTEM,
    enforce_quota: bool = True,
) -> tuple[Channel, bool]:
    """Record a request for a new channel in `project` and queue it for creation; returns at once
    with (the channel, whether this call recorded it).

    The same `request_key` (a double-submitted form, a retried command) returns the channel of the
    first request and False. Raises RequestRefused when the name is empty or too long, the project is
    not linked to Whapi, or the customer's quota is used up (then nothing is recorded or sent).
    """
    name = (name or "").strip()
    if not name:
        raise RequestRefused(_("Give the channel a name."), reason="name")
    if len(name) > MAX_NAME_LENGTH:
        raise RequestRefused(
            _("The channel name can be at most %(count)d characters long.") % {"count": MAX_NAME_LENGTH},
            reason="name",
        )
    if not project.whapi_id:
        raise RequestRefused(_("This project is not linked to a Whapi project."), reason="project")
    try:
        with transaction.atomic():
            # Locking the customer makes two requests at once count each other, and lets the second
            # submission of a form find the first one's channel (below) instead of a full quota.
            customer = Customer.objects.select_for_update().get(pk=project.customer_id) if project.customer_id else None
            existing = Channel.objects.filter(request_key=request_key).first() if request_key else None
            if existing is not None:
                return existing, False
            if enforce_quota and customer is not None:
                in_use = Channel.objects.in_use().filter(project__customer=customer).count()
                if in_use >= customer.channel_quota:
                    message = ngettext(
                        "%(name)s already has %(used)d of its %(quota)d channel: "
                        "a higher quota is needed to add another.",
                        "%(name)s already has %(used)d of its %(quota)d channels: "
                        "a higher quota is needed to add another.",
                        customer.channel_quota,
                    )
                    raise RequestRefused(
                        message % {"name": customer.name, "used": in_use, "quota": customer.channel_quota},
                        reason="quota",
                    )
            channel = Channel.objects.create(
                project=project,
                name=name,
                requested_by=requested_by,
                request_key=request_key or None,
                whapi_project_id=project.whapi_id,
            )
            ChannelEvent.objects.create(channel=channel, to_state=State.QUEUED, source=source, detail="requested")
            background.enqueue_on_commit("create_queue_pump")
    except IntegrityError:
        # The request key is unique: this request was made before (or is being made right now by a
        # second submission of the same form). The first one's channel stands.
        existing = Channel.objects.filter(request_key=request_key).first() if request_key else None
        if existing is None:
            raise
        return existing, False
    return channel, True


# ------------------------------------------------------------------------------------------------
# Creating channels within the budget
# ------------------------------------------------------------------------------------------------
def create_queue_pump(*, limit: int = 50) -> int:
    """Create queued channels, oldest first, as far as the budget allows; returns how many were tried.

    One pump at a time holds the lease, so creations reach Whapi in queue order; a pump that finds
    the lease taken returns at once (the holder picks its channels up). A one-off schedule wakes the
    pump at the budget's next free slot when it is spent, and when the lease ends: a pump that died
    mid-creation holds the queue up for PUMP_LEASE and a scheduler tick, not longer.
    """
    recover_stale_creating()
    tried = 0
    # Stop claiming well before django-q2's task timeout: each creation may take WHAPI_TIMEOUT and more.
    deadline = time.monotonic() + PUMP_SECONDS
    for _round in range(3):
        with budget.pump_lease() as owner:
            if owner is None:
                # Another pump holds the lease. Should it have died, look again when its lease ends.
                lease_until = budget.lease_end()
                if lease_until:
                    background.schedule_once(LEASE_ENDED, "create_queue_pump", lease_until + AFTER_LEASE)
                break
            while tried < limit and time.monotonic() < deadline:
                lease_until = budget.renew_lease(owner)
                if lease_until is None:
                    break
                claim = budget.claim_next()
                if claim.channel is None:
                    if claim.retry_at:
                        background.schedule_once(WAKEUP, "create_queue_pump", claim.retry_at)
                    break
                # Should this pump die during the creation, the queue moves on when its lease ends.
                background.schedule_once(LEASE_ENDED, "create_queue_pump", lease_until + AFTER_LEASE)
                channel_create(claim.channel)
                tried += 1
            background.schedule_cancel(LEASE_ENDED)  # letting go of the lease: nobody waits for it
        # A request committed while we were letting go found the lease taken: look once more.
        if not budget.claimable_now():
            break
        if tried >= limit or time.monotonic() >= deadline:
            background.enqueue("create_queue_pump")  # more is ready: carry on in a fresh task
            break
    return tried


def channel_create(channel: Channel) -> None:
    """Send `PUT /channels` for a channel that `budget.claim_next` moved to CREATING.

    Never retried blindly: an unknown outcome is reconciled against Whapi's channel list first.
    """
    marker_name = f"{channel.name} [{channel.creation_marker}]"
    channel_update(channel, {"whapi_name": marker_name})
    if CreateAttempt.objects.filter(channel=channel, outcome="unknown").exists():
        # An earlier attempt's outcome was unknown and its channel was not listed then. Whapi may
        # have finished it since: look once more right before sending another create.
        try:
            remote_channels = partner_client().list_channels(project_id=channel.whapi_project_id)
        except WhapiError as exc:
            _mark_attempt(channel, "not sent")
            _requeue_or_fail(channel, f"Whapi could not be asked whether an earlier attempt created it: {exc}")
            return
        mine = _ours(channel, remote_channels)
        if mine:
            _mark_attempt(channel, "adopted")
            channel_adopt(channel, mine, detail="found in Whapi before trying again")
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
        # Whether a Retry-After comes with it is unknown (docs/whapi.md §1.3); else one whole window.
        until = now + timedelta(seconds=exc.retry_after or settings.WHAPI_CREATE_WINDOW)
        budget.block_until(until, f"Whapi answered 429: {exc.message}")
        _mark_attempt(channel, "429")
        channel_record_error(
            channel, f"Whapi's creation limit was reached; queued again until {until:%H:%M:%S} UTC.", source=CREATE
        )
        channel_update(channel, state=State.QUEUED, detail="Whapi answered 429 Too Many Requests")
        background.schedule_once(WAKEUP, "create_queue_pump", until)
    elif exc.outcome_unknown:
        _mark_attempt(channel, "unknown")
        channel_record_error(
            channel, f"Whapi's answer to the creation was lost ({exc}); checking whether it was created.", source=CREATE
        )
        channel_reconcile(channel)
    elif exc.permanent:
        _mark_attempt(channel, f"refused {exc.status}")
        channel_give_up(channel, f"Whapi refused to create the channel: {exc}", source=CREATE)
    else:
        _mark_attempt(channel, "not sent")
        _requeue_or_fail(channel, f"Whapi could not be reached to create the channel: {exc}")


def _requeue_or_fail(channel: Channel, reason: str) -> None:
    retry_at = channel_retry_later(
        channel,
        reason,
        source=CREATE,
        attempts=channel.create_attempts,
        limit=MAX_CREATE_ATTEMPTS,
        retry_field="next_attempt_at",
    )
    if retry_at is not None:
        channel_update(channel, state=State.QUEUED, detail=reason)
        background.schedule_once(WAKEUP, "create_queue_pump", retry_at)


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
        retry_at = channel_retry_later(
            channel,
            f"Checking whether Whapi created the channel failed ({exc})",
            source=CREATE,
            attempts=attempts,
            limit=MAX_RECONCILE_ATTEMPTS,
            give_up_reason=(
                "Could not confirm with Whapi whether the channel was created; check Whapi's panel for a channel "
                f"named '{channel.whapi_name}' before asking again. Last error: {exc}"
            ),
            reconcile_attempts=attempts,
        )
        if retry_at is not None:
            background.channel_task_schedule("channel_reconcile", channel.pk, retry_at)
        return
    mine = _ours(channel, remote_channels)
    if mine:
        channel_adopt(channel, mine, detail="found in Whapi after a lost answer")
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
    # Whapi asks for ~90 s before a new channel is used (docs/whapi.md §1.3, §4). Its creationTS is the
    # reference when our clocks agree; otherwise count from now.
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
        init_until = _init_until(remote, now)
        fields = {
            **mirror_fields(remote),
            "whapi_id": remote.id,
            "token": remote.token,
            "init_until": init_until,
            "health_check_due_at": init_until,  # its health is asked once the init delay is over
            "last_error": "",
            "error_source": "",
            "reconcile_attempts": 0,
        }
        channel_update(locked, fields, state=State.INITIALIZING, detail=detail)
        background.channel_task_schedule("channel_configure", locked.pk, locked.init_until)
    channel.refresh_from_db()


def _discard_unwanted(channel: Channel, remote: WhapiChannel) -> None:
    """Whapi made a channel for a request deleted meanwhile: delete it there too, so it costs nothing."""
    channel_update(channel, {"whapi_id": remote.id, **mirror_fields(remote)})
    try:
        partner_client().delete_channel(remote.id)
    except WhapiError as exc:
        channel_record_error(
            channel, f"Created in Whapi after it was deleted here; deleting it there failed: {exc}", source=CREATE
        )
        return
    ChannelEvent.objects.create(
        channel=channel,
        from_state=State.DELETED,
        to_state=State.DELETED,
        source=ChannelEvent.Source.SYSTEM,
        detail=f"Whapi created {remote.id} after the request was deleted; deleted it in Whapi",
    )


def _ours(channel: Channel, remote_channels: list[WhapiChannel]) -> WhapiChannel | None:
    """The Whapi channel made for `channel`: the one whose name carries its creation marker."""
    return next((remote for remote in remote_channels if channel.creation_marker in (remote.name or "")), None)
