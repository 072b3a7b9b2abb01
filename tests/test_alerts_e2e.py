"""Alerts end to end: the built-in sandbox over real sockets logs a phone out (or links it again), its
webhooks reach the live portal, the worker applies them and asks Whapi, and the mail arrives at a
real SMTP server on localhost (aiosmtpd). ALERT_GRACE_SECONDS is shortened to keep the tests short."""

import json
import socket
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from aiosmtpd.controller import Controller

from alerts.models import Event, Notification, Recipient
from alerts.rules import ANSWER_TIME
from channels_app.configure import desired_settings
from channels_app.models import Channel

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "14155550123"
GRACE = 3.0
# A disconnect is told once the grace is over and the health check asked then has had its time to
# answer; on a busy machine the sweeps and the mail add some seconds more.
TOLD_WITHIN = GRACE + ANSWER_TIME.total_seconds() + 30


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox(settings):
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()


@pytest.fixture
def connected(portal, settings):
    """A connected channel of the portal's customer, registered in the sandbox with our webhooks."""
    sandbox, project = portal
    settings.ALERT_GRACE_SECONDS = GRACE
    channel = Channel.objects.create(
        project=project,
        name="Shop bot",
        whapi_id="SHOPBT-00001",
        whapi_project_id=project.whapi_id,
        api_url=f"{sandbox.url}/gate/",
        token="token-shop-bot",
        state=Channel.State.CONNECTED,
        connected_number=PHONE,
    )
    register(sandbox, channel)
    Recipient.objects.create(
        customer=project.customer, email="it@acme.example", events=[Event.DISCONNECTED, Event.BACK_ONLINE]
    )
    return channel


def register(sandbox, channel: Channel, *, ends=None) -> None:
    """The channel as the pipeline leaves it, in the sandbox: linked to PHONE, our webhooks set, its
    paid time ending at `ends` when given."""
    item = {
        "id": channel.whapi_id,
        "token": channel.token,
        "user": {"id": PHONE, "name": "Alice"},
        "settings": desired_settings(channel),
        "project_id": channel.project.whapi_id,
    }
    if ends is not None:
        item["active_till"] = int(ends.timestamp() * 1000)
    control(sandbox, "/channels", channels=[item])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def control(sandbox, route: str, **body) -> dict:
    response = requests.post(f"{sandbox.url}/_sandbox{route}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(channel: Channel) -> str:
    return Channel.objects.get(pk=channel.pk).state


def test_a_phone_logged_out_gives_exactly_one_email_after_the_grace(portal, connected, inbox, background_worker):
    sandbox, _ = portal
    control(sandbox, f"/channels/{connected.whapi_id}/logout")
    wait_for(lambda: state_of(connected) == Channel.State.DISCONNECTED, what="the disconnect confirmed")
    disconnected_at = time.monotonic()
    wait_for(lambda: inbox.messages, timeout=TOLD_WITHIN, what="the alert mail")
    assert time.monotonic() - disconnected_at >= GRACE - 0.5  # not before the grace
    time.sleep(2)  # more sweeps: still one
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "it@acme.example"
    assert message["Subject"] == "Shop bot: the WhatsApp number disconnected"
    assert "Acme Corp" in message.get_payload() and "Whapi confirms" in message.get_payload()
    assert Notification.objects.get().status == Notification.Status.SENT


def test_a_flap_within_the_grace_gives_no_email(portal, connected, inbox, background_worker):
    sandbox, _ = portal
    control(sandbox, f"/channels/{connected.whapi_id}/logout")
    wait_for(lambda: state_of(connected) == Channel.State.DISCONNECTED, what="the disconnect")
    control(sandbox, f"/channels/{connected.whapi_id}/scan", phone=PHONE, name="Alice")
    wait_for(lambda: state_of(connected) == Channel.State.CONNECTED, what="the reconnect")
    wait_for(
        lambda: Channel.objects.get(pk=connected.pk).disconnect_alert_due_at is None,
        timeout=TOLD_WITHIN,
        what="the sweep to decide the disconnect",
    )
    time.sleep(1.5)  # what it would have queued is sent by then
    assert inbox.messages == []
    assert not Notification.objects.exists()


def test_a_recovery_after_an_alert_gives_one_back_online_email(portal, connected, inbox, background_worker):
    sandbox, _ = portal
    control(sandbox, f"/channels/{connected.whapi_id}/logout")
    wait_for(lambda: len(inbox.messages) == 1, timeout=TOLD_WITHIN, what="the alert mail")
    control(sandbox, f"/channels/{connected.whapi_id}/scan", phone=PHONE, name="Alice")
    wait_for(lambda: len(inbox.messages) == 2, what="the back-online mail")
    time.sleep(1.5)
    assert len(inbox.messages) == 2
    assert inbox.messages[1]["Subject"] == "Shop bot: back online"


def test_the_partners_days_webhook_gives_staff_an_alert(portal, connected, inbox, background_worker):
    from django.core.management import call_command

    from channels_app.models import WebhookEvent
    from channels_app.whapi import partner_client

    sandbox, _ = portal
    Recipient.objects.create(name="Billing", email="billing@partner.example", events=[Event.PARTNER_DAYS_LOW])
    call_command("partner_webhook", days_limit=100)
    control(sandbox, "/config", balance_days=103)
    partner_client().extend_channel(connected.whapi_id, days=2, comment="still above the limit")
    partner_client().extend_channel(connected.whapi_id, days=5, comment="below it now: 96 left")
    wait_for(lambda: inbox.messages, what="the balance alert")
    time.sleep(1.5)
    assert [message["To"] for message in inbox.messages] == ["billing@partner.example"]  # not the customer
    message = inbox.messages[0]
    assert message["Subject"] == "Whapi: the partner day balance is low (96 days left)"
    assert "partner panel" in message.get_payload()
    assert WebhookEvent.objects.filter(event_type="days").count() == 1


def test_a_wrong_partner_webhook_token_is_a_404_and_tells_nobody(client, db):
    from django.urls import reverse

    Recipient.objects.create(name="Billing", email="billing@partner.example", events=[Event.PARTNER_DAYS_LOW])
    url = reverse("channels_app:partner_webhook", args=["0" * 40])
    assert client.post(url, {"days": 3}, content_type="application/json").status_code == 404
    assert not Notification.objects.exists()


def test_a_renewal_rule_extends_once_per_period_within_the_cap(portal, connected, inbox, background_worker):
    from datetime import timedelta

    from django.utils import timezone

    from alerts.models import Renewal, RenewalRule

    sandbox, project = portal
    Recipient.objects.create(name="Billing", email="billing@partner.example", events=[Event.RENEWAL_PROBLEM])
    ends = timezone.now() + timedelta(days=2)
    register(sandbox, connected, ends=ends)
    Channel.objects.filter(pk=connected.pk).update(active_till=ends)
    balance = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["balance_days"]
    RenewalRule.objects.create(customer=project.customer, extend_days=30, when_days_left=3, monthly_cap_days=30)

    wait_for(lambda: Renewal.objects.filter(status=Renewal.Status.DONE).exists(), what="the renewal")
    time.sleep(1.5)  # more sweeps: the period is renewed once
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["balance_days"] == balance - 30
    channel = Channel.objects.get(pk=connected.pk)
    assert abs((channel.active_till - ends) - timedelta(days=30)) < timedelta(seconds=2)

    # The next period comes close within the same month: the cap (30 days) stops it, and staff hear.
    Channel.objects.filter(pk=connected.pk).update(active_till=timezone.now() + timedelta(days=1))
    wait_for(lambda: inbox.messages, what="the cap alert")
    assert "cap reached" in inbox.messages[0]["Subject"]
    assert Renewal.objects.count() == 1


class ChatService(ThreadingHTTPServer):
    """A local HTTP endpoint standing in for a chat service's webhook: keeps every JSON body posted."""

    daemon_threads = True

    def __init__(self) -> None:
        self.posts: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                length = int(handler.headers.get("Content-Length") or 0)
                self.posts.append(json.loads(handler.rfile.read(length) or b"{}"))
                handler.send_response(200)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def chat():
    service = ChatService()
    threading.Thread(target=service.serve_forever, daemon=True).start()
    yield service
    service.shutdown()
    service.server_close()


def test_a_disconnect_reaches_a_chat_service_once(portal, connected, chat, background_worker):
    sandbox, _ = portal
    Recipient.objects.all().delete()
    Recipient.objects.create(
        name="Ops chat", chat_url=f"json://127.0.0.1:{chat.server_address[1]}/hook", events=[Event.DISCONNECTED]
    )
    control(sandbox, f"/channels/{connected.whapi_id}/logout")
    wait_for(lambda: chat.posts, timeout=TOLD_WITHIN, what="the chat message")
    time.sleep(2)
    assert len(chat.posts) == 1
    assert chat.posts[0]["title"] == "Shop bot: the WhatsApp number disconnected"
    assert "Acme Corp" in chat.posts[0]["message"]
    assert Notification.objects.get().status == Notification.Status.SENT


def test_each_expiry_threshold_from_whapis_active_till_is_mailed_once(portal, connected, inbox, background_worker):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    sandbox, project = portal
    Recipient.objects.filter(customer=project.customer).update(events=[Event.EXPIRING])

    def whapi_says_it_ends_in(days: float) -> None:
        ends = timezone.now() + timedelta(days=days)
        register(sandbox, connected, ends=ends)
        call_command("sync_whapi")  # the mirror reads activeTill from Whapi

    whapi_says_it_ends_in(6.5)
    wait_for(lambda: inbox.messages, what="the 7-day reminder")
    time.sleep(1.5)
    assert [message["Subject"] for message in inbox.messages] == ["Shop bot: 7 days left"]
    whapi_says_it_ends_in(2.5)
    wait_for(lambda: len(inbox.messages) == 2, what="the 3-day reminder")
    time.sleep(1.5)
    assert [message["Subject"] for message in inbox.messages] == ["Shop bot: 7 days left", "Shop bot: 3 days left"]
