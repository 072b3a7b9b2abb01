"""The staff console in a real browser (Debian's chromium via Playwright) against the live portal
and the built-in Whapi sandbox, with the worker running in the background."""

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from channels_app.models import AuditLog, Channel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_add_a_channel_and_watch_it_reach_waiting_for_scan(portal, background_worker, browser_page, live_server):
    _, project = portal
    root = get_user_model().objects.create_superuser("root", "root@partner.example", "root-password")
    device = TOTPDevice.objects.create(user=root, name="authenticator", confirmed=True)
    page = browser_page

    page.goto(f"{live_server.url}/admin/channels_app/channel/add/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password")
    page.get_by_label("Authentication code").fill(f"{TOTP(device.bin_key).token():06d}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Add channel")).to_be_visible()
    expect(page.locator("#create-budget")).to_contain_text("0 of 18 creations used")

    # The project is picked through the admin's autocomplete (it searches customers' projects).
    page.locator(".field-project .select2-selection").click()
    page.locator(".select2-search__field").fill("Default")
    page.locator(".select2-results__option", has_text=project.name).click()
    page.get_by_label("Name").fill("Shop bot")
    page.get_by_role("button", name="Request the channel").click()

    expect(page.locator(".messagelist")).to_contain_text("Channel “Shop bot” requested for Acme Corp.")
    # The page refreshes itself while the pipeline runs: queued, creating, initializing, configuring…
    expect(page.locator("h2.channel-state")).to_have_text("Waiting for scan", timeout=20_000)
    expect(page.locator(".channel-status")).to_contain_text("The customer scans the QR code")
    expect(page.locator(".channel-timeline")).to_contain_text("webhooks set and verified")

    channel = Channel.objects.get(name="Shop bot")
    assert channel.whapi_id and channel.webhooks_verified_at
    assert AuditLog.objects.get(action="channel.request").actor.username == "root"
    page.goto(f"{live_server.url}/admin/channels_app/channel/")
    expect(page.locator("#result_list")).to_contain_text(channel.whapi_id)
