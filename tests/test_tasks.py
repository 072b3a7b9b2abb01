"""The django-q2 entry points: every task the code enqueues or schedules exists, and tasks queued
under their earlier names still run after an upgrade."""

import re
from pathlib import Path

from channels_app import background, tasks

APP = Path(tasks.__file__).parent
# enqueue("x"), enqueue_on_commit("x"), channel_task_schedule("x", …), follow_up("x", …),
# schedule_once(name, "x", …), and follow-ups named in a Change (follow_ups=("x", "y")).
CALLS = re.compile(r'(?:enqueue|enqueue_on_commit|channel_task_schedule|follow_up)\(\s*"(\w+)"')
SCHEDULED = re.compile(r'schedule_once\(\s*[^,]+,\s*"(\w+)"')
FOLLOW_UPS = re.compile(r"follow_ups=\(([^)]*)\)")


def task_names_in_the_code() -> set[str]:
    names = set()
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        names |= set(CALLS.findall(text)) | set(SCHEDULED.findall(text))
        for group in FOLLOW_UPS.findall(text):
            names |= set(re.findall(r'"(\w+)"', group))
    return names | {task for task, _minutes in background.PERIODIC.values()}


def test_every_task_the_code_names_exists():
    names = task_names_in_the_code()
    assert {"create_queue_pump", "channel_configure", "channel_health_check", "bulk_job_run"} <= names
    missing = sorted(name for name in names if not callable(getattr(tasks, name, None)))
    assert missing == []


def test_tasks_queued_under_their_earlier_names_still_run():
    assert tasks.run_bulk_job is tasks.bulk_job_run
    assert tasks.pump_create_queue is tasks.create_queue_pump
    assert tasks.check_channel_health is tasks.channel_health_check
