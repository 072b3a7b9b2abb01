"""A customer's events pages: owners register endpoints (the signing secret shown once), rotate the
secret, switch endpoints off and on, delete them and replay deliveries; every member reads the
endpoints and their delivery log; outsiders get a 404. alice owns the customer, bob operates it,
vera views it, charlie is an outsider. Staff see endpoints (never their secret) and deliveries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_app.models import AuditLog, Channel, Customer
from channels_app.status import channel_update
from events.forms import ReplayRangeForm
from events.models import Delivery, Endpoint, Event, EventType
from tests.conftest import make_channel

HOOK = "https://hooks.acme.example/portal/events"
ALL = list(EventType.values)


def events_url(customer) -> str:
    return reverse("channels_app:events", args=[customer.code])


def endpoint_url(endpoint, name: str = "events_endpoint", *args) -> str:
    return reverse(f"channels_app:{name}", args=[endpoint.customer.code, endpoint.code, *args])


def add(client, customer, **data):
    data.setdefault("url", HOOK)
    data.setdefault("event_types", ALL)
    return client.post(reverse("channels_app:events_endpoint_add", args=[customer.code]), data)


@pytest.fixture
def endpoint(customer) -> Endpoint:
    return Endpoint.objects.create(customer=customer, url=HOOK, event_types=ALL, description="Our CRM")


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(client, alice, customer):
    client.force_login(alice)
    response = add(client, customer, event_types=[EventType.CONNECTED, EventType.DISCONNECTED], description="CRM")
    endpoint = Endpoint.objects.get()
    page = response.content.decode()
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in page
    assert response["Cache-Control"] == "no-store"
    assert endpoint.event_types == [EventType.CONNECTED, EventType.DISCONNECTED]
    assert endpoint.created_by == alice and endpoint.description == "CRM"
    assert AuditLog.objects.filter(action="events.endpoint_create", actor=alice, detail=HOOK).exists()
    # Never again: not on the list, not on the endpoint's page.
    assert endpoint.secret not in client.get(events_url(customer)).content.decode()
    assert endpoint.secret not in client.get(endpoint_url(endpoint)).content.decode()


def test_the_nav_links_the_events_page(client, bob, customer):
    client.force_login(bob)
    page = client.get(reverse("channels_app:dashboard", args=[customer.code])).content.decode()
    assert f'href="{events_url(customer)}"' in page


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "not a url"}, "url", "Enter a full http(s) URL"),
        ({"url": "ftp://hooks.acme.example/x"}, "url", "Enter a full http(s) URL"),
        ({"url": "http://localhost:8000/hook"}, "url", "The portal cannot reach a local address"),
        ({"url": "https://10.0.0.5/hook"}, "url", "The portal cannot reach a local address"),
        ({"url": "https://[::ffff:127.0.0.1]/hook"}, "url", "The portal cannot reach a local address"),
        ({"url": "https://user:pw@hooks.acme.example/x"}, "url", "without a user name or password"),
        ({"url": "http://hooks.acme.example/x"}, "url", "Use an https URL"),
        ({"url": "https://nowhere.invalid/x"}, "url", "cannot be found"),
        ({"url": HOOK + "x" * 500}, "url", "at most 500"),
        ({"event_types": []}, "event_types", "This field is required."),
        ({"event_types": ["channel.secrets"]}, "event_types", "Select a valid choice"),
    ],
)
def test_a_bad_endpoint_is_refused_next_to_the_field(client, alice, customer, data, field, message):
    client.force_login(alice)
    response = add(client, customer, **data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert message in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_host_that_resolves_to_a_private_address_is_refused(client, alice, customer, dns):
    dns.answers["hooks.acme.example"] = ["192.168.1.20"]
    client.force_login(alice)
    response = add(client, customer)
    assert "cannot reach a local address" in " ".join(response.context["form"].errors["url"])
    assert not Endpoint.objects.exists()


def test_members_read_and_only_owners_change(client, bob, vera, customer, endpoint):
    for user in (bob, vera):
        client.force_login(user)
        assert HOOK in client.get(events_url(customer)).content.decode()
        page = client.get(endpoint_url(endpoint)).content.decode()
        assert "Delivery log" in page and "New signing secret" not in page
        assert add(client, customer).status_code == 403
        for name in ("events_secret_rotate", "events_endpoint_switch", "events_endpoint_delete", "events_replay_range"):
            assert client.post(endpoint_url(endpoint, name), {"on": "0"}).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.active and Endpoint.objects.count() == 1


def test_outsiders_and_other_customers_endpoints_are_not_found(client, alice, charlie, customer, endpoint):
    client.force_login(charlie)
    assert client.get(events_url(customer)).status_code == 404
    assert client.get(endpoint_url(endpoint)).status_code == 404
    assert client.post(endpoint_url(endpoint, "events_endpoint_delete")).status_code == 404
    # alice owns another customer too: that customer's page does not reach this endpoint.
    other = Customer.objects.create(name="Second Ltd")
    other.memberships.create(user=alice, role="owner")
    client.force_login(alice)
    elsewhere = reverse("channels_app:events_endpoint", args=[other.code, endpoint.code])
    assert client.get(elsewhere).status_code == 404
    delete = reverse("channels_app:events_endpoint_delete", args=[other.code, endpoint.code])
    assert client.post(delete).status_code == 404
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_rotating_the_secret_shows_the_new_one_once(client, alice, endpoint):
    old = endpoint.secret
    client.force_login(alice)
    response = client.post(endpoint_url(endpoint, "events_secret_rotate"))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode() and response["Cache-Control"] == "no-store"
    assert endpoint.secret not in client.get(endpoint_url(endpoint)).content.decode()
    assert AuditLog.objects.filter(action="events.secret_rotate").exists()


def test_an_owner_switches_off_and_on_ending_a_pause(client, alice, endpoint):
    client.force_login(alice)
    client.post(endpoint_url(endpoint, "events_endpoint_switch"), {"on": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.active
    Endpoint.objects.filter(pk=endpoint.pk).update(
        active=True, disabled_until=timezone.now() + timedelta(minutes=30), consecutive_failures=12
    )
    page = client.get(endpoint_url(endpoint)).content.decode()
    assert "Paused after 12 failed attempts in a row" in page and "Switch on now" in page
    response = client.post(endpoint_url(endpoint, "events_endpoint_switch"), {"on": "1"}, follow=True)
    assert "waiting events are sent now" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_until is None and endpoint.consecutive_failures == 0


def test_an_owner_deletes_an_endpoint(client, alice, customer, endpoint):
    client.force_login(alice)
    response = client.post(endpoint_url(endpoint, "events_endpoint_delete"), follow=True)
    assert f"{HOOK} gets no more events" in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.fixture
def delivered(project, endpoint) -> Delivery:
    channel = make_channel(project, state=Channel.State.CONFIGURING)
    channel_update(channel, state=Channel.State.ERROR)
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED, attempts=8, last_status_code=500, last_latency_ms=41, last_error="answered 500"
    )
    return delivery


def test_the_log_shows_each_delivery_and_replays_one(client, alice, endpoint, delivered):
    client.force_login(alice)
    page = client.get(endpoint_url(endpoint)).content.decode()
    webhook_id = delivered.event.webhook_id
    assert webhook_id in page and "channel.error" in page and "Failed · 500 · 41 ms" in page
    response = client.post(endpoint_url(endpoint, "events_replay", webhook_id), follow=True)
    assert "sent again, with the same webhook-id" in response.content.decode()
    replay = Delivery.objects.exclude(pk=delivered.pk).get()
    assert replay.event_id == delivered.event_id and replay.status == Delivery.Status.PENDING
    assert client.post(endpoint_url(endpoint, "events_replay", "msg_nothing")).status_code == 404


def test_a_range_is_replayed_from_the_page(client, alice, endpoint, delivered):
    client.force_login(alice)
    now = timezone.now()
    data = {
        "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "until": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
        "failed_only": "on",
    }
    response = client.post(endpoint_url(endpoint, "events_replay_range"), data, follow=True)
    assert "1 event of the range is sent again." in response.content.decode()
    assert Delivery.objects.filter(event=delivered.event).count() == 2
    assert AuditLog.objects.filter(action="events.replay_range").exists()


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_the_range_is_read_in_utc_as_its_labels_say_whatever_the_pages_zone(client, alice, endpoint, delivered, zone):
    # The pages are drawn in the browser's zone (portal.timezones); the form says "(UTC)" and fills
    # in the last day in UTC: sent back as it is, it must still cover the event of a few minutes ago
    # (its end is the minute the form was drawn in).
    client.force_login(alice)
    client.cookies["portal_tz"] = zone
    form = ReplayRangeForm.last_day()
    data = {"since": form.initial["since"], "until": form.initial["until"], "failed_only": "on"}
    Event.objects.filter(pk=delivered.event_id).update(created_at=timezone.now() - timedelta(minutes=5))
    response = client.post(endpoint_url(endpoint, "events_replay_range"), data, follow=True)
    assert "1 event of the range is sent again." in response.content.decode()


def test_a_backward_range_is_refused_next_to_the_field(client, alice, endpoint):
    client.force_login(alice)
    now = timezone.now()
    data = {"since": now.strftime("%Y-%m-%dT%H:%M"), "until": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    response = client.post(endpoint_url(endpoint, "events_replay_range"), data)
    assert "The end of the range must be after its start." in response.content.decode()
    assert response.context["replay_form"].errors["until"]


def test_the_log_pages_newest_first_in_queries_that_do_not_grow(client, alice, project, endpoint):
    channel = make_channel(project, state=Channel.State.CONFIGURING)
    event = Event.objects.create(customer=endpoint.customer, channel=channel, type="channel.error", payload={})
    client.force_login(alice)

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            client.get(endpoint_url(endpoint))
        return len(queries)

    Delivery.objects.bulk_create([Delivery(event=event, endpoint=endpoint) for _ in range(3)])
    queries_for_page()  # the session's first page also keeps the user's profile in it
    short_log = queries_for_page()
    Delivery.objects.bulk_create([Delivery(event=event, endpoint=endpoint) for _ in range(57)])
    assert queries_for_page() == short_log
    ids = list(Delivery.objects.order_by("-pk").values_list("pk", flat=True))
    response = client.get(endpoint_url(endpoint))
    assert [d.pk for d in response.context["log"]] == ids[:25]
    older = response.context["older"]
    assert f"?before={older}" in response.content.decode()
    second = client.get(endpoint_url(endpoint) + f"?before={older}")
    assert [d.pk for d in second.context["log"]] == ids[25:50]
    third = client.get(endpoint_url(endpoint) + f"?before={second.context['older']}")
    assert [d.pk for d in third.context["log"]] == ids[50:] and third.context["older"] is None


def test_staff_see_endpoints_without_their_secret_and_replay_deliveries(admin_client, endpoint, delivered):
    page = admin_client.get(reverse("admin:events_endpoint_change", args=[endpoint.pk])).content.decode()
    assert HOOK in page and endpoint.secret not in page
    assert endpoint.secret not in admin_client.get(reverse("admin:events_endpoint_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:events_delivery_change", args=[delivered.pk])).content.decode()
    assert delivered.event.webhook_id in detail and endpoint.secret not in detail
    response = admin_client.post(
        reverse("admin:events_delivery_changelist"),
        {"action": "send_again", "_selected_action": [delivered.pk]},
        follow=True,
    )
    assert "Sent again: 1 delivery, with their webhook-ids." in response.content.decode()
    assert Delivery.objects.filter(event=delivered.event).count() == 2


def test_staff_find_an_endpoints_deliveries_by_its_code(admin_client, customer, endpoint, delivered):
    other = Endpoint.objects.create(customer=customer, url=HOOK + "/2", event_types=ALL)
    changelist = reverse("admin:events_delivery_changelist")
    assert (
        f"{changelist}?endpoint={endpoint.code}"
        in admin_client.get(reverse("admin:events_endpoint_changelist")).content.decode()
    )
    mine = admin_client.get(changelist, {"endpoint": str(endpoint.code)})
    assert [d.pk for d in mine.context["cl"].result_list] == [delivered.pk]
    none = admin_client.get(changelist, {"endpoint": str(other.code)})
    assert list(none.context["cl"].result_list) == []
