"""The channel list of the staff console: who reaches it, what it shows (and never shows), its
filters and search, the budget header, and a query count that does not grow with the rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import Channel, CreateAttempt, Customer, Project
from tests.admin_support import login_as, url
from tests.conftest import CHANNEL_TOKEN, make_channel

pytest_plugins = ["tests.admin_fixtures"]

State = Channel.State


def listed(response) -> list[str]:
    return [channel.name for channel in response.context["cl"].result_list]


def test_it_redirects_anonymous_visitors_to_the_login(client, db):
    response = client.get(url("channel_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_redirects_customers_who_are_not_staff_to_the_login(client, alice):
    client.force_login(alice)
    response = client.get(url("channel_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_get_403(client, django_user_model, db):
    login_as(client, django_user_model, "sam")
    assert client.get(url("channel_changelist")).status_code == 403


def test_it_lists_what_staff_need_to_see(staff_client, project):
    now = timezone.now()
    make_channel(
        project,
        state=State.CONNECTED,
        health_status="AUTH",
        connected_number="14155550123",
        mode="live",
        active_till=now + timedelta(days=20, hours=1),
        last_confirmed_at=now - timedelta(minutes=3),
    )
    response = staff_client.get(url("channel_changelist"))
    assert response.status_code == 200
    text = response.content.decode()
    for expected in (
        "Acme Corp",
        "Acme channels",
        "Shop bot",
        "MANTIS-M72HC",
        "Connected",
        "AUTH",
        "14155550123",
        "Live",
        "21 days left",  # 20 days and an hour, rounded up as everywhere
        "3\xa0minutes ago",
    ):
        assert expected in text, expected


def test_expiring_soon_and_ended_stand_out(staff_client, project):
    now = timezone.now()
    make_channel(project, name="soon", whapi_id="SOONSO-00001", active_till=now + timedelta(days=2, hours=1))
    make_channel(project, name="ended", whapi_id="ENDEDE-00001", active_till=now - timedelta(days=1))
    make_channel(project, name="fine", whapi_id="FINEFI-00001", active_till=now + timedelta(days=40))
    text = staff_client.get(url("channel_changelist")).content.decode()
    assert '<span class="days-soon">' in text and "3 days left" in text
    assert '<span class="days-ended">' in text and "ended</span>" in text
    assert text.count("days-soon") == 1


def test_no_secret_is_on_any_list_page(staff_client, project, channel):
    channel.webhook_events.create(whapi_channel_id=channel.whapi_id, event_type="channel", body="{}")
    secret = Channel.objects.get(pk=channel.pk).webhook_secret
    for name in ("channel", "webhookevent", "auditlog", "bulkjob", "customer", "project", "createattempt"):
        text = staff_client.get(url(f"{name}_changelist")).content.decode()
        assert CHANNEL_TOKEN not in text, name
        assert CHANNEL_TOKEN[-4:] not in text, name  # not even masked
        assert secret not in text, name


def test_the_list_does_not_even_read_the_secrets(staff_client, channel):
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(url("channel_changelist"))
    listing = [q["sql"] for q in queries.captured_queries if 'FROM "channels_app_channel"' in q["sql"]]
    assert listing and all('"token"' not in sql and '"webhook_secret"' not in sql for sql in listing)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state__exact=error", ["broken"]),
        ("health=AUTH", ["live one"]),
        ("health=none", ["queued"]),
        ("mode__exact=dev", ["broken"]),
        ("customer=other", ["other's"]),
        ("customer=acme", ["broken", "live one", "queued"]),
        ("project=OTHERPROJECT0000000000", ["other's"]),
        ("project=acme", ["broken", "live one", "queued"]),
        ("expiring_within=3", ["broken"]),
        ("expiring_within=10", ["broken", "live one"]),
        ("expiring_within=expired", ["other's"]),
        ("stale=failed", ["live one"]),
        ("stale=quiet", ["broken", "other's"]),
        ("assigned=no", ["imported"]),
        ("q=Live+One", ["live one"]),
        ("q=LIVELI", ["live one"]),
        ("q=%2B1+415+555-0123", ["live one"]),
        ("q=other+inc", ["other's"]),
    ],
)
def test_filters_and_search(staff_client, project, query, expected):
    now = timezone.now()
    other_project = Project.objects.create(
        whapi_id="OTHERPROJECT0000000000", name="Other", customer=Customer.objects.create(name="Other Inc")
    )
    make_channel(
        project,
        name="broken",
        whapi_id="BROKEN-00001",
        state=State.ERROR,
        mode="dev",
        health_status="ERROR",
        active_till=now + timedelta(days=2),
        last_confirmed_at=now - timedelta(hours=3),
    )
    make_channel(
        project,
        name="live one",
        whapi_id="LIVELI-00001",
        state=State.CONNECTED,
        mode="live",
        health_status="AUTH",
        connected_number="14155550123",
        status_stale=True,
        active_till=now + timedelta(days=8),
        last_confirmed_at=now - timedelta(minutes=5),
    )
    Channel.objects.create(project=project, name="queued")
    make_channel(
        other_project, name="other's", whapi_id="OTHERO-00001", health_status="QR", active_till=now - timedelta(days=1)
    )
    Channel.objects.create(
        name="imported", whapi_id="IMPORT-00001", state=State.WAITING_SCAN, health_status="QR", last_confirmed_at=now
    )
    response = staff_client.get(url("channel_changelist") + "?" + query)
    assert response.status_code == 200
    assert sorted(listed(response)) == sorted(expected)


def test_a_bad_number_of_days_is_refused_politely(staff_client, channel):
    response = staff_client.get(url("channel_changelist") + "?expiring_within=soon")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_customer_links_filter_by_the_customers_code(staff_client, project, channel, customer):
    text = staff_client.get(url("channel_changelist")).content.decode()
    assert f"?customer={customer.code}" in text
    response = staff_client.get(url("channel_changelist") + f"?customer={customer.code}")
    assert listed(response) == ["Shop bot"]


def test_the_header_shows_the_create_budget_and_what_needs_a_look(staff_client, project, settings):
    settings.WHAPI_CREATE_BUDGET, settings.WHAPI_CREATE_WINDOW = 2, 1800
    first = timezone.now() - timedelta(minutes=10)
    CreateAttempt.objects.bulk_create([CreateAttempt(at=first), CreateAttempt(at=first + timedelta(seconds=1))])
    Channel.objects.create(project=project, name="waiting 1")
    make_channel(project, state=State.ERROR, whapi_id="BROKEN-00001")
    text = staff_client.get(url("channel_changelist")).content.decode()
    assert "2 of 2 creations used in the last 30 minutes" in text
    assert "queue: 1 channel" in text
    assert f"next free slot: {first + timedelta(minutes=30):%H:%M:%S} UTC" in text
    assert "1 in error" in text
    assert "Sync channels from Whapi" in text


@pytest.mark.parametrize("query", ["", "?state__exact=connected&o=-8", "?q=channel&expiring_within=30"])
def test_the_list_query_count_does_not_grow_with_the_rows(staff_client, db, query):
    def seed(count: int, start: int) -> None:
        customers = Customer.objects.bulk_create([Customer(name=f"customer {start + i}") for i in range(count // 5)])
        projects = Project.objects.bulk_create(
            [Project(whapi_id=f"P{start + i:019d}", name=f"project {i}", customer=c) for i, c in enumerate(customers)]
        )
        now = timezone.now()
        Channel.objects.bulk_create(
            [
                Channel(
                    project=projects[i % len(projects)],
                    name=f"channel {start + i}",
                    whapi_id=f"BULKBU-{start + i:05d}",
                    state=State.CONNECTED if i % 2 else State.WAITING_SCAN,
                    health_status="AUTH" if i % 2 else "QR",
                    connected_number=f"1415555{start + i:04d}" if i % 2 else "",
                    mode="live",
                    active_till=now + timedelta(days=i % 40),
                    last_confirmed_at=now,
                    status_stale=i % 7 == 0,
                    last_error="gate timeout" if i % 11 == 0 else "",
                )
                for i in range(count)
            ]
        )

    def count_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(url("channel_changelist") + query)
        assert response.status_code == 200
        return len(queries.captured_queries), len(response.context["cl"].result_list)

    seed(10, 0)
    small, shown_small = count_queries()
    seed(990, 10)
    large, shown_large = count_queries()
    assert 0 < shown_small < shown_large <= 100
    assert small == large
