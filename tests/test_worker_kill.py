"""A real `manage.py worker` killed (SIGKILL) while its create call is in flight: the channel Whapi made
for it is found and adopted by the next worker, and no second channel is bought.

The worker is a subprocess on the test database; Whapi is the sandbox over real sockets, slowed down
so the kill lands between sending `PUT /channels` and reading the answer. The five minutes after
which a channel left `creating` is reconciled are skipped by moving its timestamp back.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from channels_app import mirror, pipeline
from channels_app.models import Channel, Project

BASE_DIR = Path(__file__).resolve().parent.parent
CREATE_DELAY = 3.0  # seconds the sandbox holds PUT /channels before doing it


def _database_url() -> str:
    """The test database, as a DATABASE_URL the worker process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, sandbox, log_path: Path) -> None:
        env = dict(
            os.environ,
            DATABASE_URL=_database_url(),
            WHAPI_PARTNER_URL=sandbox.url,
            WHAPI_PARTNER_TOKEN=sandbox.config.partner_token,
            Q_WORKERS="1",
            Q_SCHEDULER_SECONDS="0.5",
            # The suite's other processes share the CPU; a lower priority would only slow this one down
            # (the priority itself: test_worker_priority.py).
            WORKER_NICE="0",
        )
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=BASE_DIR,
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes the cluster's children too
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start(sandbox) -> WorkerProcess:
        worker = WorkerProcess(sandbox, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout: float, what: str, worker: WorkerProcess):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.log()}")


def pump() -> None:
    """What the portal enqueues after a request (the test's `enqueued` fixture records instead)."""
    async_task("channels_app.tasks.create_queue_pump")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_the_create_call_leaves_one_channel(sandbox, settings, workers):
    settings.WHAPI_PARTNER_URL = sandbox.url
    settings.WHAPI_PARTNER_TOKEN = sandbox.config.partner_token
    mirror.projects_sync()
    project = Project.objects.get(is_default=True)
    sandbox.faults.add({"kind": "delay", "seconds": CREATE_DELAY, "method": "PUT", "path_regex": "/channels"})
    channel = pipeline.channel_queue(project=project, name="Shop bot")[0]

    first = workers(sandbox)
    pump()
    # The delay fault is spent when the create request arrives: the worker is now waiting for the answer.
    wait_for(lambda: not sandbox.faults.list(), 30, "the worker's PUT /channels", first)
    first.kill()
    channel.refresh_from_db()
    assert (channel.state, channel.whapi_id) == (Channel.State.CREATING, None)

    # Whapi finishes the create it was sent, though nobody reads the answer.
    made = wait_for(
        lambda: [c for c in sandbox.state.channels.values() if channel.creation_marker in c.name],
        CREATE_DELAY + 10,
        "the sandbox to create the channel",
        first,
    )
    assert len(made) == 1

    # Five minutes later (skipped), the next worker reconciles the channel left `creating`.
    Channel.objects.filter(pk=channel.pk).update(state_changed_at=timezone.now() - timedelta(minutes=6))
    second = workers(sandbox)
    pump()
    wait_for(
        lambda: Channel.objects.filter(pk=channel.pk).exclude(state=Channel.State.CREATING).exists(),
        60,
        "the next worker to reconcile the channel",
        second,
    )
    channel.refresh_from_db()
    assert channel.whapi_id == made[0].id
    assert channel.state in (Channel.State.INITIALIZING, Channel.State.CONFIGURING, Channel.State.WAITING_SCAN)
    assert channel.timeline.filter(detail__contains="found in Whapi after a lost answer").exists()
    # One channel bought: the redelivered pump found the first one instead of creating again.
    assert len(sandbox.state.channels) == 1
    assert len(sandbox.state.create_times) == 1
