"""Alerts end to end: the built-in sandbox over real sockets logs a phone out (or links it again), its
webhooks reach the live portal, the worker applies them and asks Whapi, and the mail arrives at a
real SMTP server on localhost (aiosmtpd). ALERT_GRACE_SECONDS is shortened to keep the tests short."""

import socket
import time
from email import message_from_bytes
from email.message import Message

import pytest
import requests
from aiosmtpd.controller import Controller

from alerts.models import Event, Notification, Recipient
from channels_app.configure import desired_settings
from channels_app.models import Channel

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "14155550123"
GRACE = 3.0


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
    item = {
        "id": channel.whapi_id,
        "token": channel.token,
        "user": {"id": PHONE, "name": "Alice"},
        "settings": desired_settings(channel),
        "project_id": project.whapi_id,
    }
    control(sandbox, "/channels", channels=[item])
    Recipient.objects.create(
        customer=project.customer, email="it@acme.example", events=[Event.DISCONNECTED, Event.BACK_ONLINE]
    )
    return channel


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
    wait_for(lambda: inbox.messages, timeout=GRACE + 20, what="the alert mail")
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
    time.sleep(GRACE + 3)
    assert inbox.messages == []
    assert not Notification.objects.exists()


def test_a_recovery_after_an_alert_gives_one_back_online_email(portal, connected, inbox, background_worker):
    sandbox, _ = portal
    control(sandbox, f"/channels/{connected.whapi_id}/logout")
    wait_for(lambda: len(inbox.messages) == 1, timeout=GRACE + 25, what="the alert mail")
    control(sandbox, f"/channels/{connected.whapi_id}/scan", phone=PHONE, name="Alice")
    wait_for(lambda: len(inbox.messages) == 2, what="the back-online mail")
    time.sleep(1.5)
    assert len(inbox.messages) == 2
    assert inbox.messages[1]["Subject"] == "Shop bot: back online"
