"""The API key service: a key is shown once and kept as a prefix and a SHA-256; it authenticates
while it is active and matches exactly; "last used" is written at most once a minute; a channel key
belongs to its channel's customer; making and revoking a key is audited."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import keys
from api.models import ApiKey
from channels_app.models import AuditLog, Customer

CUSTOMER = AuditLog.Source.CUSTOMER


def make(customer, actor, **fields):
    fields.setdefault("can_write", False)
    return keys.api_key_create(name="CRM sync", customer=customer, actor=actor, source=CUSTOMER, **fields)


def test_a_key_is_returned_once_and_only_its_hash_is_stored(alice, customer):
    row, key = make(customer, alice)
    assert key.startswith(f"wpk_{row.prefix}_") and len(row.prefix) == keys.PREFIX_LENGTH
    stored = ApiKey.objects.filter(pk=row.pk).values().get()
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    secret_part = key.split("_", 2)[2]
    assert all(secret_part not in str(value) for value in stored.values())
    assert (row.customer, row.channel, row.scope, row.created_by) == (customer, None, "customer", alice)
    assert row.name == "CRM sync" and not row.can_write and row.active


def test_two_keys_differ_in_prefix_and_secret(alice, customer):
    (first, first_key), (second, second_key) = make(customer, alice), make(customer, alice)
    assert first.prefix != second.prefix and first_key != second_key


def test_a_key_authenticates_by_its_prefix_in_one_query(alice, customer):
    row, key = make(customer, alice, can_write=True)
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        found = keys.api_key_authenticate(key)
    assert found == row and found.customer == customer and found.can_write
    assert len(queries) == 1 and "prefix" in queries[0]["sql"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # the right prefix, a wrong secret
        lambda key: key.replace("wpk_", "xyz_"),
        lambda key: key.split("_", 2)[0] + "_" + key.split("_", 2)[1],  # no secret part
        lambda key: "wpk_short_" + key.split("_", 2)[2],
        lambda key: "",
        lambda key: "wpk_0123456789_" + key.split("_", 2)[2],  # a prefix no key has
    ],
    ids=["wrong-secret", "wrong-mark", "no-secret", "short-prefix", "empty", "unknown-prefix"],
)
def test_a_wrong_or_malformed_key_is_refused(alice, customer, mangle):
    _, key = make(customer, alice)
    assert keys.api_key_authenticate(mangle(key)) is None
    assert ApiKey.objects.get().last_used_at is None


def test_the_secret_is_compared_in_constant_time(alice, customer, monkeypatch):
    _, key = make(customer, alice)
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert keys.api_key_authenticate(key) is not None
    assert compared == [(ApiKey.objects.get().key_hash, hashlib.sha256(key.encode()).hexdigest())]


def test_last_used_is_written_at_most_once_a_minute(alice, customer):
    row, key = make(customer, alice)
    keys.api_key_authenticate(key)
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        keys.api_key_authenticate(key)
    assert len(queries) == 1, "a second use within the minute writes nothing"
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    keys.api_key_authenticate(key)
    assert ApiKey.objects.get().last_used_at > first


def test_a_revoked_key_is_refused_at_once_and_revoking_twice_says_so(alice, customer):
    row, key = make(customer, alice)
    assert keys.api_key_revoke(row, actor=alice, source=CUSTOMER) is True
    assert row.revoked_at is not None and not row.active
    assert keys.api_key_authenticate(key) is None
    assert keys.api_key_revoke(row, actor=alice, source=CUSTOMER) is False
    assert AuditLog.objects.filter(action="api_key.revoke").count() == 1


def test_a_channel_key_belongs_to_its_channels_customer(alice, customer, channel):
    row, _ = make(None, alice, channel=channel)
    assert (row.customer, row.channel, row.scope) == (customer, channel, "channel")
    other = Customer.objects.create(name="Other Inc")
    with pytest.raises(ValueError):
        make(other, alice, channel=channel)
    assert ApiKey.objects.count() == 1


def test_a_channel_key_needs_a_channel_of_a_customer(alice, channel):
    channel.project.customer = None
    channel.project.save()
    channel.refresh_from_db()
    with pytest.raises(ValueError):
        make(None, alice, channel=channel)
    assert not ApiKey.objects.exists()


def test_a_partner_key_has_no_customer(admin_user):
    row, key = keys.api_key_create(
        name="Billing", customer=None, can_write=True, actor=admin_user, source=AuditLog.Source.STAFF
    )
    assert row.scope == "partner" and keys.api_key_authenticate(key) == row


def test_the_database_refuses_a_channel_key_without_a_customer(alice, customer, channel):
    row, _ = make(customer, alice, channel=channel)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.filter(pk=row.pk).update(customer=None)


def test_making_and_revoking_are_audited_under_the_customer(alice, customer):
    row, key = make(customer, alice)
    keys.api_key_revoke(row, actor=alice, source=CUSTOMER)
    records = list(AuditLog.objects.order_by("id").values_list("action", "actor", "customer", "source", "detail"))
    label = f"CRM sync ({row.prefix}…)"
    assert records == [
        ("api_key.create", alice.pk, customer.pk, CUSTOMER, label),
        ("api_key.revoke", alice.pk, customer.pk, CUSTOMER, label),
    ]
    assert all(key.split("_", 2)[2] not in str(record) for record in records)


def test_an_action_made_with_a_key_is_audited_under_the_key(alice, customer):
    api_key, _ = make(customer, alice, can_write=True)
    other, _ = keys.api_key_create(name="Robot", customer=customer, can_write=True, actor=api_key, source="api")
    record = AuditLog.objects.get(action="api_key.create", api_key=api_key.prefix)
    assert (record.actor, record.actor_label, record.source) == (None, api_key.audit_label, "api")
    assert other.created_by is None
