"""Two worker clusters on one PostgreSQL database, as on two machines: every task runs once, every
schedule once per due time, and the create budget holds across both.

Two real `manage.py worker` processes run against the test database, each in its own process group
(a stand-in for its own machine); Whapi is the sandbox over real sockets, counting creations. Tasks
and schedules record each run as an AuditLog row (action `multi-machine`, the run's label, the
process group of the cluster that ran it), written by `record_run` in the cluster's worker.
"""

import os
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task, fetch

from channels_app import budget, mirror, pipeline
from channels_app.models import AuditLog, Channel, CreateAttempt, Project
from tests.test_worker_kill import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ACTION = "multi-machine"
TASKS = 200
BUDGET = 3
QUEUED = 8


def record_run(label: str) -> None:
    """A task for the clusters: note that `label` ran, and in which cluster (its process group)."""
    AuditLog.objects.create(source=AuditLog.Source.SYSTEM, action=ACTION, target_id=label, detail=str(os.getpgid(0)))
    time.sleep(0.01)  # long enough that both clusters take a share


def runs(prefix: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=ACTION, target_id__startswith=prefix))


def wait_for(predicate, what: str, clusters: list[WorkerProcess], timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    logs = "\n".join(f"--- worker {i}:\n{cluster.log()}" for i, cluster in enumerate(clusters))
    pytest.fail(f"timed out waiting for {what}\n{logs}")


@pytest.fixture
def clusters(sandbox, tmp_path, monkeypatch):
    """Two worker clusters with a scheduler tick every 0.5 s, a create budget of 3 and the sandbox."""
    if connection.vendor != "postgresql":
        pytest.skip("several worker clusters share one PostgreSQL database; SQLite is single-machine only")
    monkeypatch.setenv("WHAPI_CREATE_BUDGET", str(BUDGET))
    monkeypatch.setenv("WHAPI_INIT_DELAY", "3600")  # created channels wait: nothing but creations reaches Whapi
    started = [WorkerProcess(sandbox, tmp_path / f"worker-{index}.log") for index in range(2)]
    try:
        wait_for(lambda: all("running." in cluster.log() for cluster in started), "both clusters to start", started)
        yield started
    finally:
        for cluster in started:
            cluster.stop()


def queue_drained() -> bool:
    return not OrmQ.objects.exists()


def test_two_clusters_run_each_task_and_schedule_once_and_share_the_create_budget(clusters, sandbox, settings):
    # 1. Each task runs once, though both clusters take tasks from the same queue.
    for index in range(TASKS):
        async_task("tests.test_multi_machine.record_run", f"task-{index:03d}")
    wait_for(lambda: len(runs("task-")) >= TASKS and queue_drained(), f"{TASKS} tasks to run", clusters)
    done = runs("task-")
    assert sorted(run.target_id for run in done) == [f"task-{index:03d}" for index in range(TASKS)]
    assert {run.detail for run in done} == {str(cluster.process.pid) for cluster in clusters}

    # 2. Each schedule runs once per due time, though both clusters' schedulers look every 0.5 s.
    now = timezone.now()
    with transaction.atomic():
        for index in range(4):
            Schedule.objects.create(
                name=f"once-{index}",
                func="tests.test_multi_machine.record_run",
                args=repr(f"once-{index}"),
                schedule_type=Schedule.ONCE,
                next_run=now - timedelta(seconds=1),
            )
        Schedule.objects.create(
            name="every-minute",
            func="tests.test_multi_machine.record_run",
            args=repr("every-minute"),
            schedule_type=Schedule.MINUTES,
            minutes=1,
            next_run=now - timedelta(seconds=1),
        )
    wait_for(lambda: len(runs("once-")) >= 4 and runs("every-minute") and queue_drained(), "the schedules", clusters)
    # Both clusters have ticked since (0.5 s each): a second run would have been queued by now.
    two_ticks_later = time.monotonic() + 2
    wait_for(lambda: time.monotonic() > two_ticks_later and queue_drained(), "two more scheduler ticks", clusters)
    assert sorted(run.target_id for run in runs("once-")) == [f"once-{index}" for index in range(4)]
    assert len(runs("every-minute")) == 1
    assert list(Schedule.objects.values_list("name", flat=True)) == ["every-minute"]
    assert Schedule.objects.get().next_run > timezone.now()

    # 3. The create budget holds: 8 channels queued, pumps running in both clusters, 3 creations.
    settings.WHAPI_PARTNER_URL = sandbox.url
    settings.WHAPI_PARTNER_TOKEN = sandbox.config.partner_token
    settings.WHAPI_CREATE_BUDGET = BUDGET
    mirror.projects_sync()
    project = Project.objects.get(is_default=True)
    channels = [pipeline.channel_queue(project=project, name=f"Line {index}")[0] for index in range(QUEUED)]
    pumps = [async_task("channels_app.tasks.create_queue_pump") for _ in range(6)]
    wait_for(
        lambda: all(fetch(task) is not None for task in pumps) and queue_drained(), "the pumps to finish", clusters
    )
    assert len(sandbox.state.create_times) == BUDGET
    assert CreateAttempt.objects.count() == BUDGET
    states = dict(Channel.objects.filter(pk__in=[c.pk for c in channels]).values_list("pk", "state"))
    created = [channel for channel in channels if states[channel.pk] != Channel.State.QUEUED]
    waiting = [channel for channel in channels if states[channel.pk] == Channel.State.QUEUED]
    assert created == channels[:BUDGET]  # in queue order
    assert len(waiting) == QUEUED - BUDGET
    # The rest wait for the window: none is expected before the first creation's slot frees.
    first_free = CreateAttempt.objects.order_by("at").first().at + budget.window()
    for position, channel in enumerate(waiting, start=1):
        channel.refresh_from_db()
        assert budget.queue_position(channel) == position
        assert budget.queue_eta(position) >= first_free
