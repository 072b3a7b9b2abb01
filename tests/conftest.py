"""Shared fixtures: a customer with three users (alice owner, bob operator, charlie outsider), a
project, channels in various states, and a recorder in place of the task queue."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.contrib.auth import get_user_model
from django.utils import timezone, translation

from channels_app import background
from channels_app.models import Channel, Customer, Membership, Project

pytest_plugins = ["tests.sandbox_fixtures", "tests.portal_fixtures"]

WHAPI_FIXTURES = Path(__file__).parent / "fixtures" / "whapi"
GATE_URL = "https://gate.whapi.test/"
CHANNEL_TOKEN = "LK0tQ9qnb5pvfDDsj5NzeRFpnpApSEGb"


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Tasks the code under test enqueued, as (task, args); nothing runs unless a test runs it."""
    calls = []
    monkeypatch.setattr(background, "enqueue", lambda task, *args: calls.append((task, args)))
    return calls


@pytest.fixture(autouse=True)
def english_after_each_test():
    """A request leaves its language active in the thread (Django's LocaleMiddleware does not undo
    it): the next test, reading a form's errors outside a request, starts in English again."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Hashing passwords properly is slow by design; tests log in a lot."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def whapi_fixture(name: str) -> dict:
    """A recorded-style Whapi payload from tests/fixtures/whapi/ (name with or without .json)."""
    return json.loads((WHAPI_FIXTURES / name.removesuffix(".json")).with_suffix(".json").read_text())


def remote_channel(
    name: str, channel_id: str = "SHAZAM-3HDYQ", project_id: str = "kpSv3OFq9PkP1W1Ogv7p", **extra
) -> dict:
    """A Whapi channel object as the partner API returns it (timestamps in milliseconds)."""
    now_ms = int(timezone.now().timestamp() * 1000)
    payload = {
        "apiUrl": GATE_URL,
        "id": channel_id,
        "creationTS": now_ms,
        "ownerId": "DdEBesOO62Ika8Q8d491Vse2kQp2",
        "activeTill": now_ms + 6 * 86400_000,
        "token": CHANNEL_TOKEN,
        "server": 6,
        "stopped": False,
        "status": "active",
        "trial": now_ms + 5 * 86400_000,
        "mode": "trial",
        "name": name,
        "projectId": project_id,
    }
    payload.update(extra)
    return payload


@pytest.fixture
def whapi(monkeypatch):
    """Whapi's partner and gate APIs mocked at the HTTP seam (`responses`): a call no test registered
    fails instead of reaching the network; retried GETs do not pause."""
    from channels_app.whapi.transport import BaseClient

    monkeypatch.setattr(BaseClient, "retry_delays", (0.0, 0.0))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def staff_login(client, user):
    """Sign `user` in to `client` as through the admin's login with an authentication code: with
    DJANGO_DEBUG off (as in the tests) the admin opens only to sessions verified by a one-time code."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="authenticator", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def admin_client(db, admin_user):
    """pytest-django's admin client, signed in with an authentication code (see `staff_login`)."""
    from django.test import Client

    return staff_login(Client(), admin_user)


PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Host names resolve without the network: every name to one public address, unless a test
    sets `dns.answers[name]` (e.g. to a private address)."""
    from channels_app import webhook_urls

    class FakeDns:
        answers: dict[str, list[str]] = {}

        def resolve(self, host: str, port: int) -> list[str]:
            if host.endswith(".invalid"):
                raise OSError(f"{host} does not resolve")
            return self.answers.get(host, [PUBLIC_ADDRESS])

    fake = FakeDns()
    fake.answers = {}
    monkeypatch.setattr(webhook_urls, "resolve", fake.resolve)
    return fake


@pytest.fixture
def customer(db):
    return Customer.objects.create(name="Acme Corp", channel_quota=5)


@pytest.fixture
def alice(customer):
    user = get_user_model().objects.create_user("alice", "alice@acme.example", "alice-password")
    Membership.objects.create(customer=customer, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def bob(customer):
    user = get_user_model().objects.create_user("bob", "bob@acme.example", "bob-password")
    Membership.objects.create(customer=customer, user=user, role=Membership.Role.OPERATOR)
    return user


@pytest.fixture
def vera(customer):
    """A viewer of alice's customer: reads everything, changes nothing."""
    user = get_user_model().objects.create_user("vera", "vera@acme.example", "vera-password")
    Membership.objects.create(customer=customer, user=user, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def charlie(db):
    other = Customer.objects.create(name="Other Inc")
    user = get_user_model().objects.create_user("charlie", "charlie@other.example", "charlie-password")
    Membership.objects.create(customer=other, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def project(customer):
    return Project.objects.create(whapi_id="kpSv3OFq9PkP1W1Ogv7p", name="Acme channels", customer=customer)


def skip_without_row_locks() -> None:
    """Skip a test of row locks where the database has none (SQLite serialises its writers instead)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: its writers take turns with the whole database")


def make_channel(project, **fields) -> Channel:
    """A channel that Whapi has created and whose webhooks are verified, unless fields say otherwise."""
    now = timezone.now()
    defaults = {
        "name": "Shop bot",
        "whapi_id": "MANTIS-M72HC",
        "whapi_project_id": project.whapi_id,
        "api_url": GATE_URL,
        "token": CHANNEL_TOKEN,
        "state": Channel.State.WAITING_SCAN,
        "init_until": now - timedelta(minutes=5),
        "webhooks_verified_at": now - timedelta(minutes=1),
        "active_till": now + timedelta(days=5),
    }
    defaults.update(fields)
    return Channel.objects.create(project=project, **defaults)


@pytest.fixture
def channel(project):
    return make_channel(project)
