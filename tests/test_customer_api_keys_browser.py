"""The API keys page in a real browser (Debian's chromium via Playwright): an owner makes a
read-and-write key for one channel, copies it with the Copy button, sees it once, and revokes it
after a confirmation. The test takes docs/screenshots/api-keys.png (with UPDATE_SCREENSHOTS=1)."""

import pytest
from playwright.sync_api import expect

from api.keys import api_key_authenticate
from api.models import ApiKey
from channels_app.models import Channel
from tests.test_customer_browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_makes_copies_and_revokes_a_key(portal, owner, browser_page, live_server):
    _, project = portal
    Channel.objects.create(project=project, name="Shop bot", whapi_id="SHOPBT-00001", state="connected")
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server)
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()

    page.get_by_role("button", name="Make the key").click()
    expect(page.locator(".field.has-error")).to_contain_text("This field is required.")

    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("Scope").select_option(label="Only the channel Shop bot (SHOPBT-00001)")
    page.get_by_label("Read and write").check()
    page.get_by_role("button", name="Make the key").click()
    shown = page.locator("#new-api-key")
    expect(shown).to_be_visible()
    key = shown.input_value()
    row = api_key_authenticate(key)
    assert row is not None and row.can_write and row.channel.name == "Shop bot"
    screenshot(page, "api-keys", full_page=True)

    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key

    page.get_by_role("link", name="API keys").click()
    expect(page.locator("#keys")).to_contain_text("CRM sync")
    expect(page.locator("#new-api-key")).to_have_count(0)
    assert key not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("no longer works")).to_be_visible()
    assert ApiKey.objects.get().revoked_at is not None
