"""Two-factor sign-in for customer users: optional, turned on and off by the user on /app/two-factor/."""

import re

from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from channels_app.models import AuditLog

PAGE = reverse("channels_app:two_factor")
LOGIN = reverse("channels_app:login")


def code_of(device: TOTPDevice) -> str:
    return f"{TOTP(device.bin_key).token():06d}"


def turn_on(client) -> tuple[TOTPDevice, list[str]]:
    page = client.post(PAGE, {"action": "start"}).content.decode()
    assert "Scan this with an authenticator app" in page and 'src="data:image/svg+xml;base64,' in page
    device = TOTPDevice.objects.get(confirmed=False)
    page = client.post(PAGE, {"action": "confirm", "code": code_of(device)}).content.decode()
    assert "Two-factor sign-in is on." in page
    return TOTPDevice.objects.get(pk=device.pk), re.findall(r"<code>([a-z0-9]{8})</code>", page)


def test_it_is_off_until_the_user_turns_it_on(client, alice):
    client.force_login(alice)
    assert "Two-factor sign-in is off" in client.get(PAGE).content.decode()
    client.logout()
    assert client.post(LOGIN, {"username": "alice", "password": "alice-password"}).status_code == 302


def test_turning_it_on_needs_a_code_from_the_new_key_and_shows_recovery_codes(client, alice):
    client.force_login(alice)
    client.post(PAGE, {"action": "start"})
    page = client.post(PAGE, {"action": "confirm", "code": "000000"}).content.decode()
    assert "That code is not right" in page and "Scan this" in page
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    device, codes = turn_on(client)
    assert device.confirmed and len(codes) == 10
    assert AuditLog.objects.get(action="account.two_factor_on").actor == alice


def test_signing_in_then_asks_for_the_code(client, alice):
    client.force_login(alice)
    _, codes = turn_on(client)
    client.logout()
    response = client.post(LOGIN, {"username": "alice", "password": "alice-password"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Enter the code from your authenticator app." in response.content.decode()
    assert 'name="otp_token"' in response.content.decode()
    response = client.post(LOGIN, {"username": "alice", "password": "alice-password", "otp_token": "000000"})
    assert "That code is not right" in response.content.decode()
    response = client.post(LOGIN, {"username": "alice", "password": "alice-password", "otp_token": codes[0]})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_wrong_password_is_refused_before_any_code_is_asked_for(client, alice):
    client.force_login(alice)
    turn_on(client)
    client.logout()
    page = client.post(LOGIN, {"username": "alice", "password": "wrong"}).content.decode()
    assert "Please enter a correct username and password" in page and 'name="otp_token"' not in page


def test_turning_it_off_needs_a_code(client, alice):
    client.force_login(alice)
    _, codes = turn_on(client)
    page = client.post(PAGE, {"action": "off", "code": "000000"}).content.decode()
    assert "That code is not right" in page
    # (The app's code just used to turn it on cannot be used twice: a recovery code, then.)
    assert client.post(PAGE, {"action": "off", "code": codes[0]})["Location"] == PAGE
    assert not TOTPDevice.objects.exists()
    client.logout()
    assert client.post(LOGIN, {"username": "alice", "password": "alice-password"}).status_code == 302
