"""A customer's alerts page: owners choose which members, addresses and chat services are told about
which events; every member reads the record of what was sent; outsiders get a 404. alice owns the
customer, bob operates it, vera views it, charlie is an outsider."""

import pytest
from django.urls import reverse

from alerts.models import Event, Notification, Recipient
from channels_app.models import AuditLog
from tests.conftest import make_channel


def page_url(customer) -> str:
    return reverse("channels_app:alerts", args=[customer.code])


def add(client, customer, **data):
    data.setdefault("events", [Event.DISCONNECTED])
    return client.post(reverse("channels_app:alert_recipient_add", args=[customer.code]), data, follow=True)


def test_an_owner_tells_a_member_and_a_chat_service(client, alice, bob, customer):
    client.force_login(alice)
    response = add(client, customer, user=bob.pk, events=[Event.DISCONNECTED, Event.EXPIRING])
    assert "bob &lt;bob@acme.example&gt; is told about" in response.content.decode()
    add(client, customer, chat_url="tgram://123456:ABCdef/987654")
    recipients = list(Recipient.objects.filter(customer=customer).order_by("pk"))
    assert [r.email_address for r in recipients] == ["bob@acme.example", ""]
    assert recipients[0].events == [Event.DISCONNECTED, Event.EXPIRING]
    page = client.get(page_url(customer)).content.decode()
    assert "tgram://123456/…" in page and "ABCdef" not in page
    assert AuditLog.objects.filter(action="alerts.recipient_add", actor=alice).count() == 2


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "email", "Give an email address or a chat URL."),
        ({"email": "ops@acme.example", "chat_url": "slack://T1/B2/C3"}, "chat_url", "Give only one of"),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"chat_url": "json://10.0.0.5/hook"}, "chat_url", "Slack, Telegram, Microsoft Teams or Discord"),
        ({"chat_url": "jsons://127.0.0.1/hook"}, "chat_url", "local address"),
        ({"email": "ops@acme.example", "events": []}, "events", "This field is required."),
    ],
)
def test_a_bad_recipient_is_refused_next_to_the_field(client, alice, customer, data, field, message):
    client.force_login(alice)
    response = add(client, customer, **data)
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert not Recipient.objects.exists()


def test_a_member_of_another_customer_cannot_be_chosen(client, alice, charlie, customer):
    client.force_login(alice)
    response = add(client, customer, user=charlie.pk)
    assert "user" in response.context["form"].errors
    assert not Recipient.objects.exists()


def test_an_owner_removes_a_recipient(client, alice, customer):
    recipient = Recipient.objects.create(customer=customer, email="ops@acme.example", events=[Event.DISCONNECTED])
    client.force_login(alice)
    response = client.post(
        reverse("channels_app:alert_recipient_remove", args=[customer.code, recipient.code]), follow=True
    )
    assert "ops@acme.example is no longer told anything." in response.content.decode()
    assert not Recipient.objects.exists()


def test_members_read_the_record_and_only_owners_change(client, alice, bob, vera, charlie, customer, project):
    channel = make_channel(project)
    recipient = Recipient.objects.create(customer=customer, email="ops@acme.example", events=[Event.DISCONNECTED])
    Notification.objects.create(
        event=Event.DISCONNECTED,
        key="k",
        recipient=recipient,
        to="ops@acme.example",
        customer=customer,
        channel=channel,
        subject="Shop bot: the WhatsApp number disconnected",
        body="…",
        status=Notification.Status.FAILED,
        last_error="the chat service did not accept the message",
    )
    for user in (bob, vera):
        client.force_login(user)
        page = client.get(page_url(customer)).content.decode()
        assert "Shop bot: the WhatsApp number disconnected" in page
        assert "Failed: the chat service did not accept the message" in page
        assert "Tell someone" not in page
        assert add(client, customer, email="x@acme.example").status_code == 403
        remove = reverse("channels_app:alert_recipient_remove", args=[customer.code, recipient.code])
        assert client.post(remove).status_code == 403
    client.force_login(charlie)
    assert client.get(page_url(customer)).status_code == 404
    assert Recipient.objects.count() == 1
