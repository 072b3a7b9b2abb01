"""Times in the user's zone, named: the profile's choice, else the browser's cookie, else UTC; the
staff console stays in UTC."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app import handoff
from channels_app.models import UserProfile
from channels_app.templatetags.portal_time import when_text
from portal.timezones import COOKIE
from tests.conftest import staff_login


def handoff_page(client, link) -> str:
    client.get(reverse("channels_app:handoff", args=[handoff.handoff_token(link)]))
    return client.get(reverse("channels_app:handoff_page")).content.decode()


@pytest.fixture
def link(channel, alice, whapi):
    return handoff.handoff_create(channel=channel, actor=alice)


def test_a_time_is_shown_with_its_zone():
    instant = datetime(2026, 7, 1, 12, 5, tzinfo=UTC)
    with timezone.override(zoneinfo.ZoneInfo("Europe/Lisbon")):
        assert when_text(instant, "H:i") == "13:05 Europe/Lisbon"
    assert when_text(instant, "j M Y, H:i") == "1 Jul 2026, 12:05 UTC"


def test_the_handoff_page_shows_times_in_the_browsers_zone(client, link):
    client.cookies[COOKIE] = "America/Sao_Paulo"
    local = timezone.localtime(link.expires_at, zoneinfo.ZoneInfo("America/Sao_Paulo"))
    page = handoff_page(client, link)
    assert f'Link valid until <time datetime="{link.expires_at.isoformat()}">{local:%H:%M} America/Sao_Paulo' in page
    assert 'data-time-zone="America/Sao_Paulo" data-time-zone-source="browser"' in page


@pytest.mark.parametrize("cookie", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
def test_an_unknown_zone_in_the_cookie_is_utc(client, link, cookie):
    client.cookies[COOKIE] = cookie
    page = handoff_page(client, link)
    assert f"{link.expires_at:%H:%M} UTC</time>" in page
    assert 'data-time-zone-source="default"' in page


def invite(client, customer):
    client.post(reverse("channels_app:member_invite", args=[customer.code]), {"email": "d@x.example", "role": "viewer"})


def test_the_profiles_zone_wins_over_the_browsers(client, alice, customer, mailoutbox):
    client.force_login(alice)
    client.cookies[COOKIE] = "America/Sao_Paulo"
    profile_url = reverse("channels_app:profile")
    page = client.get(profile_url).content.decode()
    assert "As my browser says (America/Sao_Paulo)" in page
    response = client.post(profile_url, {"time_zone": "Asia/Tokyo", "language": "pt-br"})
    assert response["Location"] == profile_url
    profile = UserProfile.objects.get(user=alice)
    assert (profile.time_zone, profile.language) == ("Asia/Tokyo", "pt-br")

    invite(client, customer)
    page = client.get(reverse("channels_app:members", args=[customer.code])).content.decode()
    expires = alice.customers.get().invitations.get().expires_at
    assert f"{timezone.localtime(expires, zoneinfo.ZoneInfo('Asia/Tokyo')):%H:%M} Asia/Tokyo</time>" in page

    # Back to the browser's.
    client.post(profile_url, {"time_zone": "", "language": ""})
    page = client.get(reverse("channels_app:members", args=[customer.code])).content.decode()
    assert "America/Sao_Paulo</time>" in page and "Asia/Tokyo</time>" not in page


def test_a_choice_made_in_another_browser_is_read_at_sign_in(client, alice, customer):
    UserProfile.objects.create(user=alice, time_zone="Australia/Perth")
    client.force_login(alice)
    page = client.get(reverse("channels_app:profile")).content.decode()
    assert 'data-time-zone="Australia/Perth" data-time-zone-source="profile"' in page


def test_the_profile_refuses_an_unknown_zone(client, alice):
    client.force_login(alice)
    response = client.post(reverse("channels_app:profile"), {"time_zone": "Mars/Olympus_Mons", "language": ""})
    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    assert not UserProfile.objects.exists()


def test_the_profile_needs_a_sign_in(client, db):
    assert reverse("channels_app:login") in client.get(reverse("channels_app:profile"))["Location"]


def test_the_staff_console_stays_in_utc(client, django_user_model, channel, alice, whapi):
    staff = django_user_model.objects.create_superuser("root", "root@partner.example", "pw")
    UserProfile.objects.create(user=staff, time_zone="Asia/Tokyo")
    staff_login(client, staff)
    client.cookies[COOKIE] = "Asia/Tokyo"
    link = handoff.handoff_create(channel=channel, actor=alice, lifetime=timedelta(hours=2))
    page = client.get(reverse("admin:channels_app_channel_change", args=[channel.pk])).content.decode()
    assert f"Works until {link.expires_at:%Y-%m-%d %H:%M} UTC" in page


def test_the_invitation_mail_names_the_zone(client, alice, customer, mailoutbox):
    client.force_login(alice)
    invite(client, customer)
    assert " UTC), with an" in mailoutbox[0].body
