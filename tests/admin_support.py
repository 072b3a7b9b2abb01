"""Helpers of the staff-console tests (tests/test_admin_*.py): staff users holding chosen
permissions, Whapi payloads and a gate that keeps its settings. The fixtures are in
tests/admin_fixtures.py (loaded with `pytest_plugins`)."""

import json

import responses
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.conftest import GATE_URL, remote_channel, staff_login  # noqa: F401 (the admin tests import it from here)

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")
CHANNEL_PERMS = ("operate_channel", "extend_channel", "change_mode", "logout_number", "delete_in_whapi", "reveal_token")


def make_staff(django_user_model, username: str, *codenames: str):
    """A staff user (not superuser) holding `channels_app.<codename>` for each codename."""
    user = django_user_model.objects.create_user(username, f"{username}@partner.example", "staff-password")
    user.is_staff = True
    user.save()
    if codenames:
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="channels_app", codename__in=codenames)
        )
    return django_user_model.objects.get(pk=user.pk)  # fresh: no cached permissions


def login_as(client, django_user_model, username: str, *codenames: str):
    user = make_staff(django_user_model, username, *codenames)
    staff_login(client, user)
    return user


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def url(name: str, *args) -> str:
    return reverse(f"admin:channels_app_{name}", args=args)


def page(key: str, items: list) -> str:
    return json.dumps({key: items, "count": len(items), "total": len(items), "offset": 0})


def whapi_error(status: int, message: str) -> dict:
    return {"status": status, "json": {"error": {"code": status, "message": message}}}


def gate_that_keeps(whapi, *, health_text: str = "QR") -> dict:
    """A gate whose GET /settings returns what was PATCHed, and whose health says `health_text`."""
    stored: dict = {}

    def patch(request):
        stored.update(json.loads(request.body))
        return 200, {}, json.dumps({"before_update": {}, "after_update": stored, "changes": list(stored)})

    whapi.add_callback(responses.PATCH, f"{GATE}/settings", callback=patch)
    whapi.add_callback(responses.GET, f"{GATE}/settings", callback=lambda request: (200, {}, json.dumps(stored)))
    whapi.add(
        responses.GET,
        f"{GATE}/health",
        json={"start_at": 1713774883, "uptime": 100, "status": {"code": 3, "text": health_text}},
    )
    return stored
