"""Alerts people act on: a disconnect told once it has lasted ALERT_GRACE_SECONDS and Whapi confirms
it, never for a flap within the grace, "back online" after a told disconnect; sent by email and to
chat services on the worker, each occasion once per recipient, a failed send retried a bounded number
of times and recorded. Mail is Django's test outbox; chat services are mocked with `responses`."""

import json
import logging
from datetime import timedelta

import pytest
import responses
import time_machine
from django.core import mail
from django.utils import timezone

from alerts import delivery
from alerts.models import Event, Notification, Recipient
from alerts.sweep import alerts_sweep
from channels_app.models import AuditLog, Channel
from channels_app.status import health_apply
from channels_app.whapi import Health
from tests.conftest import GATE_URL, make_channel, skip_without_row_locks

GATE = GATE_URL.rstrip("/")

pytest_plugins = ["tests.admin_fixtures"]

CHAT = "https://chat.example.test/hooks/alerts"
CHAT_URL = "jsons://chat.example.test/hooks/alerts?secret-token=Xq81"
PHONE = "14155550123"
ALL = list(Event.values)


def report(channel: Channel, text: str, *, uptime: int) -> None:
    """Whapi tells the channel's health (a callback or an answer to a check)."""
    user = {"id": PHONE} if text == "AUTH" else None
    health = Health(
        start_at=1000, uptime=uptime, status_code=None, status_text=text, user_id=user and PHONE, user_name=None, raw={}
    )
    health_apply(channel.pk, health, source="poll")


@pytest.fixture
def recipients(customer):
    staff = Recipient.objects.create(name="On call", email="oncall@partner.example", events=ALL)
    own = Recipient.objects.create(customer=customer, name="Acme IT", email="it@acme.example", events=ALL)
    Recipient.objects.create(
        name="Other customers only", customer=None, email="x@partner.example", events=[], active=False
    )
    return staff, own


@pytest.fixture
def connected(project, settings):
    settings.ALERT_GRACE_SECONDS = 120
    settings.PORTAL_BASE_URL = "https://portal.example.test"
    channel = make_channel(
        project, state=Channel.State.CONNECTED, connected_number=PHONE, active_till=timezone.now() + timedelta(days=60)
    )
    report(channel, "AUTH", uptime=10)
    return channel


def sweep() -> None:
    alerts_sweep()


def disconnect_told(channel: Channel, clock) -> None:
    """The channel disconnects, Whapi confirms it at the end of the grace, and the sweep tells it."""
    report(channel, "QR", uptime=20)
    clock.shift(timedelta(seconds=121))
    report(channel, "QR", uptime=141)
    clock.shift(timedelta(seconds=10))
    sweep()


def test_a_disconnect_that_lasts_is_told_once_to_staff_and_the_customer(connected, recipients, customer):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        connected.refresh_from_db()
        assert connected.state == Channel.State.DISCONNECTED
        # The end of the grace is when Whapi is asked again.
        assert connected.health_check_due_at == connected.state_changed_at + timedelta(seconds=120)
        clock.shift(timedelta(seconds=60))
        sweep()
        assert mail.outbox == []  # within the grace

        clock.shift(timedelta(seconds=61))
        report(connected, "QR", uptime=141)  # the check at the end of the grace: still not linked
        clock.shift(timedelta(seconds=10))
        sweep()
        sweep()
    assert sorted(message.to[0] for message in mail.outbox) == ["it@acme.example", "oncall@partner.example"]
    by_address = {message.to[0]: message for message in mail.outbox}
    customer_mail, staff_mail = by_address["it@acme.example"], by_address["oncall@partner.example"]
    assert customer_mail.subject == "Shop bot: the WhatsApp number disconnected"
    assert "Acme Corp" in customer_mail.body and "Linked devices" in customer_mail.body
    assert "Whapi confirms" in customer_mail.body
    assert f"https://portal.example.test/app/channels/{connected.code}/" in customer_mail.body
    assert f"https://portal.example.test/admin/channels_app/channel/{connected.pk}/change/" in staff_mail.body
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 2


def test_a_reconnect_within_the_grace_tells_nothing(connected, recipients):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=30))
        report(connected, "AUTH", uptime=50)
        clock.shift(timedelta(minutes=10))
        sweep()
    connected.refresh_from_db()
    assert connected.state == Channel.State.CONNECTED
    assert connected.disconnect_alert_due_at is None
    assert mail.outbox == [] and not Notification.objects.exists()


def test_back_online_is_told_after_a_told_disconnect_and_only_then(connected, recipients):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        disconnect_told(connected, clock)
        assert len(mail.outbox) == 2
        clock.shift(timedelta(minutes=3))
        report(connected, "AUTH", uptime=400)
        sweep()
        report(connected, "AUTH", uptime=500)  # a later report changes nothing more
        sweep()
    back = [message for message in mail.outbox if "back online" in message.subject]
    assert sorted(message.to[0] for message in back) == ["it@acme.example", "oncall@partner.example"]
    connected.refresh_from_db()
    assert connected.disconnect_alerted_at is None


def test_without_an_answer_from_whapi_the_check_is_asked_again_then_told_unconfirmed(connected, recipients):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=131))
        sweep()
        connected.refresh_from_db()
        assert mail.outbox == []
        assert connected.health_check_due_at <= timezone.now()  # asked again at once
        clock.shift(timedelta(minutes=6))
        sweep()
    assert len(mail.outbox) == 2
    assert "could not be asked to confirm" in mail.outbox[0].body


@responses.activate
def test_a_chat_service_gets_the_message_and_a_refusal_is_retried_then_recorded(connected, customer, caplog):
    recipient = Recipient.objects.create(customer=customer, name="Team chat", chat_url=CHAT_URL, events=ALL)
    responses.add(responses.POST, CHAT, status=500)
    responses.add(responses.POST, CHAT, status=500)
    responses.add(responses.POST, CHAT, status=200, json={})
    caplog.set_level(logging.DEBUG)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        disconnect_told(connected, clock)
        notification = Notification.objects.get(recipient=recipient)
        assert (notification.status, notification.attempts) == (Notification.Status.PENDING, 1)
        assert notification.last_error == "the chat service did not accept the message"
        sweep()  # not yet: the retry waits a minute
        assert Notification.objects.get(pk=notification.pk).attempts == 1
        clock.shift(delivery.RETRY_DELAYS[0])
        sweep()
        clock.shift(delivery.RETRY_DELAYS[1])
        sweep()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.SENT, 3)
    assert len(responses.calls) == 3
    assert "Shop bot" in responses.calls[0].request.body
    assert "Xq81" not in caplog.text
    assert notification.to == "jsons://chat.example.test/…"


def test_a_send_that_keeps_failing_stops_after_three_attempts(connected, customer, settings):
    settings.EMAIL_BACKEND = "tests.test_alerts.RefusingBackend"
    Recipient.objects.create(customer=customer, email="it@acme.example", events=ALL)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=121))
        report(connected, "QR", uptime=141)
        for _ in range(6):
            clock.shift(timedelta(minutes=10))
            sweep()
    notification = Notification.objects.get()
    assert (notification.status, notification.attempts) == (Notification.Status.FAILED, 3)
    assert notification.last_error == "ConnectionRefusedError while sending"


class RefusingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp.example.test:25")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({}, "email", "Give an email address or a chat URL."),
        ({"email": "a@b.example", "chat_url": "json://x.example"}, "chat_url", "Give only one of"),
        ({"chat_url": "nonsense://nowhere"}, "chat_url", "Not a chat service URL"),
        ({"email": "a@b.example", "events": []}, "events", "This field is required."),
    ],
)
def test_a_recipient_is_refused_with_the_reason_next_to_the_field(db, fields, field, message):
    from alerts.admin import RecipientForm

    data = {"name": "x", "events": ALL, "active": True, **fields}
    form = RecipientForm(data={key: value for key, value in data.items() if value is not None})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


# ------------------------------------------------------------------------------------------------
# The staff console
# ------------------------------------------------------------------------------------------------
def test_staff_see_recipients_and_the_record_without_chat_tokens(staff_client, connected, customer):
    from django.urls import reverse

    Recipient.objects.create(customer=customer, name="Team chat", chat_url=CHAT_URL, events=ALL)
    Recipient.objects.create(name="On call", email="oncall@partner.example", events=[Event.DISCONNECTED])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        report(connected, "QR", uptime=20)
        clock.shift(timedelta(seconds=131))
        report(connected, "QR", uptime=151)
        from alerts.rules import disconnect_alerts_due

        disconnect_alerts_due()
    recipients = staff_client.get(reverse("admin:alerts_recipient_changelist")).content.decode()
    assert "Partner staff" in recipients and "Acme Corp" in recipients
    assert "jsons://chat.example.test/…" in recipients
    record = staff_client.get(reverse("admin:alerts_notification_changelist")).content.decode()
    assert "oncall@partner.example" in record and "Waiting to be sent" in record
    chat = Notification.objects.get(recipient__name="Team chat")
    detail = staff_client.get(reverse("admin:alerts_notification_change", args=[chat.pk])).content.decode()
    edit = staff_client.get(reverse("admin:alerts_recipient_change", args=[chat.recipient_id])).content.decode()
    for page in (recipients, record, detail, edit):
        assert "Xq81" not in page


def test_editing_a_recipient_keeps_its_chat_url_when_the_field_is_left_empty(staff_client, customer):
    from django.urls import reverse

    recipient = Recipient.objects.create(customer=customer, name="Team chat", chat_url=CHAT_URL, events=ALL)
    response = staff_client.post(
        reverse("admin:alerts_recipient_change", args=[recipient.pk]),
        {
            "customer": customer.pk,
            "name": "Team chat (renamed)",
            "email": "",
            "chat_url": "",
            "events": ALL,
            "active": "on",
        },
    )
    assert response.status_code == 302
    recipient.refresh_from_db()
    assert (recipient.name, recipient.chat_url) == ("Team chat (renamed)", CHAT_URL)


# ------------------------------------------------------------------------------------------------
# Paid time running out
# ------------------------------------------------------------------------------------------------
def subjects() -> list[str]:
    return sorted({message.subject for message in mail.outbox})


def test_each_expiry_threshold_is_told_once_per_period(project, recipients, settings):
    settings.EXPIRY_REMINDER_DAYS = [1, 3, 7]
    start = timezone.now()
    channel = make_channel(
        project, state=Channel.State.CONNECTED, connected_number=PHONE, active_till=start + timedelta(days=10)
    )
    with time_machine.travel(start, tick=False) as clock:
        sweep()
        assert mail.outbox == []  # 10 days left: nothing yet
        clock.shift(timedelta(days=3, hours=1))  # 6 days 23 h left
        sweep()
        sweep()
        assert subjects() == ["Shop bot: 7 days left"]
        clock.shift(timedelta(days=4))  # 2 days 23 h left
        sweep()
        assert subjects() == ["Shop bot: 3 days left", "Shop bot: 7 days left"]
        clock.shift(timedelta(days=2))  # 23 h left
        sweep()
        sweep()
    assert subjects() == ["Shop bot: 1 day left", "Shop bot: 3 days left", "Shop bot: 7 days left"]
    assert len(mail.outbox) == 6  # three reminders, to staff and to the customer
    assert "Acme Corp" in mail.outbox[-1].body and "until it is extended" in mail.outbox[-1].body

    # Extended: a new period, told again from its first threshold on.
    mail.outbox.clear()
    Channel.objects.filter(pk=channel.pk).update(active_till=start + timedelta(days=12))
    with time_machine.travel(start + timedelta(days=9, hours=2), tick=False):
        sweep()
    assert subjects() == ["Shop bot: 3 days left"]


def test_a_channel_first_seen_close_to_its_end_gets_one_reminder(project, recipients, settings):
    settings.EXPIRY_REMINDER_DAYS = [1, 3, 7]
    make_channel(project, state=Channel.State.CONNECTED, active_till=timezone.now() + timedelta(hours=40))
    sweep()
    sweep()
    assert subjects() == ["Shop bot: 2 days left"]


def test_a_paid_time_moved_nearer_during_a_sweep_is_told_once_at_its_own_threshold(project, recipients, settings):
    """Whapi's mirror moves the end from 6 days 12 h to 2 days 12 h away while a sweep is between its
    thresholds' queries: the customer hears "3 days left" once, not once more per larger threshold."""
    from django.db import connection

    settings.EXPIRY_REMINDER_DAYS = [3, 7]
    now = timezone.now()
    channel = make_channel(project, state=Channel.State.CONNECTED, active_till=now + timedelta(days=6, hours=12))
    sweep()
    assert subjects() == ["Shop bot: 7 days left"]

    moved = []

    def sync_lands_after_the_3_days_query(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not moved and sql.lstrip().upper().startswith("SELECT") and "expiry_reminded_days" in sql:
            moved.append(True)
            Channel.objects.filter(pk=channel.pk).update(active_till=now + timedelta(days=2, hours=12))
        return result

    with connection.execute_wrapper(sync_lands_after_the_3_days_query):
        sweep()
    assert moved
    sweep()
    sweep()
    told = [message.subject for message in mail.outbox]
    assert sorted(told) == ["Shop bot: 3 days left"] * 2 + ["Shop bot: 7 days left"] * 2  # staff and customer


@pytest.mark.django_db(transaction=True)
def test_a_channel_another_sweep_is_telling_is_left_to_it(project, recipients, settings):
    """Two alerts sweeps at once (a long run overlapping the next): the one that holds a channel's row
    tells it; the other passes it over instead of making a second reminder, event or hand-off link."""
    import threading

    from django.db import connection, transaction

    from alerts import rules
    from channels_app.models import HandoffLink

    skip_without_row_locks()
    settings.EXPIRY_REMINDER_DAYS, settings.SCAN_REMINDER_HOURS = [3], 1
    channel = make_channel(
        project,
        state=Channel.State.WAITING_SCAN,
        state_changed_at=timezone.now() - timedelta(hours=2),
        active_till=timezone.now() + timedelta(days=2),
    )
    holding, release = threading.Event(), threading.Event()

    def the_other_sweep_holds_it():
        try:
            with transaction.atomic():
                Channel.objects.select_for_update().get(pk=channel.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=the_other_sweep_holds_it)
    other.start()
    try:
        assert holding.wait(10)
        assert (rules.scan_reminders_due(), rules.expiry_reminders_due()) == (0, 0)
    finally:
        release.set()
        other.join(10)
    assert (rules.scan_reminders_due(), rules.expiry_reminders_due()) == (1, 1)
    assert (rules.scan_reminders_due(), rules.expiry_reminders_due()) == (0, 0)
    assert Notification.objects.count() == 4  # each told once, to staff and to the customer
    assert HandoffLink.objects.count() == 1


def test_expired_and_stopped_are_told_once(connected, recipients):
    report(connected, "STOP", uptime=20)  # active_till is in 60 days: stopped by hand
    connected.refresh_from_db()
    assert connected.state == Channel.State.STOPPED
    report(connected, "STOP", uptime=30)
    sweep()
    assert subjects() == ["Shop bot: stopped"]
    assert "has to be started again" in mail.outbox[0].body
    assert len(mail.outbox) == 2


# ------------------------------------------------------------------------------------------------
# Errors, drift, escalation, a scan that does not come
# ------------------------------------------------------------------------------------------------
def test_a_channel_in_error_is_told_with_a_plain_cause(connected, recipients):
    report(connected, "ERROR", uptime=20)
    sweep()
    assert subjects() == ["Shop bot: in error"]
    assert "restarting it usually helps" in mail.outbox[0].body and len(mail.outbox) == 2


def test_drifted_webhook_settings_are_told_once_a_day(connected, recipients, whapi):
    from channels_app.configure import channel_settings_verify

    Channel.objects.filter(pk=connected.pk).update(settings_check_due_at=None)
    whapi.add(responses.GET, f"{GATE}/settings", json={"webhooks": []})
    whapi.add(responses.PATCH, f"{GATE}/settings", json={})
    channel_settings_verify(connected.pk)
    channel_settings_verify(connected.pk)
    sweep()
    assert subjects() == ["Shop bot: its webhook settings were changed"]
    assert len(mail.outbox) == 2


def test_a_told_disconnect_that_lasts_is_escalated_to_staff_once(connected, recipients, settings):
    settings.ALERT_ESCALATE_MINUTES = 60
    with time_machine.travel(timezone.now(), tick=False) as clock:
        disconnect_told(connected, clock)
        assert len(mail.outbox) == 2
        clock.shift(timedelta(minutes=30))
        sweep()
        assert len(mail.outbox) == 2
        clock.shift(timedelta(minutes=30))
        sweep()
        sweep()
    escalations = [message for message in mail.outbox if "still disconnected" in message.subject]
    assert [message.to[0] for message in escalations] == ["oncall@partner.example"]  # staff only
    assert escalations[0].subject == "Shop bot: still disconnected after 62 minutes"


def test_a_channel_nobody_scans_gets_one_reminder(project, recipients, settings):
    settings.SCAN_REMINDER_HOURS = 24
    start = timezone.now()
    channel = make_channel(
        project, state=Channel.State.WAITING_SCAN, state_changed_at=start, active_till=start + timedelta(days=60)
    )
    with time_machine.travel(start, tick=False) as clock:
        clock.shift(timedelta(hours=23))
        sweep()
        assert mail.outbox == []
        clock.shift(timedelta(hours=2))
        sweep()
        sweep()
    assert subjects() == ["Shop bot: waiting for its QR code to be scanned"]
    assert all("Linked devices" in message.body for message in mail.outbox)
    assert f"/admin/channels_app/channel/{channel.pk}/change/" in " ".join(message.body for message in mail.outbox)


def test_repeated_flaps_within_an_hour_become_one_summary(connected, recipients):
    def flap(clock, uptime: int) -> None:
        report(connected, "QR", uptime=uptime)
        clock.shift(timedelta(seconds=131))
        report(connected, "QR", uptime=uptime + 131)
        sweep()
        clock.shift(timedelta(minutes=2))
        report(connected, "AUTH", uptime=uptime + 300)
        sweep()
        clock.shift(timedelta(minutes=5))

    with time_machine.travel(timezone.now(), tick=False) as clock:
        flap(clock, 100)  # told, and told back online
        assert subjects() == ["Shop bot: back online", "Shop bot: the WhatsApp number disconnected"]
        flap(clock, 1000)
        flap(clock, 2000)
        assert len(mail.outbox) == 4  # nothing more within the hour
        clock.shift(timedelta(minutes=45))
        sweep()
        sweep()
    summaries = [message for message in mail.outbox if "more times" in message.subject]
    assert [message.subject for message in summaries] == ["Shop bot: disconnected 2 more times in the last hour"] * 2
    assert "It is connected now." in summaries[0].body
    assert len(mail.outbox) == 6


@responses.activate
def test_staff_set_up_the_partners_days_webhook_from_the_admin(staff_client, settings):
    from django.urls import reverse

    from alerts.partner import partner_webhook_url

    settings.PORTAL_BASE_URL = "https://portal.example.test"
    base = f"{settings.WHAPI_PARTNER_URL}/partners/{settings.WHAPI_PARTNER_NAME}/settings"
    theirs = {"url": "https://elsewhere.example/days", "events": [{"type": "days", "method": "post"}], "mode": "body"}
    ours = {"url": partner_webhook_url(), "events": [{"type": "days", "method": "post"}], "mode": "body"}
    responses.add(responses.GET, base, json={"webhooks": [theirs], "days_limit": 30})
    responses.add(responses.PATCH, base, json={})
    responses.add(responses.GET, base, json={"webhooks": [theirs, ours], "days_limit": 30})
    page = staff_client.get(reverse("admin:alerts_recipient_changelist")).content.decode()
    assert "Set up Whapi&#x27;s days webhook" in page or "Set up Whapi's days webhook" in page
    response = staff_client.post(reverse("admin:alerts_partner_webhook_setup"), follow=True)
    assert "points at this portal" in response.content.decode()
    patched = json.loads(responses.calls[1].request.body)
    assert patched == {"webhooks": [theirs, ours]}  # the partner's other webhook kept
    assert AuditLog.objects.get(action="partner.days_webhook").ok
    assert partner_webhook_url().split("/")[-1] not in response.content.decode()  # the secret is not shown


def test_the_scan_reminder_carries_a_handoff_link_that_the_record_does_not_keep(project, recipients, settings):
    from channels_app.handoff import handoff_token
    from channels_app.models import HandoffLink

    settings.SCAN_REMINDER_HOURS = 1
    settings.PORTAL_BASE_URL = "https://portal.example.test"
    start = timezone.now()
    make_channel(
        project, state=Channel.State.WAITING_SCAN, state_changed_at=start, active_till=start + timedelta(days=60)
    )
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        sweep()
    link = HandoffLink.objects.get()
    url = f"https://portal.example.test/connect/{handoff_token(link)}/"
    by_address = {message.to[0]: message for message in mail.outbox}
    assert url in by_address["it@acme.example"].body  # the customer's, for whoever holds the phone
    assert url not in by_address["oncall@partner.example"].body  # staff get the admin's page
    assert all(handoff_token(link) not in n.body for n in Notification.objects.all())
    assert link.expires_at == start + timedelta(hours=26)
