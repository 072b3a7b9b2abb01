"""`manage.py worker` stops within 10 s on SIGTERM or SIGINT, sent to it alone or to its whole
process group (what systemd sends by default), and leaves no process behind.

A group signal reaches django-q2's sentinel too, which dies at once; landing while it holds the
lock of the event the parent sets to stop it, that used to hang the parent next to a zombie. The
signals here land at several moments of the start-up, where that happened.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_worker_kill import BASE_DIR, _database_url

pytestmark = pytest.mark.django_db(transaction=True)

STOP_WITHIN = 10.0


def start_worker(log: Path) -> subprocess.Popen:
    # WORKER_NICE=0: the suite's other processes share the CPU (the priority: test_worker_priority.py).
    env = dict(os.environ, DATABASE_URL=_database_url(), Q_WORKERS="1", Q_SCHEDULER_SECONDS="0.5", WORKER_NICE="0")
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker"],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as under a service manager
    )


def group_members(pgid: int) -> list[str]:
    """The processes still in the group (a zombie included), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(f"{entry.name}:{fields[0]}")
    return found


def wait_until_running(log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "running." in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    pytest.fail(f"the worker did not start:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.mark.parametrize(
    ("to_group", "signum", "after"),
    [
        (True, signal.SIGTERM, 0.0),
        (True, signal.SIGTERM, 0.15),
        (True, signal.SIGTERM, 0.3),
        (True, signal.SIGTERM, 0.6),
        (True, signal.SIGTERM, 1.0),
        (True, signal.SIGTERM, 1.5),
        (True, signal.SIGINT, 0.5),
        (False, signal.SIGTERM, 0.5),
        (False, signal.SIGINT, 0.5),
    ],
)
def test_the_worker_stops_cleanly_within_10_seconds(tmp_path, to_group, signum, after):
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        wait_until_running(log)
        time.sleep(after)
        started = time.monotonic()
        if to_group:
            os.killpg(worker.pid, signum)
        else:
            os.kill(worker.pid, signum)
        worker.wait(STOP_WITHIN)
        assert time.monotonic() - started < STOP_WITHIN
        deadline = time.monotonic() + 2
        while group_members(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # the cluster's own children finish a moment after the parent
        assert group_members(worker.pid) == []
    finally:
        if worker.poll() is None or group_members(worker.pid):
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)
