"""Fixtures of the staff-console tests; a test module loads them with
`pytest_plugins = ["tests.admin_fixtures"]`."""

import pytest

from tests.conftest import staff_login


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@partner.example", "root-password")


@pytest.fixture
def staff_client(client, superuser):
    """A client logged in as a superuser (every permission)."""
    return staff_login(client, superuser)
