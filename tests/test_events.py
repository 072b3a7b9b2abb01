"""Events to customers' systems: each type emitted at its point (the state moves through
status.channel_update, the confirmed disconnect and the expiry reminder through alerts.rules), only
to the switched-on endpoints of the channel's customer that want it; sent signed per Standard
Webhooks (verified here with the `standardwebhooks` library), retried on the spec's schedule and
then given up, replayed with the same webhook-id, and an endpoint that keeps failing paused with an
alert. The endpoints are mocked with `responses`."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import requests
import responses
import time_machine
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from alerts.models import Event as AlertEvent
from alerts.models import Notification, Recipient
from alerts.rules import disconnect_alerts_due, expiry_reminders_due
from channels_app import webhook_urls
from channels_app.models import AuditLog, Channel, Customer, Project
from channels_app.retention import retention_prune
from channels_app.status import channel_update, health_apply
from channels_app.whapi import Health
from events import delivery as sender
from events import endpoints
from events.delivery import RETRY_DELAYS, deliveries_send_due
from events.models import Attempt, Delivery, Endpoint, Event, EventType
from tests.conftest import CHANNEL_TOKEN, make_channel

State = Channel.State
HOOK = "https://hooks.acme.example/portal/events"
PHONE = "14155550123"
ALL = list(EventType.values)


@pytest.fixture
def endpoint(customer) -> Endpoint:
    return Endpoint.objects.create(customer=customer, url=HOOK, event_types=ALL)


@pytest.fixture
def hook():
    """The customer's endpoint, answering 204 unless a test registers otherwise."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, HOOK, status=204)
        yield mock


def verified(call, secret: str) -> dict:
    """The body of a captured POST, verified as a receiver would."""
    return Webhook(secret).verify(call.request.body, dict(call.request.headers))


def types_emitted() -> list[str]:
    return list(Event.objects.order_by("pk").values_list("type", flat=True))


def report(channel: Channel, text: str, *, uptime: int) -> None:
    """Whapi tells the channel's health (a callback or an answer to a check)."""
    user = PHONE if text == "AUTH" else None
    health = Health(
        start_at=1000, uptime=uptime, status_code=None, status_text=text, user_id=user, user_name=None, raw={}
    )
    health_apply(channel.pk, health, source="poll")


# ---- signing ----------------------------------------------------------------------------------
def test_a_delivery_is_signed_per_standard_webhooks(channel, endpoint, hook):
    fields = {"name": "Café ☕ bot", "connected_number": PHONE, "connected_at": timezone.now()}
    channel_update(channel, fields, state=State.CONNECTED)
    assert deliveries_send_due() == 1

    (call,) = hook.calls
    payload = verified(call, endpoint.secret)
    assert payload["type"] == "channel.connected"
    assert payload["data"]["channel_id"] == str(channel.code)
    assert payload["data"]["number"] == f"+{PHONE}" and payload["data"]["name"] == "Café ☕ bot"
    assert payload["data"]["state"] == "connected" and payload["data"]["previous_state"] == "waiting_scan"
    event = Event.objects.get()
    assert call.request.headers["webhook-id"] == event.webhook_id and event.webhook_id.startswith("msg_")
    assert call.request.headers["content-type"] == "application/json"
    assert CHANNEL_TOKEN not in call.request.body.decode() and channel.webhook_secret not in call.request.body.decode()
    # Another secret, or a body changed on the way, does not verify.
    other = Endpoint(customer=endpoint.customer, url=HOOK)
    with pytest.raises(WebhookVerificationError):
        verified(call, other.secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(call.request.body.replace(b"connected", b"connectes"), call.request.headers)

    sent = Delivery.objects.get()
    assert (sent.status, sent.attempts, sent.last_status_code) == (Delivery.Status.SUCCEEDED, 1, 204)
    attempt = Attempt.objects.get()
    assert attempt.succeeded and attempt.status_code == 204 and attempt.latency_ms is not None


def test_the_secret_is_in_the_standard_webhooks_format_and_encrypted_at_rest(endpoint):
    from django.db import connection

    assert endpoint.secret.startswith("whsec_")
    Webhook(endpoint.secret)  # the library takes it as it is
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM events_endpoint WHERE id = %s", [endpoint.pk])
        (stored,) = cursor.fetchone()
    assert endpoint.secret not in stored


# ---- where each type is emitted -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "event_type"),
    [
        (State.CREATING, State.INITIALIZING, EventType.CREATED),
        (State.CONFIGURING, State.WAITING_SCAN, EventType.READY_FOR_SCAN),
        (State.WAITING_SCAN, State.CONNECTED, EventType.CONNECTED),
        (State.CONFIGURING, State.ERROR, EventType.ERROR),
        (State.CONNECTED, State.DELETED, EventType.DELETED),
    ],
)
def test_each_state_move_is_its_event(project, endpoint, before, after, event_type):
    channel = make_channel(project, state=before)
    channel_update(channel, state=after)
    event = Event.objects.get()
    assert event.type == event_type
    assert event.payload["data"]["previous_state"] == before
    assert event.channel == channel and event.customer == endpoint.customer
    assert Delivery.objects.get().endpoint == endpoint


def test_the_other_moves_and_writes_without_a_move_are_no_events(channel, endpoint):
    channel_update(channel, {"name": "Renamed"})
    channel_update(channel, state=State.CONFIGURING)
    channel_update(channel, state=State.STOPPED)
    assert types_emitted() == []


def test_an_error_says_its_source(project, endpoint):
    channel = make_channel(project, state=State.CONFIGURING)
    channel_update(channel, {"error_source": Channel.ErrorSource.CONFIGURE}, state=State.ERROR)
    assert Event.objects.get().payload["data"]["error_source"] == "configure"


@pytest.fixture
def connected(project, settings):
    settings.ALERT_GRACE_SECONDS = 120
    channel = make_channel(project, state=State.CONNECTED, connected_number=PHONE)
    report(channel, "AUTH", uptime=10)
    return channel


def test_a_disconnect_is_an_event_only_once_confirmed_as_alerts_tell_it(connected, endpoint):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        assert types_emitted() == []  # the raw move is not the event
        clock.shift(timedelta(seconds=60))
        disconnect_alerts_due()
        assert types_emitted() == []  # within the grace
        clock.shift(timedelta(seconds=61))
        report(connected, "QR", uptime=141)  # Whapi confirms at the end of the grace
        clock.shift(timedelta(seconds=10))
        disconnect_alerts_due()
    event = Event.objects.get()
    assert event.type == EventType.DISCONNECTED
    assert event.payload["data"]["confirmed"] is True
    assert event.payload["data"]["state"] == "disconnected" and event.payload["data"]["number"] is None


def test_a_drop_within_the_grace_is_no_event_at_all(connected, endpoint):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=30))
        report(connected, "AUTH", uptime=50)
        clock.shift(timedelta(minutes=10))
        disconnect_alerts_due()
    assert types_emitted() == []


def test_a_reconnect_after_a_told_disconnect_is_connected_again(connected, endpoint):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=121))
        report(connected, "QR", uptime=141)
        clock.shift(timedelta(seconds=10))
        disconnect_alerts_due()
        report(connected, "AUTH", uptime=200)
    assert types_emitted() == [EventType.DISCONNECTED, EventType.CONNECTED]


def test_a_channel_running_out_of_days_is_expiring_with_the_days_left(project, endpoint, settings):
    settings.EXPIRY_REMINDER_DAYS = [3, 7]
    channel = make_channel(project, state=State.CONNECTED, active_till=timezone.now() + timedelta(days=2, hours=1))
    expiry_reminders_due()
    expiry_reminders_due()  # told once per threshold and period
    event = Event.objects.get()
    assert event.type == EventType.EXPIRING and event.channel == channel
    assert event.payload["data"]["days_left"] == channel.days_left() in (2, 3)


def test_only_the_switched_on_endpoints_of_the_customer_that_want_the_type_get_it(project, customer, channel):
    wants = Endpoint.objects.create(customer=customer, url=HOOK, event_types=[EventType.CONNECTED])
    Endpoint.objects.create(customer=customer, url=HOOK, event_types=[EventType.ERROR])
    Endpoint.objects.create(customer=customer, url=HOOK, event_types=ALL, active=False)
    paused = Endpoint.objects.create(
        customer=customer, url=HOOK, event_types=ALL, disabled_until=timezone.now() + timedelta(hours=1)
    )
    other = Customer.objects.create(name="Other Inc")
    Endpoint.objects.create(customer=other, url=HOOK, event_types=ALL)
    make_channel(Project.objects.create(whapi_id="p2", name="Other", customer=other), whapi_id="X")

    channel_update(channel, {"connected_number": PHONE}, state=State.CONNECTED)
    assert set(Delivery.objects.values_list("endpoint", flat=True)) == {wants.pk, paused.pk}
    assert Event.objects.get().customer == customer


def test_no_endpoint_no_rows(channel):
    channel_update(channel, {"connected_number": PHONE}, state=State.CONNECTED)
    assert not Event.objects.exists() and not Delivery.objects.exists()


# ---- retries --------------------------------------------------------------------------------------
def test_a_failed_delivery_is_retried_on_the_schedule_then_given_up(channel, endpoint, hook, settings):
    settings.EVENTS_DISABLE_AFTER_FAILURES = 100
    hook.replace(responses.POST, HOOK, status=500)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        channel_update(channel, state=State.ERROR)
        pauses = []
        for _ in range(len(RETRY_DELAYS) + 1):
            assert deliveries_send_due() == 1
            sent = Delivery.objects.get()
            assert deliveries_send_due() == 0  # not due again before its pause
            if sent.next_attempt_at is not None:
                pauses.append(sent.next_attempt_at - timezone.now())
                clock.move_to(sent.next_attempt_at)
        assert pauses == list(RETRY_DELAYS)
        assert sorted(pauses) == pauses  # each pause longer than the one before
        assert sum(pauses, timedelta()) > timedelta(hours=24)
        clock.shift(timedelta(days=3))
        assert deliveries_send_due() == 0  # given up: never tried again
    sent = Delivery.objects.get()
    assert (sent.status, sent.attempts, sent.next_attempt_at) == (Delivery.Status.FAILED, 8, None)
    assert sent.last_status_code == 500 and sent.last_error == "answered 500"
    assert Attempt.objects.filter(delivery=sent, succeeded=False).count() == 8 == len(hook.calls)
    # Every retry is the same message: the same webhook-id and body.
    assert len({call.request.headers["webhook-id"] for call in hook.calls}) == 1
    assert len({call.request.body for call in hook.calls}) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (requests.ConnectTimeout("slow"), "could not connect"),
        (requests.ReadTimeout("slow"), "no answer within 15 s"),
        (requests.ConnectionError("refused"), "could not connect"),
    ],
)
def test_no_answer_is_a_failed_attempt(channel, endpoint, hook, answer, error):
    hook.replace(responses.POST, HOOK, body=answer)
    channel_update(channel, state=State.ERROR)
    deliveries_send_due()
    sent = Delivery.objects.get()
    assert sent.status == Delivery.Status.PENDING and sent.attempts == 1
    assert sent.last_error == error and sent.last_status_code is None


def test_a_redirect_is_not_followed(channel, endpoint, hook):
    hook.replace(responses.POST, HOOK, status=302, headers={"Location": "http://10.0.0.5/steal"})
    channel_update(channel, state=State.ERROR)
    deliveries_send_due()
    assert len(hook.calls) == 1
    sent = Delivery.objects.get()
    assert sent.status == Delivery.Status.PENDING and "redirects are not followed" in sent.last_error


def test_the_url_rules_are_checked_again_at_send_time(channel, endpoint, hook, dns):
    dns.answers["hooks.acme.example"] = ["10.0.0.5"]
    channel_update(channel, state=State.ERROR)
    deliveries_send_due()
    assert len(hook.calls) == 0
    sent = Delivery.objects.get()
    assert sent.attempts == 1 and sent.last_error.startswith("URL refused: The portal cannot reach a local address")


def test_a_connection_that_reaches_a_local_address_is_dropped(channel, customer):
    """The URL check passed (a name that answered a public address), the connection reaches a local
    one (the name answered differently the second time: DNS rebinding): the portal sends nothing.
    A real server on loopback stands for the local address."""
    reached = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            reached.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/events"
        Endpoint.objects.create(customer=customer, url=url, event_types=ALL)
        with mock.patch.object(webhook_urls, "customer_url_problem", return_value=""):  # the check passed
            channel_update(channel, state=State.ERROR)
            deliveries_send_due()
    finally:
        server.shutdown()
    sent = Delivery.objects.get()
    assert reached == [] and sent.attempts == 1
    assert sent.last_error.startswith("URL refused: The portal cannot reach a local address")


def test_a_send_never_runs_twice_at_once(channel, endpoint, hook):
    channel_update(channel, state=State.ERROR)
    claimed = sender._claim(10)
    assert len(claimed) == 1
    assert sender._claim(10) == []  # the claim pushed its attempt time on


# ---- replay ------------------------------------------------------------------------------------
def test_replaying_a_delivery_sends_the_same_message_again(channel, endpoint, hook, alice):
    channel_update(channel, state=State.ERROR)
    deliveries_send_due()
    first = Delivery.objects.get()
    replay = endpoints.delivery_replay(delivery=first, actor=alice, source=AuditLog.Source.CUSTOMER)
    assert replay.replay_of == first and replay.status == Delivery.Status.PENDING
    assert deliveries_send_due() == 1
    ids = [call.request.headers["webhook-id"] for call in hook.calls]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert [verified(call, endpoint.secret)["type"] for call in hook.calls] == ["channel.error"] * 2
    assert AuditLog.objects.filter(action="events.replay", actor=alice).exists()


def test_replaying_a_range_sends_its_events_again(project, endpoint, hook, alice):
    now = timezone.now()
    channels = [make_channel(project, whapi_id=f"C{n}", state=State.CONFIGURING) for n in range(4)]
    for n, channel in enumerate(channels):
        with time_machine.travel(now - timedelta(hours=4 - n), tick=False):
            channel_update(channel, state=State.ERROR)
    hook.replace(responses.POST, HOOK, status=500)
    deliveries_send_due()
    failed, succeeded, old, pending = (
        Delivery.objects.get(event__channel=channel) for channel in (channels[1], channels[2], channels[0], channels[3])
    )
    Delivery.objects.filter(pk=succeeded.pk).update(status=Delivery.Status.SUCCEEDED)
    Delivery.objects.filter(pk=failed.pk).update(status=Delivery.Status.FAILED)
    Delivery.objects.filter(pk=pending.pk).update(status=Delivery.Status.PENDING)
    Delivery.objects.filter(pk=old.pk).update(status=Delivery.Status.FAILED)
    since, until = now - timedelta(hours=3, minutes=30), now

    count = endpoints.deliveries_replay(
        endpoint=endpoint, since=since, until=until, failed_only=True, actor=alice, source="customer"
    )
    assert count == 1  # the failed one of the range: not the delivered, the pending, nor the older
    assert Delivery.objects.filter(replay_of__isnull=True, event=failed.event).count() == 2
    count = endpoints.deliveries_replay(
        endpoint=endpoint, since=since, until=until, failed_only=False, actor=alice, source="customer"
    )
    assert count == 1  # the delivered one: the failed one's replay and the pending one are on their way
    with pytest.raises(endpoints.EndpointError):
        endpoints.deliveries_replay(
            endpoint=endpoint, since=until, until=since, failed_only=True, actor=alice, source="x"
        )


# ---- pausing after failures --------------------------------------------------------------------------
@pytest.fixture
def told(customer):
    staff = Recipient.objects.create(
        name="On call", email="oncall@partner.example", events=[AlertEvent.ENDPOINT_DISABLED]
    )
    own = Recipient.objects.create(customer=customer, email="it@acme.example", events=[AlertEvent.ENDPOINT_DISABLED])
    return staff, own


def test_an_endpoint_that_keeps_failing_is_paused_told_and_switched_on_again(
    project, customer, endpoint, hook, told, settings, alice
):
    settings.EVENTS_DISABLE_AFTER_FAILURES = 3
    settings.EVENTS_DISABLE_MINUTES = 30
    hook.replace(responses.POST, HOOK, status=503)
    channels = [make_channel(project, whapi_id=f"C{n}", state=State.CONFIGURING) for n in range(4)]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for channel in channels[:3]:
            channel_update(channel, state=State.ERROR)
        assert deliveries_send_due() == 3
        endpoint.refresh_from_db()
        assert endpoint.consecutive_failures == 3
        assert endpoint.disabled_until == timezone.now() + timedelta(minutes=30)

        notes = Notification.objects.filter(event=AlertEvent.ENDPOINT_DISABLED)
        assert {note.to for note in notes} == {"oncall@partner.example", "it@acme.example"}
        own = notes.get(customer=customer, recipient__customer=customer)
        assert HOOK in own.body and f"/app/c/{customer.code}/events/{endpoint.code}/" in own.body
        assert f"/admin/events/endpoint/{endpoint.pk}/change/" in notes.get(recipient__customer=None).body

        # Paused: new events wait, and so do the retries.
        channel_update(channels[3], state=State.ERROR)
        clock.shift(timedelta(minutes=10))
        assert deliveries_send_due() == 0

        # After the pause one attempt tries it again (the other three waiting keep their attempts);
        # failing, it is paused again, told once only.
        clock.shift(timedelta(minutes=21))
        assert deliveries_send_due() == 1
        assert Attempt.objects.count() == 4
        endpoint.refresh_from_db()
        assert endpoint.is_paused()
        assert notes.count() == 2

        # Fixed, and switched on from the page: everything waiting goes at once.
        hook.replace(responses.POST, HOOK, status=200)
        endpoints.endpoint_switch(endpoint=endpoint, on=True, actor=alice, source="customer")
        clock.shift(timedelta(hours=1))
        assert deliveries_send_due() == 4
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.disabled_until is None
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 4


def test_a_success_ends_the_streak(channel, project, endpoint, hook, settings):
    settings.EVENTS_DISABLE_AFTER_FAILURES = 2
    hook.replace(responses.POST, HOOK, status=500)
    channel_update(channel, state=State.ERROR)
    deliveries_send_due()
    hook.replace(responses.POST, HOOK, status=200)
    channel_update(make_channel(project, whapi_id="C2", state=State.CONFIGURING), state=State.ERROR)
    deliveries_send_due()
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and not endpoint.is_paused()


def test_a_switched_off_endpoint_gets_nothing_and_keeps_what_waits(channel, project, endpoint, hook, alice):
    channel_update(channel, state=State.ERROR)
    endpoints.endpoint_switch(endpoint=endpoint, on=False, actor=alice, source="customer")
    channel_update(make_channel(project, whapi_id="C2", state=State.CONFIGURING), state=State.ERROR)
    assert Delivery.objects.count() == 1
    assert deliveries_send_due() == 0
    endpoints.endpoint_switch(endpoint=endpoint, on=True, actor=alice, source="customer")
    assert deliveries_send_due() == 1


def test_switching_an_endpoint_on_sends_what_waits_now_but_not_what_is_being_sent(channel, endpoint, hook, alice):
    channel_update(channel, state=State.ERROR)
    waiting = Delivery.objects.get()
    now = timezone.now()
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=now + timedelta(hours=10))  # a late retry
    being_sent = Delivery.objects.create(event=waiting.event, endpoint=endpoint, next_attempt_at=now + sender.CLAIM)
    endpoints.endpoint_switch(endpoint=endpoint, on=False, actor=alice, source="customer")
    endpoints.endpoint_switch(endpoint=endpoint, on=True, actor=alice, source="customer")
    waiting.refresh_from_db()
    assert waiting.next_attempt_at <= timezone.now()
    assert Delivery.objects.get(pk=being_sent.pk).next_attempt_at == now + sender.CLAIM
    assert deliveries_send_due() == 1 and len(hook.calls) == 1


def test_the_sweep_stops_at_once_without_endpoints(db):
    started = time.monotonic()
    assert sender.events_send(seconds=30) == 0
    assert time.monotonic() - started < 5  # it holds no worker while nobody has an endpoint


def test_the_sweep_sends_for_its_seconds(channel, endpoint, hook):
    channel_update(channel, state=State.ERROR)
    assert sender.events_send(seconds=0) == 1
    assert json.loads(hook.calls[0].request.body)["type"] == "channel.error"


# ---- retention --------------------------------------------------------------------------------------
def test_events_and_their_log_are_pruned_after_their_days(channel, project, endpoint, hook, settings):
    settings.RETENTION_EVENTS_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=31), tick=False):
        channel_update(channel, state=State.ERROR)
        deliveries_send_due()
    young = make_channel(project, whapi_id="C2", state=State.CONFIGURING)
    channel_update(young, state=State.ERROR)
    deliveries_send_due()
    pruned = retention_prune()
    assert pruned.deleted["event_attempts"] == 1
    assert pruned.deleted["event_deliveries"] == 1
    assert pruned.deleted["events"] == 1
    assert list(Event.objects.values_list("channel", flat=True)) == [young.pk]
    assert Attempt.objects.count() == 1 and Delivery.objects.count() == 1


def test_an_endpoint_deleted_while_its_delivery_was_sent_is_no_error(channel, endpoint, hook, alice):
    channel_update(channel, state=State.ERROR)
    (claimed,) = sender._claim(10)
    result = sender.post(claimed)
    endpoints.endpoint_delete(endpoint=endpoint, actor=alice, source="customer")
    sender._record(claimed, result)
    assert not Attempt.objects.exists() and not Delivery.objects.exists()
