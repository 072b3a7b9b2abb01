"""The webhook receiver: authentication, bad input, the ledger, and idempotent application; and, at
the end, hostile or odd bytes: never a 500, chunked bodies read, callbacks that need cleaning stored
once and made safe (the ledger says so), outside values kept out of the logs."""

import io
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import responses
import time_machine
from django.test import Client, RequestFactory
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_app import checks, configure, webhooks
from channels_app.models import WEBHOOK_SECRET_HEADER, Channel, ChannelEvent, WebhookEvent
from tests.conftest import GATE_URL, make_channel, skip_without_row_locks

GATE = GATE_URL.rstrip("/")

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
URL = "/whapi/webhook"


def fixture(name: str, **changes) -> dict:
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    for key, value in changes.items():
        body[key] = value
    return body


def receive(client, channel, body, *, secret=None, raw=None):
    """Post a callback to the receiver only: the answer, with the callback stored but not yet applied."""
    headers = {} if secret is False else {"headers": {WEBHOOK_SECRET_HEADER: secret or channel.webhook_secret}}
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def post(client, channel, body, *, secret=None, raw=None):
    """Post a callback and run the applier once, as the worker does a fraction of a second later;
    returns the receiver's answer."""
    response = receive(client, channel, body, secret=secret, raw=raw)
    webhooks.callbacks_apply(seconds=0)
    return response


def outcome() -> str:
    """The outcome the ledger records for the latest callback."""
    return WebhookEvent.objects.order_by("-pk").values_list("outcome", flat=True).first()


def health(status_text: str, start_at: int, uptime: int, code: int = 0, user=None) -> dict:
    body = {"start_at": start_at, "uptime": uptime, "status": {"code": code, "text": status_text}}
    if user:
        body["user"] = user
    return {"health": body, "event": {"type": "channel", "event": "post"}, "channel_id": "MANTIS-M72HC"}


@pytest.fixture
def no_whapi():
    """No route registered: any Whapi call made inside a request fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    assert len(mock.calls) == 0, "the webhook view called Whapi"


def reload(channel: Channel) -> Channel:
    return Channel.objects.get(pk=channel.pk)


def test_health_qr_moves_a_configured_channel_to_waiting_for_scan(client, channel, no_whapi):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONFIGURING)
    channel = reload(channel)
    channel.state = Channel.State.WAITING_SCAN  # configured: verified webhooks, state set by the pipeline
    channel.save()
    response = post(client, channel, fixture("health_qr"))
    assert response.status_code == 200
    channel = reload(channel)
    assert (channel.health_status, channel.health_code) == ("QR", 3)
    assert (channel.health_start_at, channel.health_uptime) == (1713774883, 78)
    assert channel.last_confirmed_at is not None


def test_it_stores_the_raw_body_before_applying(client, channel, no_whapi):
    raw = (FIXTURES / "health_auth.json").read_text()
    post(client, channel, None, raw=raw)
    event = WebhookEvent.objects.get()
    assert event.body == raw
    assert (event.channel, event.event_type, event.event_method) == (channel, "channel", "post")
    assert event.outcome == WebhookEvent.Outcome.APPLIED


def test_health_auth_connects_and_shows_the_number(client, channel, no_whapi):
    post(client, channel, fixture("health_auth"))
    channel = reload(channel)
    assert channel.state == Channel.State.CONNECTED
    assert (channel.connected_number, channel.connected_name) == ("61371989950", "Jonathan")
    change = channel.timeline.get()
    assert (change.from_state, change.to_state, change.source) == ("waiting_scan", "connected", "webhook")


def test_a_late_health_event_never_rolls_the_status_back(client, channel, no_whapi):
    post(client, channel, fixture("health_auth"))  # uptime 140
    post(client, channel, fixture("health_qr"))  # uptime 78: sent earlier, arrived later
    assert outcome() == "stale"
    channel = reload(channel)
    assert (channel.state, channel.health_status, channel.health_uptime) == ("connected", "AUTH", 140)


def test_a_restart_with_a_later_start_at_is_newer_despite_a_small_uptime(client, channel, no_whapi):
    post(client, channel, health("AUTH", 1713774883, 5000, 4, {"id": "61371989950"}))
    post(client, channel, health("QR", 1713780000, 3, 3))
    assert reload(channel).health_status == "QR"


def test_a_replayed_health_event_changes_nothing(client, channel, no_whapi):
    post(client, channel, fixture("health_auth"))
    timeline = ChannelEvent.objects.count()
    post(client, channel, fixture("health_auth"))
    assert outcome() == "duplicate"
    assert ChannelEvent.objects.count() == timeline
    assert WebhookEvent.objects.count() == 2  # both deliveries are in the ledger


def checks_soon(channel) -> set[str]:
    """The checks the sweep makes for the channel within the next few seconds."""
    channel = reload(channel)
    soon = timezone.now() + timedelta(seconds=5)
    due = {"health": channel.health_check_due_at, "settings": channel.settings_check_due_at}
    return {kind for kind, at in due.items() if at is not None and at <= soon}


def test_users_post_connects_and_a_redelivery_changes_nothing(client, channel, no_whapi):
    post(client, channel, fixture("users_post"))
    assert outcome() == "applied"
    channel = reload(channel)
    assert (channel.state, channel.connected_number) == ("connected", "61371989950")
    # Whapi confirms soon, and a reconnect finds our webhooks still in place.
    assert checks_soon(channel) == {"health", "settings"}

    Channel.objects.filter(pk=channel.pk).update(health_check_due_at=None, settings_check_due_at=None)
    post(client, channel, fixture("users_post"))
    assert outcome() == "duplicate"
    assert checks_soon(channel) == set()
    assert channel.timeline.count() == 1


def test_a_burst_of_callbacks_makes_one_follow_up_check(client, channel, whapi):
    for _ in range(3):
        post(client, channel, fixture("users_post"))
        post(client, channel, fixture("users_delete"))
    assert checks_soon(channel) == {"health", "settings"}
    assert len(whapi.calls) == 0  # no Whapi call inside a request (none is registered yet)
    # One health check and one read-back when the sweep comes by, however many callbacks asked.
    whapi.add(responses.GET, f"{GATE}/health", json=health("QR", 1713774883, 900, 3)["health"])
    whapi.add(responses.GET, f"{GATE}/settings", json=configure.desired_settings(channel))
    with time_machine.travel(timezone.now() + timedelta(seconds=3)):
        assert checks.checks_sweep(seconds=0, concurrency=1) == 2
    assert [call.request.url.split("?")[0].rsplit("/", 1)[1] for call in whapi.calls] == ["health", "settings"]
    assert reload(channel).state == "disconnected"


def test_the_same_number_connecting_again_after_a_logout_is_applied(client, channel, no_whapi):
    post(client, channel, fixture("users_post"))
    post(client, channel, fixture("users_delete"))
    assert outcome() == "applied"
    post(client, channel, health("QR", 1713774883, 900, 3))  # Whapi's health confirms the logout
    channel = reload(channel)
    assert (channel.state, channel.connected_number) == ("disconnected", "")

    post(client, channel, fixture("users_post"))
    assert outcome() == "applied"
    channel = reload(channel)
    assert (channel.state, channel.connected_number) == ("connected", "61371989950")
    assert [e.to_state for e in channel.timeline.order_by("at", "id")] == ["connected", "disconnected", "connected"]


def test_a_duplicate_logout_changes_nothing(client, channel, no_whapi):
    post(client, channel, fixture("users_post"))
    post(client, channel, fixture("users_delete"))
    post(client, channel, fixture("users_delete"))
    assert outcome() == "duplicate"
    assert reload(channel).timeline.count() == 1  # connected; the disconnect waits for Whapi's health


def test_a_logout_is_shown_as_checking_until_whapis_health_confirms_it(client, channel, alice, no_whapi):
    from django.urls import reverse

    post(client, channel, fixture("users_post"))
    post(client, channel, fixture("users_delete"))
    assert outcome() == "applied"
    stored = reload(channel)
    assert (stored.state, stored.connected_number) == ("connected", "61371989950")
    assert "health" in checks_soon(channel)
    client.force_login(alice)
    status = client.get(reverse("channels_app:channel_status", args=[channel.code])).json()
    assert "Checking the connection with Whapi" in status["html"] and status["poll"] is True

    post(client, channel, health("QR", 1713774883, 900, 3))
    stored = reload(channel)
    assert (stored.state, stored.connected_number, stored.disconnect_reported_at) == ("disconnected", "", None)


def test_a_replayed_or_spurious_logout_does_not_flip_a_connected_channel(client, channel, no_whapi):
    post(client, channel, health("AUTH", 1713774883, 100, 4, {"id": "61371989950"}))
    post(client, channel, fixture("users_delete"))
    post(client, channel, health("AUTH", 1713774883, 200, 4, {"id": "61371989950"}))  # Whapi: still linked
    stored = reload(channel)
    assert (stored.state, stored.connected_number, stored.disconnect_reported_at) == (
        "connected",
        "61371989950",
        None,
    )
    assert [event.to_state for event in stored.timeline.all()] == ["connected"]


def test_unknown_event_types_are_stored_and_acknowledged(client, channel, no_whapi):
    response = post(client, channel, fixture("messages_post"))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.outcome) == ("messages", "ignored")
    assert reload(channel).state == channel.state


def test_qr_pushes_are_acknowledged(client, channel, no_whapi):
    assert post(client, channel, fixture("qr_patch")).status_code == 200


def test_a_callback_for_a_deleted_channel_is_stored_and_changes_nothing(client, channel, no_whapi):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.DELETED)
    response = post(client, channel, fixture("users_post"))
    assert response.status_code == 200
    assert WebhookEvent.objects.get().outcome == "ignored"
    channel = reload(channel)
    assert (channel.state, channel.connected_number) == ("deleted", "")


def test_it_rejects_a_missing_secret(client, channel, no_whapi):
    assert post(client, channel, fixture("users_post"), secret=False).status_code == 401
    assert not WebhookEvent.objects.exists()
    assert reload(channel).state == "waiting_scan"


def test_it_rejects_a_wrong_secret(client, channel, no_whapi):
    assert post(client, channel, fixture("users_post"), secret="x" * 43).status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_valid_secret_of_another_channel_cannot_move_this_one(client, channel, project, no_whapi):
    other = make_channel(project, whapi_id="SHAZAM-3HDYQ", name="Other")
    response = post(client, other, fixture("users_post"))  # other's secret, body names MANTIS-M72HC
    assert response.status_code == 401
    assert reload(channel).connected_number == ""
    assert not WebhookEvent.objects.exists()


def test_it_rejects_an_unknown_channel(client, channel, no_whapi):
    response = post(client, channel, fixture("users_post", channel_id="NOTOUR-CHAN1"))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        '{"channel_id": 42, "event": {"type": "users", "event": "post"}}',
        '{"channel_id": "MANTIS-M72HC", "event": "users.post"}',
        '{"channel_id": "MANTIS-M72HC", "event": {"type": ["users"], "event": "post"}}',
        b"\xff\xfe\x00",
    ],
)
def test_malformed_bodies_are_refused_with_400(client, channel, no_whapi, raw):
    assert post(client, channel, None, raw=raw).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_an_authenticated_callback_with_a_malformed_payload_is_kept_in_the_ledger(client, channel, no_whapi):
    body = fixture("health_qr")
    del body["health"]["uptime"]
    response = post(client, channel, body)
    assert response.status_code == 400
    event = WebhookEvent.objects.get()
    assert event.outcome == "failed"
    assert "uptime" in event.detail
    assert reload(channel).health_status == ""


def test_users_post_without_a_number_is_refused(client, channel, no_whapi):
    body = fixture("users_post", user={"name": "No id"})
    assert post(client, channel, body).status_code == 400
    assert reload(channel).state == "waiting_scan"


def test_oversized_bodies_are_refused(client, channel, no_whapi):
    body = fixture("messages_post")
    body["padding"] = "x" * 70_000
    assert post(client, channel, body).status_code == 413
    assert not WebhookEvent.objects.exists()


def test_it_rejects_get(client, channel):
    assert client.get(URL).status_code == 405


def test_it_needs_no_csrf_token(channel, no_whapi):
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, channel, fixture("health_qr")).status_code == 200


def test_health_before_the_webhooks_are_verified_does_not_change_the_lifecycle(client, project, no_whapi):
    channel = make_channel(project, state=Channel.State.CONFIGURING, webhooks_verified_at=None)
    post(client, channel, fixture("health_qr"))
    channel = reload(channel)
    assert (channel.state, channel.health_status) == ("configuring", "QR")


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("ERROR", "error"),
        ("SYNC_ERROR", "error"),
        ("STOP", "stopped"),
        ("LAUNCH", "waiting_scan"),
        ("NEW", "waiting_scan"),
    ],
)
def test_health_statuses_map_to_states(client, channel, no_whapi, text, state):
    post(client, channel, health(text, 1713774883, 300))
    channel = reload(channel)
    assert (channel.state, channel.health_status) == (state, text)


def test_a_health_error_clears_when_the_channel_recovers(client, channel, no_whapi):
    post(client, channel, health("SYNC_ERROR", 1713774883, 300))
    assert reload(channel).last_error
    post(client, channel, health("QR", 1713774883, 400, 3))
    channel = reload(channel)
    assert (channel.state, channel.last_error) == ("waiting_scan", "")


def test_stop_after_active_till_means_expired(client, project, no_whapi):
    from datetime import timedelta

    from django.utils import timezone

    channel = make_channel(project, active_till=timezone.now() - timedelta(hours=1))
    post(client, channel, health("STOP", 1713774883, 300))
    assert reload(channel).state == "expired"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=20,
    ),
    keep_envelope=st.booleans(),
)
def test_no_body_causes_a_server_error(client, channel, body, keep_envelope):
    if keep_envelope and isinstance(body, dict):
        body = {**body, "channel_id": "MANTIS-M72HC", "event": {"type": "channel", "event": "post"}}
    response = post(client, channel, body)
    assert response.status_code in (200, 400, 401)


def test_the_receiver_authenticates_and_stores_in_two_statements(client, channel, no_whapi):
    """The receiver only authenticates and stores: one SELECT, one INSERT, no transaction and no lock;
    the answer says the callback was received, and the applier applies it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    post(client, channel, health("QR", 1713774883, 100, 3))
    with CaptureQueriesContext(connection) as queries:
        response = receive(client, channel, health("QR", 1713774883, 200, 3))
    assert response.status_code == 200 and response.json() == {"ok": True, "outcome": "received"}
    statements = [q["sql"] for q in queries.captured_queries]
    assert [sql.split()[0] for sql in statements] == ["SELECT", "INSERT"]
    assert "FOR UPDATE" not in statements[0]
    assert reload(channel).health_uptime == 100 and outcome() == "received"

    webhooks.callbacks_apply(seconds=0)
    assert reload(channel).health_uptime == 200 and outcome() == "applied"


def test_the_receivers_lookup_names_the_channel_table_and_columns_of_the_model():
    """The receiver's one statement of its own SQL follows the model: a renamed table or column
    fails here, with the names, rather than as a 503 on every callback."""
    meta = Channel._meta
    columns = [meta.get_field(name).column for name in ("id", "webhook_secret", "previous_webhook_secret")]
    expected = f"SELECT {', '.join(columns)} FROM {meta.db_table} WHERE {meta.get_field('whapi_id').column} = %s"
    assert expected == webhooks.CHANNEL_SECRETS


def test_the_applier_locks_each_channel_once_and_writes_it_once(client, channel, project, no_whapi):
    """A batch: one locking SELECT for its channels, one UPDATE per channel (plus one per state move,
    with its timeline row), one UPDATE for the ledger rows' outcomes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = make_channel(project, whapi_id="SHAZAM-3HDYQ", name="Other")
    for uptime in (100, 200, 300):
        receive(client, channel, health("QR", 1713774883, uptime, 3))
        receive(client, other, {**health("QR", 1713774883, uptime, 3), "channel_id": "SHAZAM-3HDYQ"})
    with CaptureQueriesContext(connection) as queries:
        assert webhooks.callbacks_apply(seconds=0) == 6
    statements = [q["sql"] for q in queries.captured_queries if q["sql"].split()[0] in ("SELECT", "UPDATE", "INSERT")]
    locks = [sql for sql in statements if sql.startswith("SELECT") and '"channels_app_channel"' in sql.split("FROM")[1]]
    # FOR NO KEY UPDATE: the receiver's INSERTs for these channels (a foreign key's key-share lock) do not wait.
    assert len(locks) == 1 and ("FOR NO KEY UPDATE" in locks[0]) is (connection.vendor == "postgresql")
    assert [sql.split()[0] for sql in statements].count("UPDATE") == 3  # two channels, one ledger update
    assert not any(sql.startswith("INSERT") for sql in statements)  # no state moved
    assert reload(channel).health_uptime == reload(other).health_uptime == 300
    assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {"applied"}


def test_callbacks_of_one_channel_are_applied_in_the_order_they_were_stored(client, channel, no_whapi):
    """A connect, then a logout of the same number, taken by two batches of one: the logout is
    decided after the connect, as if the callbacks had been applied as they came."""
    receive(client, channel, fixture("users_post"))
    receive(client, channel, fixture("users_delete"))
    assert webhooks.callbacks_apply_batch(limit=1) == 1
    assert webhooks.callbacks_apply_batch(limit=1) == 1
    events = list(WebhookEvent.objects.order_by("pk").values_list("event_method", "outcome", "detail"))
    assert [(method, result) for method, result, _ in events] == [("post", "applied"), ("delete", "applied")]
    assert "health check confirms it" in events[1][2]
    stored = reload(channel)
    assert (stored.state, stored.connected_number) == ("connected", "61371989950")
    assert stored.disconnect_reported_at is not None


def test_in_one_batch_each_callback_is_decided_from_what_the_one_before_left(client, channel, no_whapi):
    receive(client, channel, health("AUTH", 1713774883, 100, 4, {"id": "61371989950"}))
    receive(client, channel, fixture("users_delete"))
    receive(client, channel, health("QR", 1713774883, 200, 3))  # Whapi's health confirms the logout
    receive(client, channel, health("AUTH", 1713774883, 150, 4, {"id": "61371989950"}))  # late
    receive(client, channel, fixture("users_post"))
    webhooks.callbacks_apply(seconds=0)
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["applied", "applied", "applied", "stale", "applied"]
    stored = reload(channel)
    assert [(e.from_state, e.to_state) for e in stored.timeline.order_by("id")] == [
        ("waiting_scan", "connected"),
        ("connected", "disconnected"),
        ("disconnected", "connected"),
    ]
    assert (stored.state, stored.health_status, stored.health_uptime) == ("connected", "QR", 200)


@pytest.mark.django_db(transaction=True)
def test_two_appliers_at_once_keep_each_channels_order(channel, no_whapi):
    """Two appliers (two worker clusters): the one that holds a channel's lock applies its oldest
    callbacks; the other passes the channel over instead of applying a later callback first."""
    import threading

    from django.db import connection, transaction

    skip_without_row_locks()
    client = Client()
    receive(client, channel, fixture("users_post"))
    receive(client, channel, fixture("users_delete"))
    applied_by_the_other = []
    with transaction.atomic():
        Channel.objects.select_for_update().get(pk=channel.pk)  # an applier holding the channel

        def other_applier():
            try:
                applied_by_the_other.append(webhooks.callbacks_apply_batch())
            finally:
                connection.close()

        thread = threading.Thread(target=other_applier)
        thread.start()
        thread.join(10)
    assert applied_by_the_other == [0]
    assert webhooks.callbacks_apply_batch(limit=1) == 1  # this one: the connect, then the logout
    assert webhooks.callbacks_apply_batch(limit=1) == 1
    assert list(WebhookEvent.objects.order_by("pk").values_list("outcome", flat=True)) == ["applied", "applied"]
    assert reload(channel).disconnect_reported_at is not None


def another_worker_writes_after_receiving(channel, **meanwhile):
    """Store `meanwhile` on the channel after the callback was stored and before it is applied, as
    another worker (a health check, staff) would."""
    Channel.objects.filter(pk=channel.pk).update(**meanwhile)


def test_a_channel_changed_after_the_callback_was_stored_is_decided_from_what_is_stored_now(client, channel, no_whapi):
    """A newer report stored by another worker while the callback waited is not rolled back."""
    post(client, channel, health("AUTH", 1713774883, 100, 4, {"id": "14155550123"}))
    receive(client, channel, health("AUTH", 1713774883, 200, 4, {"id": "14155550123"}))
    another_worker_writes_after_receiving(channel, health_uptime=300)
    webhooks.callbacks_apply(seconds=0)
    assert outcome() == "stale"
    assert reload(channel).health_uptime == 300
    assert WebhookEvent.objects.filter(outcome="stale").count() == 1


@pytest.mark.parametrize(
    ("meanwhile", "expected"),
    [
        # Staff deleted the channel: the report is ignored, not applied to it.
        ({"state": "deleted"}, {"outcome": "ignored", "state": "deleted", "health_uptime": 100}),
        # A disconnect was stored: the connected report moves the state back, with a timeline row.
        (
            {"state": "disconnected", "connected_number": ""},
            {"outcome": "applied", "state": "connected", "health_uptime": 200, "moves": 1},
        ),
        # A failed configuration: health does not clear an error it cannot vouch for.
        (
            {"state": "error", "error_source": "configure"},
            {"outcome": "applied", "state": "error", "health_uptime": 200, "error_source": "configure"},
        ),
    ],
)
def test_every_field_a_report_is_decided_from_is_read_under_the_lock(client, channel, no_whapi, meanwhile, expected):
    post(client, channel, health("AUTH", 1713774883, 100, 4, {"id": "14155550123"}))
    moves_before = ChannelEvent.objects.filter(channel=channel).count()
    receive(client, channel, health("AUTH", 1713774883, 200, 4, {"id": "14155550123"}))
    another_worker_writes_after_receiving(channel, **meanwhile)
    webhooks.callbacks_apply(seconds=0)
    stored = reload(channel)
    assert outcome() == expected["outcome"]
    assert (stored.state, stored.health_uptime) == (expected["state"], expected["health_uptime"])
    assert ChannelEvent.objects.filter(channel=channel).count() - moves_before == expected.get("moves", 0)
    assert stored.error_source == expected.get("error_source", "")


def test_a_callback_whose_channel_was_removed_before_it_was_applied_is_marked_so(client, channel, no_whapi):
    receive(client, channel, fixture("users_post"))
    Channel.objects.filter(pk=channel.pk).delete()
    webhooks.callbacks_apply(seconds=0)
    assert outcome() == "unknown_channel"


def test_a_callback_that_fails_before_authentication_is_not_stored(client, channel, no_whapi):
    """Replay trusts the ledger, so nothing unauthenticated may land there, even when the database fails."""
    from django.db import OperationalError, connection

    def channel_reads_fail(execute, sql, params, many, context):
        if sql == webhooks.CHANNEL_SECRETS:
            raise OperationalError("database unavailable")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(channel_reads_fail):
        response = receive(client, channel, fixture("users_delete"), secret="forged-secret")
    assert response.status_code == 503
    assert not WebhookEvent.objects.exists()


def test_a_secret_no_key_decrypts_is_answered_503_and_nothing_is_stored(client, channel, no_whapi, settings):
    """FIELD_ENCRYPTION_KEYS lost the key the secret was written with: nothing can vouch for the
    callback, so it is not stored, and Whapi retries until the key is back."""
    from cryptography.fernet import Fernet

    secret = channel.webhook_secret
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    response = receive(client, channel, fixture("users_delete"), secret=secret)
    assert response.status_code == 503 and "Temporarily unable" in response.json()["error"]
    assert not WebhookEvent.objects.exists()


def test_a_callback_the_database_will_not_store_is_answered_503_for_a_retry(client, channel, no_whapi, monkeypatch):
    from django.db import IntegrityError

    from channels_app import webhooks

    def refused(self, *args, **kwargs):
        raise IntegrityError("insert or update on table violates foreign key constraint")

    monkeypatch.setattr(webhooks.WebhookEvent, "save", refused)
    response = post(client, channel, fixture("users_post", event={"type": "messages", "event": "post"}))
    assert response.status_code == 503
    assert "Temporarily unable" in response.json()["error"]
    assert not WebhookEvent.objects.exists()


def test_a_callback_whose_handler_fails_is_kept_for_replay_and_the_batch_goes_on(
    client, channel, project, no_whapi, monkeypatch
):
    from dataclasses import replace

    def broken(channel, user):
        raise RuntimeError("bug")

    handler = webhooks.EVENT_HANDLERS[("users", "post")]
    monkeypatch.setitem(webhooks.EVENT_HANDLERS, ("users", "post"), replace(handler, decide=broken))
    other = make_channel(project, whapi_id="SHAZAM-3HDYQ", name="Other")
    receive(client, channel, health("QR", 1713774883, 100, 3))
    response = receive(client, channel, fixture("users_post"))
    receive(client, other, {**health("QR", 1713774883, 100, 3), "channel_id": "SHAZAM-3HDYQ"})
    assert response.status_code == 200  # taken: the failure is the applier's, after the answer
    webhooks.callbacks_apply(seconds=0)
    events = list(WebhookEvent.objects.order_by("pk"))
    assert [(event.outcome, event.channel) for event in events] == [
        ("applied", channel),
        ("failed", channel),
        ("applied", other),
    ]
    assert events[1].detail == "internal error: RuntimeError"
    assert reload(channel).health_uptime == 100 and reload(channel).connected_number == ""
    assert reload(other).health_uptime == 100

    monkeypatch.setitem(webhooks.EVENT_HANDLERS, ("users", "post"), handler)  # fixed
    assert webhooks.replay(events[1]) == "applied"
    assert reload(channel).connected_number == "61371989950"


def test_a_failed_action_does_not_keep_a_recovered_channel_in_error(client, channel, no_whapi):
    post(client, channel, health("ERROR", 1713774883, 300, 5))
    Channel.objects.filter(pk=channel.pk).update(error_source="action", last_error="Whapi could not log the number out")
    post(client, channel, health("AUTH", 1713774883, 400, 4, {"id": "14155550123"}))
    channel = reload(channel)
    assert (channel.state, channel.last_error) == ("connected", "")


# ------------------------------------------------------------------------------------------------
# Hostile or odd bytes
# ------------------------------------------------------------------------------------------------
SECRET_META = "HTTP_" + WEBHOOK_SECRET_HEADER.upper().replace("-", "_")


def test_deeply_nested_json_is_refused_with_400_not_500(client, channel, no_whapi):
    raw = '{"a":' * 1000 + "1" + "}" * 1000
    response = post(client, channel, None, raw=raw, secret="forged")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_chunked_callback_without_content_length_is_read_and_applied(channel, no_whapi):
    body = json.dumps(health("QR", 1713774883, 100, 3)).encode()
    request = RequestFactory().post(URL, data=b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = io.BytesIO(body)  # what a server hands on for Transfer-Encoding: chunked
    request.META[SECRET_META] = channel.webhook_secret
    request._stream = io.BytesIO(b"")
    response = webhooks.whapi_webhook(request)
    assert response.status_code == 200
    webhooks.callbacks_apply(seconds=0)
    assert outcome() == "applied"
    assert reload(channel).health_uptime == 100


def test_a_chunked_body_over_the_limit_is_refused(channel, no_whapi):
    request = RequestFactory().post(URL, data=b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = io.BytesIO(b" " * (webhooks.MAX_BODY + 10))
    request.META[SECRET_META] = channel.webhook_secret
    assert webhooks.whapi_webhook(request).status_code == 413


@pytest.mark.parametrize("channel_id", ["MANTIS-M72HC\nERROR forged", "MANTIS\x00M72HC"])
def test_a_channel_id_with_control_characters_is_refused(client, channel, no_whapi, channel_id, caplog):
    body = health("QR", 1713774883, 100, 3)
    body["channel_id"] = channel_id
    with caplog.at_level(logging.INFO):
        response = post(client, channel, body)
    assert response.status_code == 400
    assert not any("ERROR forged" in record.getMessage() for record in caplog.records)


def test_refused_callbacks_are_counted_not_logged_one_by_one(client, channel, no_whapi, caplog, monkeypatch):
    monkeypatch.setattr(webhooks, "_refusals", webhooks.RefusalCounter())
    with caplog.at_level(logging.INFO, logger="channels_app.webhooks"):
        for _ in range(20):
            assert post(client, channel, fixture("users_delete"), secret="forged").status_code == 401
    lines = [record for record in caplog.records if record.name == "channels_app.webhooks"]
    assert len(lines) <= 1
    assert webhooks._refusals.count >= 19


def test_a_utf16_callback_is_stored_once_and_applied(client, channel, no_whapi):
    raw = json.dumps(health("QR", 1713774883, 100, 3)).encode("utf-16")
    response = post(client, channel, None, raw=raw)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.outcome == "applied" and "\x00" not in event.body and '"QR"' in event.body


def test_a_nul_byte_in_the_status_text_is_removed_and_the_ledger_says_so(client, channel, no_whapi):
    response = post(client, channel, health("Q\u0000R", 1713774883, 100, 3))
    assert response.status_code == 200
    stored = reload(channel)
    assert stored.health_status == "QR" and stored.state == "waiting_scan"
    assert "NUL" in WebhookEvent.objects.get().detail


def test_an_over_long_status_text_is_cut_with_a_marker(client, channel, no_whapi):
    response = post(client, channel, health("X" * 100, 1713774883, 100, 3))
    assert response.status_code == 200
    stored = reload(channel).health_status
    assert len(stored) <= 32 and stored.endswith("…")
    assert "cut" in WebhookEvent.objects.get().detail


def test_a_status_code_out_of_range_is_not_stored_and_the_ledger_says_so(client, channel, no_whapi):
    response = post(client, channel, health("QR", 1713774883, 100, 2**40))
    assert response.status_code == 200
    assert reload(channel).health_code is None
    assert "status code" in WebhookEvent.objects.get().detail


def test_a_user_id_over_32_digits_is_stored_once_and_answered_200(client, channel, no_whapi):
    body = fixture("users_post", user={"id": "1" * 40, "name": "Long"})
    response = post(client, channel, body)
    assert response.status_code == 200
    assert len(reload(channel).connected_number) <= 32
    assert WebhookEvent.objects.count() == 1 and "cut" in WebhookEvent.objects.get().detail


def test_a_push_name_over_200_characters_is_cut(client, channel, no_whapi):
    user = {"id": "14155550123", "name": "N" * 500}
    response = post(client, channel, health("AUTH", 1713774883, 100, 4, user))
    assert response.status_code == 200
    assert len(reload(channel).connected_name) <= 200
    assert "cut" in WebhookEvent.objects.get().detail


def test_an_authenticated_callback_is_stored_once_even_when_its_values_need_cleaning(client, channel, no_whapi):
    body = fixture("users_post", user={"id": "14155550123", "name": "A\u0000B"})
    assert post(client, channel, body).status_code == 200
    assert post(client, channel, body).status_code == 200  # Whapi's retry of the same body
    assert reload(channel).connected_name == "AB"
    assert Channel.objects.get(pk=channel.pk).state == "connected"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (health("QR", 10**20, 100, 3), "out of range"),
        (health("Q\ud83dR", 1713774883, 100, 3), "cannot be stored"),
        (fixture("users_post", user={"id": "14155550123", "name": "half \ud83d emoji"}), "cannot be stored"),
    ],
)
def test_values_no_database_stores_are_made_safe_and_answered_200_once(client, channel, no_whapi, body, what):
    assert post(client, channel, body).status_code == 200
    assert post(client, channel, body).status_code == 200  # Whapi's retry, if any
    events = WebhookEvent.objects.all()
    assert events.count() == 2 and what in events.first().detail


def test_an_event_type_no_database_stores_is_answered_without_a_500(client, channel, no_whapi):
    body = fixture("messages_post", event={"type": "mess\ud83dages", "event": "post"})
    response = post(client, channel, body)
    assert response.status_code == 200
    assert "cannot be stored" in WebhookEvent.objects.get().detail


def test_a_non_ascii_content_length_is_a_413_not_a_500(channel, no_whapi):
    request = RequestFactory().post(URL, data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = "²"
    assert webhooks.whapi_webhook(request).status_code == 413


def test_django_does_not_log_each_refused_callback_either(client, channel, no_whapi, caplog):
    from portal.log_filters import QuietRefusals

    with caplog.at_level(logging.WARNING, logger="django.request"):
        for _ in range(5):
            post(client, channel, fixture("users_delete"), secret="forged")
    refused = [record for record in caplog.records if record.name == "django.request"]
    assert refused and not any(QuietRefusals().filter(record) for record in refused)
