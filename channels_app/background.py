"""Background work, the django-q2 seam: how the portal enqueues tasks and sets schedules.

Tasks are named by their function in `channels_app.tasks` and get ids only, never a token or secret.
Everything is idempotent: the same named one-off schedule is moved, not duplicated.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

TASKS_MODULE = "channels_app.tasks"

# Periodic schedules: name → (task, minutes between runs). Created by `manage.py setup_schedules`.
PERIODIC = {
    "create-queue": ("create_queue_pump", 1),
    "checks": ("checks_sweep", 1),  # health checks and settings read-backs that are due (checks.py)
    "callbacks": ("callbacks_apply", 1),  # stored Whapi callbacks applied to their channels (webhooks.py)
    "alerts": ("alerts_sweep", 1),  # disconnects told once they last, notifications sent (alerts/)
    "events": ("events_send", 1),  # events sent to customers' endpoints, signed, with retries (events/)
    "retention": ("retention_prune", 60),
}


def enqueue(task: str, *args: int) -> None:
    """Run `channels_app.tasks.<task>(*args)` on the worker."""
    async_task(f"{TASKS_MODULE}.{task}", *args, task_name=f"{task}{''.join(f'-{arg}' for arg in args)}")


def enqueue_on_commit(task: str, *args: int) -> None:
    """Enqueue once the current transaction commits, so the worker sees what it was written for."""
    transaction.on_commit(lambda: enqueue(task, *args))


def schedule_once(name: str, task: str, when: datetime, *args: int) -> None:
    """Run the task once at `when`; an existing schedule of that name is moved earlier, never duplicated.

    django-q2's scheduler looks for due schedules about every 30 seconds.
    """
    func = f"{TASKS_MODULE}.{task}"
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(name=name).first()
        if schedule is None:
            Schedule.objects.create(
                name=name,
                func=func,
                args=repr(tuple(args)) if args else None,
                schedule_type=Schedule.ONCE,
                repeats=-1,  # a ONCE schedule with negative repeats deletes itself after running
                next_run=when,
            )
        elif schedule.repeats == 0 or schedule.next_run > when or schedule.next_run < timezone.now():
            Schedule.objects.filter(pk=schedule.pk).update(next_run=when, repeats=-1, func=func)


def channel_task_schedule(task: str, channel_id: int, when: datetime) -> None:
    """Run `task(channel_id)` once at `when`: the one-off schedule named `<task>-<channel id>`."""
    schedule_once(f"{task}-{channel_id}", task, when, channel_id)


def schedule_cancel(*names: str) -> None:
    """Drop the pending one-off schedules of these names."""
    Schedule.objects.filter(name__in=names).delete()


def channel_tasks_cancel(channel_id: int, *tasks: str) -> None:
    """Drop the channel's pending one-off schedules of `tasks` (e.g. once it is deleted)."""
    schedule_cancel(*(f"{task}-{channel_id}" for task in tasks))


def setup_periodic_schedules() -> list[str]:
    """Create or update the periodic schedules; returns their names. Safe to run on every deploy."""
    for name, (task, minutes) in PERIODIC.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": f"{TASKS_MODULE}.{task}",
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
    return list(PERIODIC)
