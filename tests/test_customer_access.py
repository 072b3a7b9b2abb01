"""Tenancy of the customer pages: every URL under /app/ loads its objects through channels_app.access.

alice owns Acme Corp, bob operates it, vera views it; charlie owns Other Inc.
"""

from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from alerts.models import Recipient
from api.keys import api_key_create
from channels_app import access
from channels_app.models import Channel, Customer, Invitation, Membership, Project
from events.models import Delivery, Endpoint, Event
from tests.conftest import GATE_URL, make_channel, whapi_fixture

# Pages under /app/ that take no customer, channel or member id.
ID_FREE = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "home",
    "invitation",  # no login: its signed link decides (tests/test_customer_members.py)
    "two_factor",  # the signed-in user's own sign-in (tests/test_customer_two_factor.py)
    "profile",  # the signed-in user's own time zone and language (tests/test_time_zones.py)
}
FIXTURES = Path(__file__).parent / "fixtures" / "whapi"
ID_PARAMETERS = {
    "customer_code",
    "channel_code",
    "username",
    "invitation_code",
    "recipient_code",
    "endpoint_code",
    "key_code",
    "webhook_id",  # an event's random id (msg_…), looked up within the endpoint
}
# Views that change something: a viewer gets 403; those marked owner also refuse an operator.
WRITES = {
    "channel_create": "customer",
    "member_invite": "customer",
    "invitation_resend": "invitation",
    "invitation_cancel": "invitation",
    "member_role": "member",
    "member_remove": "member",
    "channel_qr": "channel",
    "channel_pairing_code": "channel",
    "channel_reveal_token": "channel",
    "channel_webhook": "channel",
    "channel_rename": "channel",
    "channel_disconnect": "channel",
    "handoff_create": "channel",
    "handoff_revoke": "channel",
    "channel_restart": "channel",
    "channel_delete": "channel",
    "alert_recipient_add": "customer",
    "alert_recipient_remove": "recipient",
    "events_endpoint_add": "customer",
    "events_secret_rotate": "endpoint",
    "events_endpoint_switch": "endpoint",
    "events_endpoint_delete": "endpoint",
    "events_replay_range": "endpoint",
    "events_replay": "endpoint",
    "api_key_create": "customer",
    "api_key_revoke": "key",
}
OWNER_ONLY = {
    "member_invite",
    "invitation_resend",
    "invitation_cancel",
    "member_role",
    "member_remove",
    "channel_delete",
    "alert_recipient_add",
    "alert_recipient_remove",
    "events_endpoint_add",
    "events_secret_rotate",
    "events_endpoint_switch",
    "events_endpoint_delete",
    "events_replay_range",
    "events_replay",
    "api_key_create",
    "api_key_revoke",
}


def app_patterns() -> list[tuple[str, str, set[str]]]:
    """(route, url name, parameter names) of every URL pattern under /app/, from the resolver."""

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.name, set(pattern.pattern.converters)

    return [found for found in walk(get_resolver().url_patterns, "") if found[0].startswith("app/")]


def id_patterns() -> list[tuple[str, set[str]]]:
    """The customer pages: every /app/ URL except sign-in and passwords."""
    return [(name, params) for _, name, params in app_patterns() if name not in ID_FREE]


@pytest.fixture(autouse=True)
def _whapi_mocked(whapi):
    """Whapi as far as these tests need it; any other call fails instead of going to the network."""
    whapi.add(responses.GET, f"{GATE_URL}users/login", json=whapi_fixture("gate_qr_plain.json"))
    return whapi


@pytest.fixture
def charlies(charlie):
    """Ids of charlie's objects, by URL parameter name."""
    other = charlie.memberships.get().customer
    project = Project.objects.create(whapi_id="otherProjectAAAAAAAAA", name="Other channels", customer=other)
    channel = make_channel(project, name="Charlie's bot", whapi_id="OTHERS-CH4NL")
    invitation = pending_invitation(other)
    return {
        "customer_code": other.code,
        "channel_code": channel.code,
        "username": charlie.username,
        "invitation_code": invitation.code,
        "recipient_code": Recipient.objects.create(customer=other, email="c@other.example", events=["x"]).code,
        **endpoint_ids(other, channel),
        "key_code": api_key(other).code,
    }


def endpoint_ids(customer, channel) -> dict:
    """An events endpoint of the customer with one delivery, by URL parameter name."""
    endpoint = Endpoint.objects.create(customer=customer, url="https://hooks.example/e", event_types=["channel.error"])
    event = Event.objects.create(customer=customer, channel=channel, type="channel.error", payload={})
    Delivery.objects.create(event=event, endpoint=endpoint, status=Delivery.Status.FAILED)
    return {"endpoint_code": endpoint.code, "webhook_id": event.webhook_id}


def api_key(customer):
    return api_key_create(name="CRM", customer=customer, can_write=False, actor=None, source="staff")[0]


def pending_invitation(customer) -> Invitation:
    return Invitation.objects.create(
        customer=customer, email="someone@example.com", expires_at=timezone.now() + timedelta(days=1)
    )


@pytest.fixture
def alices(alice, bob, customer, channel):
    return {
        "customer_code": customer.code,
        "channel_code": channel.code,
        "username": bob.username,
        "invitation_code": pending_invitation(customer).code,
        "recipient_code": Recipient.objects.create(customer=customer, email="ops@acme.example", events=["x"]).code,
        **endpoint_ids(customer, channel),
        "key_code": api_key(customer).code,
    }


def url_for(name: str, params: set[str], ids: dict) -> str:
    return reverse(f"channels_app:{name}", kwargs={param: ids[param] for param in params})


def test_every_customer_page_takes_a_customer_channel_or_member_id():
    names = {name for name, _ in id_patterns()}
    assert len(names) >= 17, "the resolver walk found too little"
    for name, params in id_patterns():
        assert params and params <= ID_PARAMETERS, name
    assert {name for _, name, _ in app_patterns()} >= ID_FREE
    assert set(WRITES) <= names


def test_it_answers_404_for_another_customers_ids_on_every_url(client, alice, charlies):
    client.force_login(alice)
    for name, params in id_patterns():
        url = url_for(name, params, charlies)
        statuses = {client.get(url).status_code, client.post(url).status_code}
        # 405 only for the method a view does not take; the method it takes must say 404.
        assert 404 in statuses and statuses <= {404, 405}, f"{name} {url}: {statuses}"


def test_the_same_urls_work_with_alices_own_ids(client, alice, alices):
    client.force_login(alice)
    for name, params in id_patterns():
        status = client.get(url_for(name, params, alices)).status_code
        assert status != 404, f"{name} with alice's own ids answered 404"


def test_it_answers_404_for_a_member_of_another_customer(client, alice, customer, charlie):
    client.force_login(alice)
    for name in ("member_role", "member_remove"):
        url = reverse(f"channels_app:{name}", args=[customer.code, charlie.username])
        assert client.post(url, {"role": "viewer"}).status_code == 404
    assert Membership.objects.get(user=charlie).role == "owner"


def test_it_requires_rw_access_for_every_write(client, vera, alices):
    client.force_login(vera)
    patterns = dict(id_patterns())
    for name in WRITES:
        url = url_for(name, patterns[name], alices)
        response = client.get(url) if name == "channel_qr" else client.post(url, {"role": "owner", "name": "x"})
        assert response.status_code == 403, name


def test_an_operator_cannot_manage_members(client, bob, alices):
    client.force_login(bob)
    patterns = dict(id_patterns())
    for name in OWNER_ONLY:
        response = client.post(url_for(name, patterns[name], alices), {"role": "owner"})
        assert response.status_code == 403, name
    assert Membership.objects.get(user=bob).role == "operator"


def test_it_sends_visitors_to_the_login_page(client, alices):
    login = reverse("channels_app:login")
    for name, params in id_patterns():
        url = url_for(name, params, alices)
        response = client.get(url)
        assert response.status_code in (302, 405), name
        if response.status_code == 302:
            assert response["Location"].startswith(login), name


def test_objects_are_addressed_by_uuid_codes_never_by_pk():
    for route, name, params in app_patterns():
        assert "<int:" not in route, f"{name} takes an integer id"
        assert params - {"uidb64", "token"} <= ID_PARAMETERS, name
        for param in params & {
            "customer_code",
            "channel_code",
            "invitation_code",
            "recipient_code",
            "endpoint_code",
            "key_code",
        }:
            assert f"<uuid:{param}>" in route, name


def test_a_deleted_channel_is_404(client, alice, channel):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.DELETED)
    client.force_login(alice)
    assert client.get(reverse("channels_app:channel", args=[channel.code])).status_code == 404


def test_a_channel_without_customer_is_404(client, alice, project, channel):
    Project.objects.filter(pk=project.pk).update(customer=None)
    client.force_login(alice)
    assert client.get(reverse("channels_app:channel", args=[channel.code])).status_code == 404


def test_a_superuser_reads_every_customer_but_writes_nothing(client, customer, channel, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@partner.example", "root-password")
    client.force_login(admin)
    assert client.get(reverse("channels_app:dashboard", args=[customer.code])).status_code == 200
    assert client.get(reverse("channels_app:channel", args=[channel.code])).status_code == 200
    assert client.post(reverse("channels_app:channel_rename", args=[channel.code]), {"name": "x"}).status_code == 403


def test_a_user_in_two_customers_switches_between_them(client, alice, customer, charlie):
    other = Customer.objects.get(name="Other Inc")
    Membership.objects.create(customer=other, user=alice, role=Membership.Role.VIEWER)
    client.force_login(alice)
    page = client.get(reverse("channels_app:dashboard", args=[customer.code])).content.decode()
    assert reverse("channels_app:dashboard", args=[other.code]) in page
    assert client.get(reverse("channels_app:dashboard", args=[other.code])).status_code == 200
    # Home remembers the customer used last.
    assert client.get(reverse("channels_app:home"))["Location"] == reverse("channels_app:dashboard", args=[other.code])


def test_customers_for_user_lists_only_memberships(alice, charlie, customer):
    assert list(access.customers_for_user(alice)) == [customer]
    assert customer not in access.customers_for_user(charlie)
