"""Bulk jobs: one staff action run in the background over many channels, with an outcome per
channel. Each channel's action is the audited one in `channels_app.actions`."""

import logging
import time
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from channels_app import actions, background
from channels_app.models import AuditLog, BulkJob, BulkJobItem, Channel

logger = logging.getLogger(__name__)

Source = AuditLog.Source


# ------------------------------------------------------------------------------------------------
def _bulk_call(action: str, params: dict) -> Callable[[Channel, object], None]:
    def extend(channel, actor):
        actions.channel_extend(
            channel, days=int(params["days"]), comment=params["comment"], actor=actor, source=Source.STAFF
        )

    def mode(channel, actor):
        actions.channel_change_mode(channel, mode=params["mode"], actor=actor, source=Source.STAFF)

    def refresh(channel, actor):
        actions.channel_refresh(channel, actor=actor, source=Source.STAFF)

    simple = {
        "configure": actions.channel_reconfigure,
        "rotate_secret": actions.channel_rotate_secret,
        "restart": actions.channel_restart,
        "logout": actions.channel_logout,
        "delete": actions.channel_delete,
    }
    if action in simple:
        return lambda channel, actor: simple[action](channel, actor=actor, source=Source.STAFF)
    return {"extend": extend, "mode": mode, "refresh": refresh}[action]


# How long one task runs a bulk job before handing over to a fresh one (django-q2 stops a task at 120 s).
BULK_SECONDS = 60
# Actions that must not run twice when Whapi's answer was lost (an extension would be paid twice);
# the others leave the same state when repeated.
NOT_REPEATABLE = {"extend"}
BULK_ACTIONS = ("configure", "rotate_secret", "refresh", "restart", "extend", "mode", "logout", "delete")


def channel_run(action: str, channel: Channel, *, params: dict | None = None, actor) -> None:
    """Run one of BULK_ACTIONS on one channel as staff, as a bulk job does for each of its channels.

    Raises actions.ActionError (an unknown action, bad params, or Whapi's refusal naming the channel).
    """
    if action not in BULK_ACTIONS:
        raise actions.ActionError(f"Unknown action {action!r}.")
    params = params or {}
    missing = [key for key in {"extend": ("days", "comment"), "mode": ("mode",)}.get(action, ()) if key not in params]
    if missing:
        raise actions.ActionError(f"The action {action!r} needs {', '.join(missing)}.")
    _bulk_call(action, params)(channel, actor)


def bulk_job_start(*, action: str, channel_ids: list[int], params: dict | None = None, actor, retry_of=None) -> BulkJob:
    """Record a bulk job over `channel_ids` and enqueue it; returns at once."""
    if action not in BULK_ACTIONS:
        raise actions.ActionError(f"Unknown bulk action {action!r}.")
    if not channel_ids:
        raise actions.ActionError("Select at least one channel.")
    with transaction.atomic():
        job = BulkJob.objects.create(action=action, params=params or {}, created_by=actor, retry_of=retry_of)
        BulkJobItem.objects.bulk_create([BulkJobItem(job=job, channel_id=pk) for pk in dict.fromkeys(channel_ids)])
        background.enqueue_on_commit("bulk_job_run", job.pk)
    return job


def bulk_job_retry_failed(job: BulkJob, *, actor) -> BulkJob:
    failed = list(job.items.filter(status=BulkJobItem.Status.FAILED).values_list("channel_id", flat=True))
    if not failed:
        raise actions.ActionError("Nothing failed in that job.")
    return bulk_job_start(action=job.action, channel_ids=failed, params=job.params, actor=actor, retry_of=job)


def bulk_job_run(job_id: int) -> None:
    """Run the job's pending items; one channel's failure never stops the others.

    Each item is claimed before its Whapi call, so a redelivered task never repeats one. An item a
    stopped worker left running, or an extension whose Whapi answer was lost, ends as "outcome
    unknown" and is not retried with the failed ones (an extension must not be paid twice). A run hands over to a
    fresh task before django-q2's task timeout.
    """
    job = BulkJob.objects.filter(pk=job_id).exclude(status=BulkJob.Status.DONE).first()
    if job is None:
        return
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.RUNNING)
    job.items.filter(status=BulkJobItem.Status.RUNNING).update(
        status=BulkJobItem.Status.UNKNOWN,
        message="The worker stopped while this ran: check the channel before trying again.",
        finished_at=timezone.now(),
    )
    call = _bulk_call(job.action, job.params)
    deadline = time.monotonic() + BULK_SECONDS
    for item in job.items.filter(status=BulkJobItem.Status.PENDING).select_related("channel"):
        if time.monotonic() > deadline:
            background.enqueue("bulk_job_run", job.pk)
            return
        if not BulkJobItem.objects.filter(pk=item.pk, status=BulkJobItem.Status.PENDING).update(
            status=BulkJobItem.Status.RUNNING
        ):
            continue
        try:
            call(item.channel, job.created_by)
        except actions.ActionError as exc:
            unknown = exc.outcome_unknown and job.action in NOT_REPEATABLE
            status = BulkJobItem.Status.UNKNOWN if unknown else BulkJobItem.Status.FAILED
            message = str(exc)
        except Exception as exc:  # one broken channel must not stop the job
            logger.exception("bulk job %s, channel %s", job.pk, item.channel_id)
            status, message = BulkJobItem.Status.FAILED, f"Unexpected error: {type(exc).__name__}"
        else:
            status, message = BulkJobItem.Status.OK, ""
        BulkJobItem.objects.filter(pk=item.pk).update(status=status, message=message, finished_at=timezone.now())
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.DONE, finished_at=timezone.now())
