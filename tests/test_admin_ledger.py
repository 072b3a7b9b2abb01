"""The webhook ledger (read-only, filterable, replay through the handlers) and the audit log
(read-only, filterable) in the staff console, and `webhooks.replay` itself."""

from pathlib import Path

import pytest

from channels_app import actions, webhooks
from channels_app.models import AuditLog, Channel, Customer, WebhookEvent
from tests.admin_support import login_as, messages_of, url
from tests.conftest import make_channel

pytest_plugins = ["tests.admin_fixtures"]

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
Outcome = WebhookEvent.Outcome


def stored(channel: Channel | None, name: str, outcome: str = Outcome.FAILED, detail: str = "") -> WebhookEvent:
    """A callback in the ledger as the receiver stored it (body = a recorded Whapi payload)."""
    event_type, method = {"health_qr": ("channel", "post"), "users_post": ("users", "post")}[name]
    return WebhookEvent.objects.create(
        channel=channel,
        whapi_channel_id="MANTIS-M72HC",
        event_type=event_type,
        event_method=method,
        body=(FIXTURES / f"{name}.json").read_text(),
        outcome=outcome,
        detail=detail,
    )


# ------------------------------------------------------------------------------------------------
# webhooks.replay
# ------------------------------------------------------------------------------------------------
def test_replay_applies_a_callback_that_failed(channel):
    event = stored(channel, "users_post", detail="internal error: OperationalError")
    assert webhooks.replay(event) == Outcome.APPLIED
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == (Channel.State.CONNECTED, "61371989950")
    event.refresh_from_db()
    assert event.outcome == Outcome.APPLIED
    assert event.detail.startswith("replayed at ") and "(was failed: internal error: OperationalError)" in event.detail


def test_replaying_an_applied_callback_changes_nothing(channel):
    event = stored(channel, "health_qr", outcome=Outcome.APPLIED)
    webhooks.replay(event)  # the first application
    events_before = channel.timeline.count()
    assert webhooks.replay(event) == Outcome.DUPLICATE
    assert channel.timeline.count() == events_before


@pytest.mark.parametrize(
    ("body", "state", "channel_known", "outcome"),
    [
        ("not json", Channel.State.WAITING_SCAN, True, Outcome.FAILED),
        ('["a list"]', Channel.State.WAITING_SCAN, True, Outcome.FAILED),
        (None, Channel.State.DELETED, True, Outcome.IGNORED),
        (None, Channel.State.WAITING_SCAN, False, Outcome.UNKNOWN_CHANNEL),
    ],
)
def test_replay_records_why_it_did_nothing(project, body, state, channel_known, outcome):
    channel = make_channel(project, state=state) if channel_known else None
    event = stored(channel, "health_qr")
    if body is not None:
        WebhookEvent.objects.filter(pk=event.pk).update(body=body)
        event.refresh_from_db()
    assert webhooks.replay(event) == outcome
    assert WebhookEvent.objects.get(pk=event.pk).outcome == outcome


def test_replay_finds_the_channel_by_its_whapi_id(channel):
    event = stored(None, "health_qr")
    assert webhooks.replay(event) == Outcome.APPLIED
    assert WebhookEvent.objects.get(pk=event.pk).channel == channel


# ------------------------------------------------------------------------------------------------
# The ledger in the admin
# ------------------------------------------------------------------------------------------------
def test_the_replay_button_replays_and_audits(staff_client, channel):
    event = stored(channel, "users_post")
    page = staff_client.get(url("webhookevent_change", event.pk)).content.decode()
    assert "Replay through the handlers" in page and "61371989950" in page  # the body, pretty-printed
    response = staff_client.post(url("webhookevent_replay", event.pk))
    assert response["Location"] == url("webhookevent_change", event.pk)
    assert messages_of(response)[0].startswith("Replayed: 1 applied.")
    entry = AuditLog.objects.get(action="webhook.replay")
    assert entry.target_id == "MANTIS-M72HC" and entry.ok and f"ledger #{event.pk}" in entry.detail


def test_replaying_a_selection(staff_client, channel):
    events = [stored(channel, "health_qr"), stored(channel, "users_post"), stored(None, "users_post")]
    WebhookEvent.objects.filter(pk=events[2].pk).update(whapi_channel_id="NOBODY-00001")
    data = {"action": "replay_selected", "index": "0", "_selected_action": [e.pk for e in events]}
    response = staff_client.post(url("webhookevent_changelist"), data)
    assert messages_of(response) == ["Replayed 3 callbacks: 2 applied, 1 unknown channel."]
    assert AuditLog.objects.filter(action="webhook.replay").count() == 3


def test_replay_needs_the_operate_permission(client, django_user_model, channel):
    login_as(client, django_user_model, "sam", "view_webhookevent")
    event = stored(channel, "users_post")
    assert "Replay through the handlers" not in client.get(url("webhookevent_change", event.pk)).content.decode()
    assert client.post(url("webhookevent_replay", event.pk)).status_code == 403
    offered = client.get(url("webhookevent_changelist")).context["action_form"]
    assert offered is None
    assert WebhookEvent.objects.get(pk=event.pk).outcome == Outcome.FAILED


def test_the_ledger_is_read_only(staff_client, channel):
    event = stored(channel, "users_post")
    assert staff_client.get(url("webhookevent_add")).status_code == 403
    assert staff_client.post(url("webhookevent_change", event.pk), {"outcome": "applied"}).status_code == 403
    assert staff_client.post(url("webhookevent_delete", event.pk), {"post": "yes"}).status_code == 403
    assert WebhookEvent.objects.get(pk=event.pk).outcome == Outcome.FAILED


def test_the_ledger_filters_by_outcome_type_and_channel(staff_client, channel):
    stored(channel, "users_post")
    stored(channel, "health_qr", outcome=Outcome.APPLIED)
    WebhookEvent.objects.create(whapi_channel_id="OTHERO-00001", event_type="channel", event_method="post", body="{}")

    def listed(query: str) -> list[str]:
        response = staff_client.get(url("webhookevent_changelist") + query)
        return sorted(f"{e.event_type}.{e.outcome}" for e in response.context["cl"].result_list)

    assert listed("?outcome__exact=failed") == ["users.failed"]
    assert listed("?event=channel.post") == ["channel.applied", "channel.received"]
    assert listed("?q=MANTIS-M72HC") == ["channel.applied", "users.failed"]
    assert listed("?q=shop+bot") == ["channel.applied", "users.failed"]


# ------------------------------------------------------------------------------------------------
# The audit log in the admin
# ------------------------------------------------------------------------------------------------
def test_the_audit_log_is_read_only_and_filterable(staff_client, channel, superuser, alice):
    other = Customer.objects.create(name="Other Inc")
    actions.audit(actor=superuser, source="staff", action="channel.extend", target=channel, detail="30 days: x")
    actions.audit(actor=alice, source="customer", action="channel.rename", target=channel, ok=False)
    actions.audit(actor=superuser, source="staff", action="customer.quota", target=other, detail="5 → 9")

    def listed(query: str) -> list[str]:
        response = staff_client.get(url("auditlog_changelist") + query)
        assert response.status_code == 200
        return sorted(entry.action for entry in response.context["cl"].result_list)

    assert listed("") == ["channel.extend", "channel.rename", "customer.quota"]
    assert listed("?result=failed") == ["channel.rename"]
    assert listed("?source__exact=customer") == ["channel.rename"]
    assert listed("?action=customer.quota") == ["customer.quota"]
    assert listed("?customer=other") == ["customer.quota"]
    assert listed("?target_type__exact=channel") == ["channel.extend", "channel.rename"]
    assert listed("?q=MANTIS-M72HC") == ["channel.extend", "channel.rename"]
    assert listed("?q=alice") == ["channel.rename"]

    text = staff_client.get(url("auditlog_changelist")).content.decode()
    assert "root" in text and "channel: Shop bot (MANTIS-M72HC)" in text

    entry = AuditLog.objects.get(action="channel.extend")
    assert staff_client.get(url("auditlog_change", entry.pk)).status_code == 200
    assert staff_client.post(url("auditlog_change", entry.pk), {"ok": "off"}).status_code == 403
    assert staff_client.post(url("auditlog_delete", entry.pk), {"post": "yes"}).status_code == 403
    assert staff_client.get(url("auditlog_add")).status_code == 403


def test_customer_actions_show_up_in_the_audit_log_too(staff_client, channel, alice):
    actions.channel_reveal_token(channel, actor=alice, source="customer")
    response = staff_client.get(url("auditlog_changelist") + "?source__exact=customer")
    [entry] = response.context["cl"].result_list
    assert (entry.actor_label, entry.action, entry.customer.name) == ("alice", "channel.reveal_token", "Acme Corp")
