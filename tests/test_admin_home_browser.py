"""The operations home in a real browser (Debian's chromium via Playwright) against the live portal:
staff sign in with two factors, read the fleet's figures and follow a number to the list it counts.

It also takes the screenshot of docs/operations.md (docs/screenshots/operations-home.png with
UPDATE_SCREENSHOTS=1, `make screenshots`; var/screenshots/ otherwise).
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.test_customer_browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
pytest_plugins = ["tests.fleet_fixtures"]


def test_staff_read_the_fleet_and_follow_a_number_to_its_list(fleet_data, browser_page, live_server):
    root = get_user_model().objects.create_superuser("root", "root@partner.example", "root-password")
    device = TOTPDevice.objects.create(user=root, name="authenticator", confirmed=True)
    page = browser_page

    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password")
    page.get_by_label("Authentication code").fill(f"{TOTP(device.bin_key).token():06d}")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    expect(page.locator("#figure-errors")).to_contain_text("In error")
    expect(page.locator("#figure-errors .figure-value")).to_have_text("1")
    expect(page.locator("#figure-errors")).to_have_class("figure-alert")
    expect(page.locator("#figure-state-connected .figure-value")).to_have_text("9")
    expect(page.locator("#figure-expiring-30 .figure-value")).to_have_text("3")
    expect(page.locator("#figure-budget-used")).to_contain_text("of 18 the budget allows")
    expect(page.locator("#figure-tasks-waiting .figure-value")).to_have_text("2")
    expect(page.locator("#figure-callbacks-lately .figure-value")).to_have_text("4")
    expect(page.locator("#figure-scheduler .figure-value")).to_contain_text("s ago")
    expect(page.locator("#ops-next-expiries")).to_contain_text("Ends in two days")
    # The console's list of everything stays below, with the app named in words.
    expect(page.locator("caption a.section", has_text=re.compile(r"^Channels$"))).to_be_visible()
    screenshot(page, "operations-home")

    page.locator("#figure-unscanned .figure-value a").click()
    expect(page).to_have_url(re.compile(r"/admin/channels_app/channel/\?waiting_scan_over=24$"))
    expect(page.locator("#result_list")).to_contain_text("Forgotten")
    expect(page.locator("#result_list")).not_to_contain_text("Just ready")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    page.go_back()
    page.locator("#figure-callbacks-to-apply .figure-value a").click()
    expect(page).to_have_url(re.compile(r"/admin/channels_app/webhookevent/\?outcome__exact=received$"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("FLEET-00002")
