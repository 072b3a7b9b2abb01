"""A small fleet with one of each thing the operations home and /metrics count, and what each figure
must then say; a test module loads it with `pytest_plugins = ["tests.fleet_fixtures"]`.

`fleet_channel` makes one more channel; `fleet_data` makes the fleet and returns the expected
figures, written out by hand from the rows made here (not computed the way channels_app.fleet does).
"""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from channels_app import background
from channels_app.models import Channel, CreateAttempt, Project, WebhookEvent
from tests.conftest import make_channel

State = Channel.State
_ids = itertools.count(1)


def _fleet_channel(project, **fields) -> Channel:
    """A channel with a Whapi id of its own, paid for two months unless `fields` say otherwise."""
    number = next(_ids)
    defaults = {
        "name": f"Channel {number}",
        "whapi_id": f"FLEET-{number:05d}",
        "state": State.CONNECTED,
        "active_till": timezone.now() + timedelta(days=60),
    }
    return make_channel(project, **{**defaults, **fields})


@pytest.fixture
def fleet_channel():
    """Makes a channel with a Whapi id of its own: `fleet_channel(project, **fields)`."""
    return _fleet_channel


@pytest.fixture
def fleet_data(project, fleet_channel):
    now = timezone.now()
    ago = lambda **kwargs: now - timedelta(**kwargs)  # noqa: E731
    ahead = lambda **kwargs: now + timedelta(**kwargs)  # noqa: E731

    fleet_channel(project, name="Fresh one")
    fleet_channel(project, name="Fresh two")
    fleet_channel(project, name="Stale", status_stale=True)
    fleet_channel(project, name="Broken", state=State.ERROR, last_error="Whapi said no")
    fleet_channel(project, name="Forgotten", state=State.WAITING_SCAN, state_changed_at=ago(hours=30))
    fleet_channel(project, name="Just ready", state=State.WAITING_SCAN, state_changed_at=ago(hours=2))
    fleet_channel(project, name="Ends in two days", active_till=ahead(days=2))
    fleet_channel(project, name="Ends in five days", active_till=ahead(days=5))
    fleet_channel(project, name="Ends in twenty days", active_till=ahead(days=20))
    fleet_channel(project, name="Ended", state=State.EXPIRED, active_till=ago(days=1))
    # Deleted: counted under its state only, not as stale or ending.
    fleet_channel(project, name="Gone", state=State.DELETED, status_stale=True, active_till=ahead(days=1))
    fleet_channel(project, name="Late check", health_check_due_at=ago(minutes=10))
    fleet_channel(project, name="Read-back due", settings_check_due_at=ago(seconds=30))
    fleet_channel(project, name="Queued first", state=State.QUEUED, whapi_id=None, requested_at=ago(minutes=20))
    fleet_channel(project, name="Queued second", state=State.QUEUED, whapi_id=None, requested_at=ago(minutes=5))
    orphans = Project.objects.create(whapi_id="orphan-project", name="Imported")
    fleet_channel(orphans, name="Imported from Whapi")
    fleet_channel(orphans, name="Imported and deleted", state=State.DELETED)

    for minutes in (1, 20, 50):
        WebhookEvent.objects.create(
            whapi_channel_id="FLEET-00001", body="{}", received_at=ago(minutes=minutes), outcome="applied"
        )
    WebhookEvent.objects.create(whapi_channel_id="FLEET-00002", body="{}", received_at=ago(seconds=10))
    for hours in (2, 30):
        WebhookEvent.objects.create(
            whapi_channel_id="FLEET-00001", body="{}", received_at=ago(hours=hours), outcome="applied"
        )

    for minutes in (3, 10):
        CreateAttempt.objects.create(at=ago(minutes=minutes), outcome="created")
    CreateAttempt.objects.create(at=ago(minutes=45), outcome="created")  # before the 30-minute window

    # The periodic schedules as a running worker leaves them: each ran, the latest 40 s ago.
    background.setup_periodic_schedules()
    Schedule.objects.filter(name__in=list(background.PERIODIC)).update(next_run=ahead(seconds=10), task="last")
    Schedule.objects.filter(name="create-queue").update(next_run=ahead(seconds=20))
    Schedule.objects.filter(name="retention").update(next_run=ahead(minutes=30))
    # The task queue: two tasks waiting (queued 90 s and 5 s ago), one taken by a worker.
    for seconds in (90, 5, -150):
        task = {"id": f"task-{seconds}", "name": "checks_sweep", "func": "channels_app.tasks.checks_sweep"}
        OrmQ.objects.create(
            key="portal", payload=SignedPackage.dumps({**task, "args": (), "kwargs": {}}), lock=ago(seconds=seconds)
        )

    return {
        "now": now,
        "states": {
            State.CONNECTED: 9,
            State.ERROR: 1,
            State.WAITING_SCAN: 2,
            State.EXPIRED: 1,
            State.DELETED: 2,
            State.QUEUED: 2,
        },
        "errors": 1,
        "stale": 1,
        "unscanned": 1,
        "unassigned": 1,
        "expiring": {3: 1, 7: 2, 30: 3},
        "budget_used": 2,
        "queued": 2,
        "oldest_requested_at": ago(minutes=20),
        "schedules_last_run": ahead(seconds=20) - timedelta(minutes=1),
        "tasks_waiting": 2,
        "oldest_waiting_since": ago(seconds=90),
        "tasks_taken": 1,
        "callbacks_lately": 4,
        "last_received_at": ago(seconds=10),
        "callbacks_to_apply": 1,
        "health_due": 1,
        "health_overdue": timedelta(minutes=10),
        "settings_due": 1,
    }
