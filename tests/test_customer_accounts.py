"""Customer accounts: signing in (throttled) and out, passwords, and the email settings."""

import re
import runpy
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from channels_app.models import FailedLogin
from channels_app.throttle import (
    MAX_FAILURES_PER_IP,
    MAX_FAILURES_PER_USERNAME,
    MAX_RESETS_PER_EMAIL,
    MAX_RESETS_PER_IP,
    login_wait,
)

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "portal" / "settings.py"
LOGIN = reverse("channels_app:login")


def log_in(client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


# ------------------------------------------------------------------------------------------------
# Signing in and out
# ------------------------------------------------------------------------------------------------
def test_the_root_leads_to_the_login_page(client, db):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith(LOGIN)
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_it_signs_in_and_lands_on_the_dashboard(client, alice, customer):
    response = log_in(client, "alice", "alice-password")
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response["Location"] == reverse("channels_app:dashboard", args=[customer.code])


def test_it_shows_a_wrong_password_next_to_the_form(client, alice):
    response = log_in(client, "alice", "wrong")
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert FailedLogin.objects.filter(username="alice").count() == 1


def test_the_login_form_says_which_field_is_missing(client, db):
    response = client.post(LOGIN, {"username": "", "password": ""})
    form = response.context["form"]
    assert form.errors["username"] == ["This field is required."]
    assert form.errors["password"] == ["This field is required."]
    assert not FailedLogin.objects.exists()


def test_it_throttles_a_username_from_an_address_after_repeated_failures(client, alice):
    for _ in range(MAX_FAILURES_PER_USERNAME):
        log_in(client, "Alice", "wrong", ip="198.51.100.7")
    # From that address even the right password is refused now, without being checked.
    response = log_in(client, "alice", "alice-password", ip="198.51.100.7")
    assert "_auth_user_id" not in client.session
    assert "Too many failed attempts; try again in 15 minutes." in response.content.decode()
    assert FailedLogin.objects.count() == MAX_FAILURES_PER_USERNAME  # refusals are not counted


def test_failures_from_elsewhere_do_not_lock_the_real_user_out(client, alice):
    for index in range(MAX_FAILURES_PER_USERNAME * 3):
        log_in(client, "alice", "wrong", ip=f"198.51.100.{index}")
    assert log_in(client, "alice", "alice-password", ip="192.0.2.1").status_code == 302


def test_an_attempt_is_counted_before_its_password_is_checked(client, alice, monkeypatch):
    """Parallel guesses count each other: when the password is checked, the attempt is on record."""
    from django.contrib.auth import forms as auth_forms

    seen = []
    authenticate = auth_forms.authenticate

    def checking(*args, **kwargs):
        seen.append(FailedLogin.objects.filter(username="alice", ip="198.51.100.7").count())
        return authenticate(*args, **kwargs)

    monkeypatch.setattr(auth_forms, "authenticate", checking)
    log_in(client, "alice", "wrong", ip="198.51.100.7")
    log_in(client, "alice", "wrong", ip="198.51.100.7")
    assert seen == [1, 2]


def test_it_throttles_an_address_that_tries_many_usernames(client, alice):
    for index in range(MAX_FAILURES_PER_IP):
        log_in(client, f"guess{index}", "wrong", ip="203.0.113.9")
    response = log_in(client, "alice", "alice-password", ip="203.0.113.9")
    assert "Too many failed attempts" in response.content.decode()
    # Another address is not affected.
    assert log_in(client, "alice", "alice-password", ip="203.0.113.10").status_code == 302


def test_the_throttle_lifts_after_the_window(client, alice):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(MAX_FAILURES_PER_USERNAME):
            log_in(client, "alice", "wrong")
        clock.shift(timedelta(minutes=14))
        assert "try again in 1 minute." in log_in(client, "alice", "alice-password").content.decode()
        clock.shift(timedelta(minutes=1, seconds=1))
        assert log_in(client, "alice", "alice-password").status_code == 302
    # A success clears the failures of that username.
    assert not FailedLogin.objects.filter(username="alice").exists()


def test_the_throttle_is_shared_through_the_database(alice):
    FailedLogin.objects.bulk_create([FailedLogin(username="alice", ip=None) for _ in range(MAX_FAILURES_PER_USERNAME)])
    assert 890 < login_wait("alice", None) <= 900


def test_old_failures_are_cleaned_up(client, alice):
    FailedLogin.objects.create(username="old", at=timezone.now() - timedelta(hours=1))
    log_in(client, "alice", "wrong")
    assert not FailedLogin.objects.filter(username="old").exists()


def test_the_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_user("sam", "sam@partner.example", "sam-password", is_staff=True)
    for _ in range(MAX_FAILURES_PER_USERNAME):
        client.post(reverse("admin:login"), {"username": "sam", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "sam", "password": "sam-password"})
    assert "Too many failed attempts" in response.content.decode()


def test_the_client_address_comes_from_x_forwarded_for_only_when_trusted(client, alice, settings):
    settings.TRUST_X_FORWARDED_FOR = True
    log_in(client, "alice", "wrong", ip="10.0.0.1")
    client.post(
        LOGIN,
        {"username": "alice", "password": "wrong"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20",
    )
    assert list(FailedLogin.objects.order_by("id").values_list("ip", flat=True)) == ["10.0.0.1", "198.51.100.20"]


def test_logout_needs_a_post_and_signs_out(client, alice):
    client.force_login(alice)
    assert client.get(reverse("channels_app:logout")).status_code == 405
    response = client.post(reverse("channels_app:logout"), follow=True)
    assert "_auth_user_id" not in client.session
    assert b"You are signed out." in response.content


def test_a_user_without_customer_sees_a_notice(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    response = client.get(reverse("channels_app:home"))
    assert response.status_code == 200
    assert b"No channels for you yet" in response.content


# ------------------------------------------------------------------------------------------------
# Passwords
# ------------------------------------------------------------------------------------------------
def test_it_changes_the_password(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("channels_app:password_change"),
        {
            "old_password": "alice-password",
            "new_password1": "a-new-long-pass-42",
            "new_password2": "a-new-long-pass-42",
        },
    )
    assert response["Location"] == reverse("channels_app:password_change_done")
    alice.refresh_from_db()
    assert alice.check_password("a-new-long-pass-42")


def test_the_password_change_form_shows_its_errors(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("channels_app:password_change"),
        {"old_password": "wrong", "new_password1": "short", "new_password2": "other"},
    )
    page = response.content.decode()
    assert "Your old password was entered incorrectly" in page
    assert "The two password fields didn’t match." in page


def test_the_password_pages_keep_the_navigation_of_the_customer_used_last(client, alice, customer):
    client.force_login(alice)
    for name in ("password_change", "password_change_done"):
        page = client.get(reverse(f"channels_app:{name}")).content.decode()
        assert reverse("channels_app:dashboard", args=[customer.code]) in page
        assert reverse("channels_app:members", args=[customer.code]) in page
        assert "Acme Corp" in page


def test_with_debug_on_a_missing_page_is_still_the_portals_own(client, alice, settings):
    settings.DEBUG = True  # as `make run` has it: Django would show its technical 404 page
    client.force_login(alice)
    for path in ("/app/no-such-page/", "/app/channels/00000000-0000-0000-0000-000000000000/"):
        response = client.get(path)
        page = response.content.decode()
        assert response.status_code == 404
        assert "Page not found" in page and "URLconf" not in page
    assert client.get("/app/password").status_code == 301  # a slash left out still leads on


def test_password_reset_mails_a_link_that_sets_a_new_password(client, alice, mailoutbox):
    response = client.post(reverse("channels_app:password_reset"), {"email": "alice@acme.example"})
    assert response["Location"] == reverse("channels_app:password_reset_done")
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alice@acme.example"]
    assert mail.subject == "Reset your password for Channel portal"
    link = re.search(r"https?://testserver(/app/password/reset/\S+)", mail.body).group(1)

    response = client.get(link, follow=True)  # Django swaps the token for a session-bound URL
    assert b"Choose a password" in response.content
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": "brand-new-pass-77", "new_password2": "brand-new-pass-77"}
    )
    assert response["Location"] == reverse("channels_app:password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password("brand-new-pass-77")


def test_the_password_reset_forms_show_their_errors(client, alice, mailoutbox):
    response = client.post(reverse("channels_app:password_reset"), {"email": "not-an-email"})
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]
    client.post(reverse("channels_app:password_reset"), {"email": "alice@acme.example"})
    link = re.search(r"https?://testserver(/app/password/reset/\S+)", mailoutbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "brand-new-pass-77", "new_password2": "other-pass-77"})
    assert "The two password fields didn’t match." in response.content.decode()
    response = client.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert "This password is entirely numeric." in response.content.decode()


def test_password_reset_mails_to_one_address_are_throttled_and_the_answer_stays_the_same(client, alice, mailoutbox):
    answers = set()
    for index in range(MAX_RESETS_PER_EMAIL + 3):
        response = client.post(
            reverse("channels_app:password_reset"), {"email": "alice@acme.example"}, REMOTE_ADDR=f"198.51.100.{index}"
        )
        answers.add((response.status_code, response["Location"]))
    assert answers == {(302, reverse("channels_app:password_reset_done"))}
    assert len(mailoutbox) == MAX_RESETS_PER_EMAIL


def test_password_reset_requests_from_one_address_are_throttled(client, django_user_model, mailoutbox):
    for index in range(MAX_RESETS_PER_IP + 2):
        django_user_model.objects.create_user(f"user{index}", f"user{index}@acme.example", "pw-123456789")
        response = client.post(
            reverse("channels_app:password_reset"), {"email": f"user{index}@acme.example"}, REMOTE_ADDR="203.0.113.5"
        )
        assert response["Location"] == reverse("channels_app:password_reset_done")
    assert len(mailoutbox) == MAX_RESETS_PER_IP


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db, mailoutbox):
    response = client.post(reverse("channels_app:password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("channels_app:password_reset_done")
    assert mailoutbox == []


def test_a_used_reset_link_has_expired(client, alice):
    response = client.get(reverse("channels_app:password_reset_confirm", args=["MQ", "bad-token"]))
    assert b"This link has expired" in response.content


# ------------------------------------------------------------------------------------------------
# Email settings
# ------------------------------------------------------------------------------------------------
PRODUCTION = {
    "DJANGO_ENV_FILE": "",
    "DJANGO_DEBUG": "off",
    "DJANGO_SECRET_KEY": "a-long-production-secret-key-for-the-settings-tests-0123456789",
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLWZvci10aGUtcG9ydGFsLXRlc3Q=",
    "WHAPI_PARTNER_TOKEN": "partner-token",
    "PORTAL_BASE_URL": "https://portal.example.com",
}


def load_settings(monkeypatch, **overrides) -> dict:
    for name in ("EMAIL_URL", "DEFAULT_FROM_EMAIL", "DATABASE_URL", "DJANGO_TRUST_X_FORWARDED_FOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**PRODUCTION, **overrides}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_email_goes_to_the_console_in_development(monkeypatch):
    settings = load_settings(monkeypatch, DJANGO_DEBUG="on")
    assert settings["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_email_goes_to_the_local_mail_server_in_production_by_default(monkeypatch):
    settings = load_settings(monkeypatch)
    assert settings["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert settings["LOGIN_URL"] == "channels_app:login"


def test_email_url_configures_smtp(monkeypatch):
    settings = load_settings(
        monkeypatch,
        EMAIL_URL="smtp+tls://mailer:s3cr%40t@smtp.example.com:587",
        DEFAULT_FROM_EMAIL="Acme <portal@acme.example>",
    )
    assert settings["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (settings["EMAIL_HOST"], settings["EMAIL_PORT"]) == ("smtp.example.com", 587)
    assert (settings["EMAIL_HOST_USER"], settings["EMAIL_HOST_PASSWORD"]) == ("mailer", "s3cr@t")
    assert settings["EMAIL_USE_TLS"] is True
    assert settings["DEFAULT_FROM_EMAIL"] == "Acme <portal@acme.example>"


def test_a_bad_email_url_names_the_variable(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match=r"^EMAIL_URL: has the unknown scheme 'smtpx'"):
        load_settings(monkeypatch, EMAIL_URL="smtpx://smtp.example.com")


def test_addresses_of_one_ipv6_64_count_as_one_client(client, alice):
    for index in range(MAX_FAILURES_PER_USERNAME):
        log_in(client, "alice", "wrong", ip=f"2001:db8:1:2::{index + 1:x}")
    response = log_in(client, "alice", "alice-password", ip="2001:db8:1:2::ff")
    assert "Too many failed attempts" in response.content.decode()
    assert log_in(client, "alice", "alice-password", ip="2001:db8:1:3::1").status_code == 302
