"""The hot path's precompiled statements store and read exactly what the ORM stores and reads."""

import gc
import threading
import time
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app import rows
from channels_app.models import Channel, ChannelEvent, WebhookEvent
from channels_app.status import STATUS_FIELDS
from tests.conftest import make_channel


@pytest.fixture
def connected(project):
    return make_channel(
        project,
        state=Channel.State.CONNECTED,
        health_status="AUTH",
        health_code=4,
        health_start_at=1_713_774_883,
        health_uptime=42,
        connected_number="14155550123",
        connected_name="Zoë",
        connected_at=timezone.now() - timedelta(hours=1),
    )


def test_select_reads_what_the_orm_reads(connected):
    loaded = rows.select(Channel, STATUS_FIELDS, "whapi_id", connected.whapi_id)
    expected = Channel.objects.only(*STATUS_FIELDS).get(pk=connected.pk)
    for name in STATUS_FIELDS:
        assert getattr(loaded, name) == getattr(expected, name), name
    # The encrypted secret is decrypted, and datetimes come back aware on every database.
    assert loaded.webhook_secret == connected.webhook_secret and len(loaded.webhook_secret) >= 32
    assert timezone.is_aware(loaded.connected_at) and timezone.is_aware(loaded.active_till)
    assert loaded.active_till == connected.active_till


def test_select_leaves_other_fields_to_load_on_access(connected):
    loaded = rows.select(Channel, ("id", "state"), "whapi_id", connected.whapi_id)
    assert loaded.get_deferred_fields() >= {"name", "token", "webhook_secret"}
    with CaptureQueriesContext(connection) as queries:
        assert loaded.name == "Shop bot"
    assert len(queries) == 1
    # A loaded instance saves like one the ORM loaded.
    loaded.name = "Renamed"
    loaded.save(update_fields=["name"])
    assert Channel.objects.get(pk=connected.pk).name == "Renamed"


def test_select_finds_nothing_for_an_unknown_key(connected):
    assert rows.select(Channel, STATUS_FIELDS, "whapi_id", "NOT-THERE") is None


def test_select_refuses_a_field_the_model_does_not_have(connected):
    with pytest.raises(ValueError, match="not concrete fields"):
        rows.select(Channel, ("id", "no_such_field"), "whapi_id", connected.whapi_id)


@pytest.mark.django_db(transaction=True)
def test_select_locks_the_row_where_the_database_has_row_locks(project):
    channel = make_channel(project)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert rows.select(Channel, ("id",), "whapi_id", channel.whapi_id, lock=True).pk == channel.pk
    sql = queries[-1]["sql"]
    assert sql.endswith("FOR UPDATE") == connection.features.has_select_for_update


def test_update_writes_what_the_orm_writes(connected, project):
    twin = make_channel(project, whapi_id="TWIN-1", state=connected.state)
    now = timezone.now()
    values = {
        "health_status": "QR",
        "health_uptime": 43,
        "connected_number": "",
        "last_confirmed_at": now,
        "status_stale": True,
        "state": Channel.State.DISCONNECTED,
        "webhook_secret": "a-new-secret-of-enough-length-0123456789",
    }
    assert rows.update(Channel, connected.pk, values) == 1
    Channel.objects.filter(pk=twin.pk).update(**values)
    mine, theirs = Channel.objects.get(pk=connected.pk), Channel.objects.get(pk=twin.pk)
    for name, value in values.items():
        assert getattr(mine, name) == getattr(theirs, name) == value, name
    # Secrets are encrypted on the way in, as the ORM does it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM channels_app_channel WHERE id = %s", [connected.pk])
        assert "a-new-secret" not in cursor.fetchone()[0]


def test_update_counts_the_rows_it_changed(connected):
    assert rows.update(Channel, connected.pk + 1000, {"state": Channel.State.ERROR}) == 0
    assert rows.update(Channel, connected.pk, {}) == 0
    assert Channel.objects.get(pk=connected.pk).state == Channel.State.CONNECTED


def test_update_refuses_expressions(connected):
    with pytest.raises(TypeError, match="expression"):
        rows.update(Channel, connected.pk, {"health_uptime": F("health_uptime") + 1})


def test_insert_stores_what_save_stores(connected):
    event = rows.insert(WebhookEvent(channel=connected, whapi_channel_id="MANTIS-M72HC", event_type="x", body="{}"))
    twin = WebhookEvent(channel=connected, whapi_channel_id="MANTIS-M72HC", event_type="x", body="{}")
    twin.save()
    assert event.pk and event.pk != twin.pk and not event._state.adding
    stored, saved = WebhookEvent.objects.get(pk=event.pk), WebhookEvent.objects.get(pk=twin.pk)
    # Defaults (received_at, outcome) are filled in as on save().
    assert stored.outcome == saved.outcome == WebhookEvent.Outcome.RECEIVED
    assert abs(stored.received_at - saved.received_at) < timedelta(seconds=5)
    assert (stored.channel_id, stored.body, stored.detail) == (saved.channel_id, saved.body, saved.detail)


def test_insert_sets_foreign_keys_and_the_key_it_got(connected):
    at = timezone.now()
    event = rows.insert(ChannelEvent(channel=connected, from_state="a", to_state="b", source="webhook", at=at))
    assert list(connected.timeline.values_list("pk", "from_state", "to_state", "at")) == [(event.pk, "a", "b", at)]


def test_insert_refuses_an_object_that_has_a_key(connected):
    existing = ChannelEvent.objects.create(channel=connected, to_state="b", source="webhook")
    with pytest.raises(ValueError, match="primary key"):
        rows.insert(existing)


def _ledger(channel, **fields):
    return WebhookEvent(
        **{"channel": channel, "whapi_channel_id": channel.whapi_id, "event_type": "channel", "body": "{}", **fields}
    )


def test_update_and_insert_writes_both_when_the_row_is_as_expected(connected):
    expected = {"health_uptime": 42, "state": Channel.State.CONNECTED, "last_error_at": None}
    event = _ledger(connected)
    assert rows.update_and_insert(Channel, connected.pk, {"health_uptime": 43}, expected=expected, obj=event)
    assert Channel.objects.get(pk=connected.pk).health_uptime == 43
    stored = WebhookEvent.objects.get()
    assert (stored.pk, stored.channel_id, stored.outcome) == (event.pk, connected.pk, "received")
    assert not event._state.adding


@pytest.mark.parametrize(
    "expected",
    [
        {"health_uptime": 41},  # another report was stored meanwhile
        {"last_error_at": timezone.now()},  # NULL does not match a value
        {"connected_number": "14155550123", "state": Channel.State.DISCONNECTED},
    ],
)
def test_update_and_insert_writes_neither_when_the_row_changed(connected, expected):
    event = _ledger(connected)
    assert not rows.update_and_insert(Channel, connected.pk, {"health_uptime": 43}, expected=expected, obj=event)
    assert Channel.objects.get(pk=connected.pk).health_uptime == 42
    assert not WebhookEvent.objects.exists() and event.pk is None


def test_update_and_insert_writes_neither_when_the_row_is_gone(connected):
    event = _ledger(connected)
    assert not rows.update_and_insert(Channel, connected.pk + 1000, {"health_uptime": 1}, expected={}, obj=event)
    assert not WebhookEvent.objects.exists()


def test_update_and_insert_compares_datetimes_as_stored(connected):
    stored = Channel.objects.get(pk=connected.pk)
    expected = {"connected_at": stored.connected_at, "active_till": stored.active_till}
    assert rows.update_and_insert(
        Channel, connected.pk, {"health_uptime": 43}, expected=expected, obj=_ledger(connected)
    )
    assert WebhookEvent.objects.count() == 1


def test_update_and_insert_stores_what_save_stores(connected):
    event = WebhookEvent(
        channel=connected, whapi_channel_id="MANTIS-M72HC", event_type="users", event_method="post", body='{"a": 1}'
    )
    event.outcome, event.detail = WebhookEvent.Outcome.APPLIED, "detail ✓"
    assert rows.update_and_insert(Channel, connected.pk, {"health_uptime": 43}, expected={}, obj=event)
    twin = WebhookEvent(
        channel=connected, whapi_channel_id="MANTIS-M72HC", event_type="users", event_method="post", body='{"a": 1}'
    )
    twin.outcome, twin.detail, twin.received_at = event.outcome, event.detail, event.received_at
    twin.save()
    stored, saved = WebhookEvent.objects.get(pk=event.pk), WebhookEvent.objects.get(pk=twin.pk)
    for field in WebhookEvent._meta.concrete_fields:
        if not field.primary_key:
            assert getattr(stored, field.attname) == getattr(saved, field.attname), field.name


def test_update_and_insert_refuses_what_save_refuses(connected):
    """A value too long for its column: PostgreSQL refuses it from both (nothing is cut short)."""

    def outcome(write):
        try:
            with transaction.atomic():
                write()
        except DatabaseError as exc:
            return type(exc)
        return None

    too_long = "X" * 40
    by_save = outcome(lambda: _ledger(connected, whapi_channel_id=too_long).save())
    by_rows = outcome(
        lambda: rows.update_and_insert(
            Channel, connected.pk, {"health_uptime": 1}, expected={}, obj=_ledger(connected, whapi_channel_id=too_long)
        )
    )
    assert by_rows == by_save
    assert (by_save is not None) == (connection.vendor == "postgresql")
    assert {len(event.whapi_channel_id) for event in WebhookEvent.objects.all()} <= {40}


def test_update_and_insert_takes_no_comparison_it_could_not_make(connected):
    with pytest.raises(ValueError, match="encrypted"):
        rows.update_and_insert(
            Channel, connected.pk, {"health_uptime": 1}, expected={"token": connected.token}, obj=_ledger(connected)
        )
    with pytest.raises(ValueError, match="values"):
        rows.update_and_insert(Channel, connected.pk, {}, expected={}, obj=_ledger(connected))
    assert not WebhookEvent.objects.exists()


postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL row locks")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_update_and_insert_waits_for_a_locked_writer_and_sees_its_change(project):
    """Another worker holds the channel locked and stores a newer report: the one statement waits,
    finds the channel changed, and writes nothing."""
    channel = make_channel(project, health_start_at=1, health_uptime=10, state=Channel.State.CONNECTED)
    locked = threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                rows.select(Channel, ("id",), "id", channel.pk, lock=True)
                rows.update(Channel, channel.pk, {"health_uptime": 20})
                locked.set()
                time.sleep(0.5)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert locked.wait(10)
    started = time.monotonic()
    stored = rows.update_and_insert(
        Channel, channel.pk, {"health_uptime": 15}, expected={"health_uptime": 10}, obj=_ledger(channel)
    )
    waited = time.monotonic() - started
    thread.join()
    assert (stored, waited > 0.3) == (False, True)
    assert Channel.objects.get(pk=channel.pk).health_uptime == 20
    assert not WebhookEvent.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_reads_in_threads_that_ended_leave_no_connection_open(project):
    channel = make_channel(project)

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = sessions()
    for _ in range(3):
        thread = threading.Thread(target=lambda: rows.select(Channel, ("id", "webhook_secret"), "id", channel.pk))
        thread.start()
        thread.join()
    gc.collect()
    deadline = time.monotonic() + 5
    while sessions() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions() == before
