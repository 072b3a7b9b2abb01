"""Fixtures of the staff-console tests; a test module loads them with
`pytest_plugins = ["tests.admin_fixtures"]`."""

import pytest
import responses


@pytest.fixture
def whapi(monkeypatch):
    """Whapi's partner and gate APIs mocked with `responses`; no pause between retried GETs."""
    from channels_app.whapi import _Client

    monkeypatch.setattr(_Client, "retry_delays", (0.0, 0.0))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@partner.example", "root-password")


@pytest.fixture
def staff_client(client, superuser):
    """A client logged in as a superuser (every permission)."""
    client.force_login(superuser)
    return client
