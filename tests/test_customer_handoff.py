"""Hand-off links: one channel's QR / pairing code and status for whoever holds the phone, no login.

Signed, expiring, revocable; only the newest link of a channel works; every use is recorded.
"""

from datetime import timedelta
from pathlib import Path

import pytest
import responses
import time_machine
from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from channels_app import handoff
from channels_app.models import AuditLog, Channel, HandoffLink, Membership
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel, whapi_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "whapi"
GATE = GATE_URL.rstrip("/")
EXPIRED = "This link has expired"


@pytest.fixture(autouse=True)
def _whapi_mocked(whapi):
    return whapi


@pytest.fixture
def link(channel, alice) -> HandoffLink:
    return handoff.handoff_create(channel=channel, actor=alice)


def handoff_url(link: HandoffLink, name: str = "handoff") -> str:
    """The link itself ("handoff", with its token), or a URL of the page it leads to (no token)."""
    if name == "handoff":
        return reverse("channels_app:handoff", args=[handoff.handoff_token(link)])
    return reverse(f"channels_app:{name}")


def open_link(client, link: HandoffLink):
    """Open the link as the phone's holder does: it sets its cookie and leads to the page."""
    response = client.get(handoff_url(link))
    assert response.status_code == 302 and response["Location"] == reverse("channels_app:handoff_page")
    return response


# ------------------------------------------------------------------------------------------------
# Making and revoking links (owners and operators)
# ------------------------------------------------------------------------------------------------
def test_it_works(client, bob, channel):
    client.force_login(bob)
    response = client.post(reverse("channels_app:handoff_create", args=[channel.code]), {"minutes": "30"})
    assert response["Location"].endswith("#handoff")
    link = HandoffLink.objects.get()
    assert (link.channel, link.created_by) == (channel, bob)
    assert timedelta(minutes=29) < link.expires_at - timezone.now() <= timedelta(minutes=30)
    page = client.get(reverse("channels_app:channel", args=[channel.code])).content.decode()
    assert handoff_url(link) in page
    assert AuditLog.objects.get(action="handoff.create").actor == bob


def test_a_new_link_revokes_the_old_one(client, bob, channel, link):
    old = handoff_url(link)
    client.force_login(bob)
    response = client.post(reverse("channels_app:handoff_create", args=[channel.code]), {"minutes": "120"}, follow=True)
    assert "The previous link no longer works." in response.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is not None
    client.logout()
    assert client.get(old).status_code == 410
    newest = HandoffLink.objects.exclude(pk=link.pk).get()
    assert client.get(handoff_url(newest)).status_code == 302  # to the page


def test_the_lifetime_is_validated(client, bob, channel):
    client.force_login(bob)
    response = client.post(reverse("channels_app:handoff_create", args=[channel.code]), {"minutes": "100000"})
    assert "Select a valid choice" in response.content.decode()
    assert not HandoffLink.objects.exists()


def test_revoking_stops_the_link(client, bob, channel, link):
    client.force_login(bob)
    response = client.post(reverse("channels_app:handoff_revoke", args=[channel.code]), follow=True)
    assert "The hand-off link no longer works." in response.content.decode()
    assert AuditLog.objects.get(action="handoff.revoke").actor == bob
    client.logout()
    response = client.get(handoff_url(link))
    assert response.status_code == 410
    assert EXPIRED in response.content.decode()


def test_a_revoked_link_stops_on_the_page_it_led_to(client, bob, channel, link):
    open_link(client, link)
    assert client.get(handoff_url(link, "handoff_page")).status_code == 200
    handoff.handoff_revoke(channel=channel, actor=bob)
    assert client.get(handoff_url(link, "handoff_page")).status_code == 410
    assert client.get(handoff_url(link, "handoff_status")).status_code == 410


def test_it_requires_rw_access(client, customer, channel):
    viewer = get_user_model().objects.create_user("vera", password="x")
    Membership.objects.create(customer=customer, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert client.post(reverse("channels_app:handoff_create", args=[channel.code])).status_code == 403
    assert client.post(reverse("channels_app:handoff_revoke", args=[channel.code])).status_code == 403
    assert not HandoffLink.objects.exists()


def test_it_checks_membership(client, charlie, channel):
    client.force_login(charlie)
    assert client.post(reverse("channels_app:handoff_create", args=[channel.code])).status_code == 404


# ------------------------------------------------------------------------------------------------
# Using a link (no login)
# ------------------------------------------------------------------------------------------------
def test_the_link_shows_only_that_channel_without_a_login(client, project, channel, link):
    make_channel(project, name="Another bot", whapi_id="OTHERS-CH4NL")
    open_link(client, link)
    response = client.get(handoff_url(link, "handoff_page"))
    page = response.content.decode()
    assert response.status_code == 200
    assert handoff.handoff_token(link) not in page  # the page and what it polls carry no token
    assert "Connect “Shop bot”" in page
    assert "Connect a phone" in page
    assert handoff_url(link, "handoff_qr") in page
    for secret_or_other in (CHANNEL_TOKEN, GATE_URL, "Another bot", "Acme", "Log out", "MANTIS-M72HC"):
        assert secret_or_other not in page
    assert response["Cache-Control"] == "no-store"


def test_every_use_is_recorded(client, channel, link):
    client.get(handoff_url(link))
    client.get(handoff_url(link))
    link.refresh_from_db()
    assert link.uses == 2
    assert link.last_used_at is not None
    entries = AuditLog.objects.filter(action="handoff.open")
    assert entries.count() == 2
    assert {(entry.source, entry.actor, entry.customer_id) for entry in entries} == {
        ("handoff", None, channel.project.customer_id)
    }


def test_the_link_keeps_its_token_in_a_cookie_for_the_page_only(client, link):
    response = open_link(client, link)
    cookie = response.cookies["portal_handoff"]
    assert cookie.value == handoff.handoff_token(link)
    assert (cookie["path"], cookie["httponly"], cookie["samesite"]) == ("/connect/", True, "Lax")
    assert cookie["secure"] is True  # DJANGO_DEBUG is off
    assert 0 < int(cookie["max-age"]) <= 30 * 60


def test_without_the_cookie_the_page_has_expired(client, link):
    for name in ("handoff_page", "handoff_status", "handoff_qr"):
        assert client.get(handoff_url(link, name)).status_code == 410


def test_the_status_and_qr_work_through_the_link(client, channel, link, whapi):
    open_link(client, link)
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_plain.json"))
    data = client.get(handoff_url(link, "handoff_status")).json()
    assert (data["state"], data["connect"], data["poll"]) == ("waiting_scan", True, True)
    assert "Scan the QR code below with WhatsApp on the phone." in data["html"]
    response = client.get(handoff_url(link, "handoff_qr"))
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")


def test_a_link_stops_once_the_number_is_connected_and_says_so(client, channel, link, whapi):
    open_link(client, link)
    Channel.objects.filter(pk=channel.pk).update(
        state=Channel.State.CONNECTED,
        connected_number="4915112345678",
        connected_name="Alice Example",
        connected_at=timezone.now(),
    )
    # The page's poll and QR stop (the page then loads itself again), and so does the link.
    assert client.get(handoff_url(link, "handoff_status")).status_code == 410
    assert client.get(handoff_url(link, "handoff_qr")).status_code == 410
    for response in (client.get(handoff_url(link, "handoff_page")), client.get(handoff_url(link))):
        page = response.content.decode()
        assert response.status_code == 410
        assert "The number is connected" in page and EXPIRED not in page
        assert "5678" not in page and "Alice Example" not in page
    response = client.post(handoff_url(link, "handoff_pairing_code"), {"phone": "14155550123"})
    assert response.status_code == 410
    assert not whapi.calls


def test_a_link_made_before_a_connection_stays_stopped_after_a_disconnect(client, channel, link):
    # Whoever has the link could otherwise link a phone of theirs after the number logs out.
    now = timezone.now()
    HandoffLink.objects.filter(pk=link.pk).update(created_at=now - timedelta(minutes=10))
    Channel.objects.filter(pk=channel.pk).update(
        state=Channel.State.DISCONNECTED, connected_at=now - timedelta(minutes=5)
    )
    assert client.get(handoff_url(link)).status_code == 410
    channel.refresh_from_db()
    assert handoff.active_handoff_link(channel) is None
    # A link made after the disconnect works.
    fresh = handoff.handoff_create(channel=channel, actor=None)
    assert client.get(handoff_url(fresh)).status_code == 302


def test_a_connected_channel_offers_no_link_and_refuses_to_make_one(client, bob, project):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    old = handoff.handoff_create(channel=channel, actor=bob)
    client.force_login(bob)
    page = client.get(reverse("channels_app:channel", args=[channel.code])).content.decode()
    assert "The number is connected, so no hand-off link is needed" in page
    assert handoff_url(old) not in page and "Make a link" not in page and "Revoke" not in page
    response = client.post(reverse("channels_app:handoff_create", args=[channel.code]), {"minutes": "30"}, follow=True)
    assert "a hand-off link is needed only to link a phone" in response.content.decode()
    assert HandoffLink.objects.filter(channel=channel).count() == 1


def test_an_expired_link_of_a_connected_channel_tells_nothing(client, channel, link):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_at=timezone.now())
    HandoffLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    page = client.get(handoff_url(link)).content.decode()
    assert EXPIRED in page and "connected" not in page


def test_a_pairing_code_through_the_link_is_recorded(client, channel, link, whapi):
    open_link(client, link)
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", json=whapi_fixture("gate_login_code.json"))
    response = client.post(handoff_url(link, "handoff_pairing_code"), {"phone": "14155550123"})
    assert "ABC-123" in response.content.decode()
    entry = AuditLog.objects.get(action="channel.pairing_code")
    assert (entry.source, entry.actor) == ("handoff", None)
    link.refresh_from_db()
    assert link.uses == 2  # opening the link, and the pairing code


def test_the_pairing_code_form_is_validated_through_the_link(client, link, whapi):
    open_link(client, link)
    response = client.post(handoff_url(link, "handoff_pairing_code"), {"phone": "12ab"})
    page = response.content.decode()
    assert "Use digits only" in page
    # The page opens on the field in error, and says at the top where the error is.
    assert response.context["pairing_form"].fields["phone"].widget.attrs.get("autofocus") is True
    assert "There is an error below, in “Link with a pairing code”" in page
    assert not whapi.calls


def test_a_tampered_link_has_expired(client, link):
    token = handoff.handoff_token(link)
    forged = signing.Signer(salt=handoff.HANDOFF_SALT, key="not-our-secret").sign_object(
        {"n": link.nonce, "e": int((timezone.now() + timedelta(days=9)).timestamp())}
    )
    for bad in (token[:-2] + "xx", token.replace(":", ":A", 1), forged, "garbage"):
        response = client.get(reverse("channels_app:handoff", args=[bad]))
        assert response.status_code == 410
        assert EXPIRED in response.content.decode()


def test_a_longer_expiry_cannot_be_signed_in(client, link):
    payload = {"n": link.nonce, "e": int((timezone.now() + timedelta(days=9)).timestamp())}
    forged = signing.Signer(salt=handoff.HANDOFF_SALT).sign_object(payload)
    # Signed with our key (which an outsider lacks), the stored expiry still decides.
    HandoffLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("channels_app:handoff", args=[forged])).status_code == 410


def test_a_stale_link_has_expired(client, link, whapi):
    open_link(client, link)
    with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=False):
        for name in ("handoff", "handoff_page", "handoff_status", "handoff_qr"):
            assert client.get(handoff_url(link, name)).status_code == 410
        response = client.post(handoff_url(link, "handoff_pairing_code"), {"phone": "14155550123"})
        assert response.status_code == 410
    assert not whapi.calls


def test_a_link_of_a_deleted_channel_has_expired(client, channel, link):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.DELETED)
    assert client.get(handoff_url(link)).status_code == 410
