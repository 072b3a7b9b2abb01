"""Two-factor sign-in for staff: with DJANGO_DEBUG off (as here) the admin opens only with a password
and a one-time code (the authenticator's 6 digits, or a recovery code once); `staff_two_factor`
enrols an account."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from channels_app.models import AuditLog, FailedLogin

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_user("sam", "sam@partner.example", "sam-password", is_staff=True)


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    out = StringIO()
    call_command("staff_two_factor", user.username, "--no-qr", stdout=out)
    codes = re.findall(r"^  ([a-z0-9]{8})$", out.getvalue(), re.M)
    return TOTPDevice.objects.get(user=user), codes


def now_code(device: TOTPDevice) -> str:
    return f"{TOTP(device.bin_key).token():06d}"


def sign_in(client, code: str, password: str = "sam-password"):
    return client.post(LOGIN + "?next=" + INDEX, {"username": "sam", "password": password, "otp_token": code})


def test_staff_sign_in_with_their_password_and_the_authenticators_code(client, sam):
    device, _ = enrol(sam)
    page = client.get(LOGIN).content.decode()
    assert "Authentication code" in page
    response = sign_in(client, now_code(device))
    assert response.status_code == 302 and response["Location"] == INDEX
    assert client.get(INDEX).status_code == 200


def test_a_wrong_code_is_refused_and_counted_like_a_wrong_password(client, sam):
    enrol(sam)
    response = sign_in(client, "000000")
    assert "correct username, password and authentication code" in response.content.decode()
    assert client.get(INDEX).status_code == 302
    assert FailedLogin.objects.filter(username="sam").count() == 1


def test_a_recovery_code_works_once(client, sam):
    _, codes = enrol(sam)
    assert len(codes) == 10
    assert sign_in(client, codes[0])["Location"] == INDEX
    client.logout()
    assert "correct username, password and authentication code" in sign_in(client, codes[0]).content.decode()


def test_a_password_alone_does_not_open_the_admin(client, sam):
    enrol(sam)
    client.force_login(sam)  # e.g. signed in on the customer pages
    response = client.get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "Authentication code" in client.get(response["Location"]).content.decode()


def test_an_account_without_an_authenticator_is_told_how_to_get_one(client, sam):
    response = sign_in(client, "123456")
    assert "manage.py staff_two_factor" in response.content.decode()
    assert client.get(INDEX).status_code == 302


def test_with_debug_on_a_password_is_enough(client, sam, settings):
    settings.STAFF_TWO_FACTOR = False
    response = client.post(LOGIN + "?next=" + INDEX, {"username": "sam", "password": "sam-password"})
    assert response["Location"] == INDEX
    assert client.get(INDEX).status_code == 200


def test_enrolling_again_replaces_the_key_and_the_recovery_codes(client, sam):
    old_device, old_codes = enrol(sam)
    old = now_code(old_device)
    new_device, new_codes = enrol(sam)
    assert set(old_codes).isdisjoint(new_codes)
    assert sign_in(client, new_codes[0])["Location"] == INDEX
    client.logout()
    # (A wrong code makes that device wait a moment before the next try: django-otp's throttle.)
    assert "correct username, password and authentication code" in sign_in(client, old_codes[0]).content.decode()
    if old != now_code(new_device):
        assert "correct username, password and authentication code" in sign_in(client, old).content.decode()
    assert AuditLog.objects.filter(action="staff.two_factor").count() == 2


def test_only_staff_accounts_are_enrolled(django_user_model, db):
    django_user_model.objects.create_user("customer", "c@acme.example", "pw")
    with pytest.raises(CommandError, match="No staff account"):
        call_command("staff_two_factor", "customer", "--no-qr")


def test_a_right_password_with_no_code_reads_like_a_wrong_one_and_resets_nothing(client, sam):
    enrol(sam)
    sign_in(client, "000000")
    sign_in(client, "000000")
    wrong_password = sign_in(client, "", password="nope").content.decode()
    no_code = sign_in(client, "").content.decode()
    message = "Please enter the correct username, password and authentication code"
    assert message in wrong_password and message in no_code
    assert FailedLogin.objects.filter(username="sam").count() == 4  # the failures stay counted
    assert client.get(INDEX).status_code == 302


def test_staff_cannot_enrol_a_key_of_their_own_on_the_customer_pages(client, sam):
    client.force_login(sam)  # a staff password alone, through /app/login/
    assert client.post(reverse("channels_app:two_factor"), {"action": "start"}).status_code == 403
    assert not TOTPDevice.objects.filter(user=sam).exists()
