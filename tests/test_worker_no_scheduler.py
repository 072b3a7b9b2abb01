"""`manage.py worker --no-scheduler`: the cluster runs tasks but creates none from due schedules,
neither in the worker's own tick nor in django-q2's sentinel (which reads `Conf.SCHEDULER`)."""

import pytest
from django.core.management import call_command
from django_q.conf import Conf

from channels_app.management.commands import worker


class FakeSentinel:
    """Alive for `rounds` looks of the worker's main loop, then gone (the loop ends)."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    def is_alive(self) -> bool:
        self.rounds -= 1
        return self.rounds > 0

    def join(self, timeout=None) -> None:
        pass


class FakeCluster:
    def __init__(self) -> None:
        self.sentinel = FakeSentinel(rounds=3)
        self.broker = object()
        self.stop_event = None
        self.scheduler_enabled_at_start = None

    def start(self) -> None:
        self.scheduler_enabled_at_start = Conf.SCHEDULER  # what the forked sentinel would inherit
        started.append(self)


started: list[FakeCluster] = []


@pytest.fixture
def ticks(monkeypatch):
    monkeypatch.setattr(Conf, "SCHEDULER", True)  # restored afterwards: the flag changes it for the process
    monkeypatch.setattr(worker, "Cluster", FakeCluster)
    monkeypatch.setattr(worker, "POLL_SECONDS", 0)
    monkeypatch.setattr(worker.signal, "signal", lambda *args: None)  # keep pytest's own handlers
    monkeypatch.setattr(worker, "close_old_connections", lambda: None)  # no database in these tests
    monkeypatch.setattr(worker, "lower_priority", lambda niceness: None)  # not this test process's
    calls = []
    monkeypatch.setattr(worker, "scheduler", lambda broker: calls.append(broker))
    started.clear()
    return calls


def test_it_ticks_the_scheduler_by_default(ticks):
    call_command("worker")
    assert ticks == [started[0].broker]
    assert started[0].scheduler_enabled_at_start is True


def test_no_scheduler_turns_off_both_ticks(ticks):
    call_command("worker", "--no-scheduler")
    assert ticks == []
    assert started[0].scheduler_enabled_at_start is False
