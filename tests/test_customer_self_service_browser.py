"""An owner deletes a channel and restarts one in error from the customer pages, in a real browser
(Debian's chromium via Playwright) against the live portal and the built-in Whapi sandbox."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from channels_app.configure import desired_settings
from channels_app.models import AuditLog, Channel
from tests.test_customer_browser import PHONE, log_in, sandbox_control

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def channel_in_sandbox(portal, *, name: str, whapi_id: str, forced_status: str | None = None, **fields) -> Channel:
    """A channel as the pipeline leaves it, registered in the sandbox as linked to PHONE."""
    sandbox, project = portal
    channel = Channel.objects.create(
        project=project,
        name=name,
        whapi_id=whapi_id,
        whapi_project_id=project.whapi_id,
        api_url=f"{sandbox.url}/gate/",
        token=f"token-{whapi_id}",
        connected_number=PHONE,
        **fields,
    )
    item = {
        "id": whapi_id,
        "token": channel.token,
        "user": {"id": PHONE, "name": "Alice"},
        "settings": desired_settings(channel),
        "project_id": project.whapi_id,
    }
    if forced_status:
        item["forced_status"] = forced_status
    sandbox_control(sandbox, "/channels", channels=[item])
    return channel


def sandbox_has(sandbox, whapi_id: str) -> bool:
    return whapi_id in sandbox.state.channels


def test_an_owner_deletes_a_channel_after_reading_what_is_lost(portal, owner, browser_page, live_server):
    sandbox, _ = portal
    channel = channel_in_sandbox(portal, name="Old shop", whapi_id="OLDSHP-00001", state=Channel.State.CONNECTED)
    page = browser_page
    log_in(page, live_server)
    page.get_by_role("link", name="Old shop").click()
    page.get_by_role("link", name="Delete the channel…").click()
    expect(page.get_by_role("heading", name="Delete “Old shop”?")).to_be_visible()
    expect(page.get_by_text(f"+{PHONE}")).to_be_visible()
    expect(page.get_by_text("back to your provider's balance")).to_be_visible()
    assert sandbox_has(sandbox, channel.whapi_id)  # nothing happened yet

    page.get_by_role("button", name="Delete the channel").click()
    expect(page.get_by_text("“Old shop” was deleted.")).to_be_visible()
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    expect(page.get_by_role("link", name="Old shop")).to_have_count(0)
    assert not sandbox_has(sandbox, channel.whapi_id)
    assert AuditLog.objects.get(action="channel.delete").actor == owner


def test_an_owner_restarts_a_channel_in_error_and_sees_it_come_back(
    portal, owner, background_worker, browser_page, live_server
):
    channel = channel_in_sandbox(
        portal,
        name="Stuck bot",
        whapi_id="STUCKB-00001",
        forced_status="ERROR",
        state=Channel.State.ERROR,
        health_status="ERROR",
        error_source=Channel.ErrorSource.HEALTH,
        last_error="Whapi reports ERROR for this channel.",
    )
    page = browser_page
    log_in(page, live_server)
    page.goto(live_server.url + reverse("channels_app:channel", args=[channel.code]))
    expect(page.locator("#status")).to_contain_text("Error")
    page.get_by_role("button", name="Restart the channel").click()
    expect(page.get_by_text("Whapi is restarting the channel.")).to_be_visible()
    assert AuditLog.objects.get(action="channel.restart").actor == owner

    # The sandbox starts the channel again (its phone stays linked) and reports AUTH by webhook; the
    # worker applies it. The page shows the channel connected once it is.
    deadline = time.monotonic() + 15
    while Channel.objects.get(pk=channel.pk).state != Channel.State.CONNECTED:
        assert time.monotonic() < deadline, "the channel did not come back"
        time.sleep(0.1)
    page.reload()
    expect(page.locator("#status")).to_contain_text("Connected")
    expect(page.get_by_role("button", name="Restart the channel")).to_have_count(0)
