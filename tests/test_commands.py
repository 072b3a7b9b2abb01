"""Management commands used by `make run` and deployments."""

import io

import pytest
import responses
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from channels_app.models import Customer, Project


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_setup_schedules_is_idempotent(db):
    run("setup_schedules")
    run("setup_schedules")
    schedules = {s.name: s for s in Schedule.objects.all()}
    assert set(schedules) == {"create-queue", "checks", "callbacks", "alerts", "events", "retention"}
    assert schedules["create-queue"].func == "channels_app.tasks.create_queue_pump"
    assert schedules["create-queue"].minutes == 1


def test_seed_demo_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG=on"):
        run("seed_demo")


def test_seed_demo_creates_working_logins_once(db, settings):
    settings.DEBUG = True
    with responses.RequestsMock() as whapi:
        whapi.add(
            responses.PUT,
            "https://manager.whapi.test/projects",
            json={"id": "A" * 20, "name": "Acme Corp channels", "creationTS": 1712598267389, "ownerId": "o" * 28},
        )
        first = run("seed_demo", "--whapi-project")
    second = run("seed_demo", "--whapi-project")  # no second Whapi project (no mock registered now)
    assert first == second
    assert "staff / staff-demo-password" in first
    staff = authenticate(username="staff", password="staff-demo-password")
    assert staff.is_staff and staff.is_superuser
    owner = authenticate(username="acme", password="acme-demo-password")
    customer = Customer.objects.get()
    assert customer.memberships.get(user=owner).role == "owner"
    assert Project.objects.get().customer == customer
