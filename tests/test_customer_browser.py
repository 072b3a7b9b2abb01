"""The customer pages in a real browser (Debian's chromium via Playwright) against the live portal
and the built-in Whapi sandbox, with the worker running in the background.

These tests also take the screenshots of docs/customer-pages.md: into var/screenshots/ on every run,
and into docs/screenshots/ with UPDATE_SCREENSHOTS=1 (`make screenshots`), so a test run leaves the
committed pictures alone.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from channels_app.models import Channel, Customer, HandoffLink, Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "var") / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PHONE = "14155550123"


def sandbox_control(sandbox, route: str, **body) -> dict:
    response = requests.post(f"{sandbox.url}/_sandbox{route}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def log_in(page, live_server, username: str = "alice", password: str = "alice-password") -> None:
    page.goto(f"{live_server.url}/app/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def request_channel(page, name: str) -> Channel:
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    return Channel.objects.get(name=name)


def test_a_customer_creates_a_channel_watches_it_start_and_connects_it(
    portal, owner, background_worker, browser_page, live_server, settings
):
    sandbox, project = portal
    # Long enough to watch the start-up progress bar (the sandbox itself is ready sooner).
    settings.WHAPI_INIT_DELAY = 2.0
    page = browser_page
    # A channel connected earlier, so the dashboard shows more than one state.
    now = timezone.now()
    Channel.objects.create(
        project=project,
        name="Sales line",
        whapi_id="SALESS-L1NE0",
        state=Channel.State.CONNECTED,
        mode=Channel.Mode.LIVE,
        connected_number="4915112345678",
        active_till=now + timedelta(days=27, hours=1),
        requested_at=now - timedelta(days=3),
    )
    # Short-lived QR codes, to see the page fetch the next one before the current one expires.
    sandbox_control(sandbox, "/config", qr_expire_seconds=4)
    log_in(page, live_server)

    channel = request_channel(page, "Support line")

    # The page follows the pipeline without a reload: the start-up progress bar, then the QR code.
    expect(page.locator(".progress")).to_be_visible()
    qr = page.locator("#connect img.qr")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('#connect img.qr').naturalWidth") > 50
    expect(page.locator(".steps li.current")).to_have_text("Waiting for scan")
    channel.refresh_from_db()
    expect(page.locator("#channel-meta")).to_contain_text(channel.whapi_id)
    expect(page.locator("#api-url")).to_have_value(channel.api_url)
    first_qr = qr.get_attribute("src")
    expect(qr).not_to_have_attribute("src", first_qr)
    screenshot(page, "connect")

    assert channel.state == Channel.State.WAITING_SCAN
    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/scan", phone=PHONE, name="Alice")

    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    expect(page.locator("#connect")).to_be_hidden()

    page.get_by_role("link", name="← Channels").click()
    row = page.locator("tr", has_text="Support line")
    expect(row).to_contain_text("Connected")
    expect(row).to_contain_text(f"+{PHONE}")
    expect(row).to_contain_text("Trial")
    screenshot(page, "dashboard")


def test_the_dashboard_updates_states_without_a_reload(portal, owner, browser_page, live_server):
    _, project = portal
    channel = Channel.objects.create(project=project, name="Bot", whapi_id="BOTBOT-12345", state="initializing")
    page = browser_page
    log_in(page, live_server)
    row = page.locator("tr", has_text="Bot")
    expect(row).to_contain_text("Initializing")
    page.evaluate("window.notReloaded = true")

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_number=PHONE)
    expect(row).to_contain_text("Connected")
    expect(row).to_contain_text(f"+{PHONE}")
    assert page.evaluate("window.notReloaded") is True


def test_a_row_on_page_2_changes_state_live_and_the_search_form_filters(portal, owner, browser_page, live_server):
    from channels_app.views.customer import PAGE_SIZE

    _, project = portal
    now = timezone.now()
    Channel.objects.bulk_create(
        [
            Channel(
                project=project,
                name=f"Line {index:02d}",
                whapi_id=f"LINE{index:02d}-ABCDE",
                state=Channel.State.CONNECTED,
                connected_number=f"1415555{index:04d}",
                requested_at=now - timedelta(hours=1) + timedelta(minutes=index),
            )
            for index in range(PAGE_SIZE)
        ]
    )
    # The newest request: alone on page 2.
    late = Channel.objects.create(project=project, name="Late line", whapi_id="LATELI-NE000", state="initializing")
    page = browser_page
    log_in(page, live_server)
    expect(page.locator("#channel-rows")).to_have_attribute("data-poll-active", "0")  # page 1 is settled
    page.get_by_role("link", name="Next ›").click()
    expect(page.get_by_text("Page 2 of 2", exact=True)).to_be_visible()
    row = page.locator("tr", has_text="Late line")
    expect(row).to_contain_text("Initializing")
    page.evaluate("window.notReloaded = true")

    Channel.objects.filter(pk=late.pk).update(state=Channel.State.CONNECTED, connected_number=PHONE)
    expect(row).to_contain_text("Connected")
    expect(row).to_contain_text(f"+{PHONE}")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "dashboard-pages")

    # Search and filter, kept in the URL: the back button returns to the previous list.
    page.get_by_label("Search").fill("line 0")
    page.get_by_label("State").select_option(label="Connected")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr[data-channel]")).to_have_count(10)
    assert "q=line+0" in page.url and "state=connected" in page.url
    page.get_by_label("Search").fill("nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No channel matches these filters")).to_be_visible()
    page.go_back()
    expect(page.locator("tr[data-channel]")).to_have_count(10)
    page.get_by_role("link", name="Clear the filters").click()
    expect(page.locator("tr[data-channel]")).to_have_count(PAGE_SIZE)


def test_the_handoff_link_works_logged_out_until_revoked_expired_or_the_number_is_linked(
    portal, owner, background_worker, browser_page, live_server, chromium
):
    sandbox, _ = portal
    page = browser_page
    log_in(page, live_server)
    channel = request_channel(page, "Front desk")

    # The link can be sent at once: its page follows the setup until the QR code is ready.
    page.get_by_role("button", name="Make a link").click()
    link = page.locator("#handoff-url").input_value()
    assert "/connect/" in link

    # Whoever holds the phone: another browser, no session.
    phone_context = chromium.new_context(viewport=VIEWPORT)
    phone = phone_context.new_page()
    try:
        phone.goto(link)
        expect(phone.get_by_role("heading", name="Connect “Front desk”")).to_be_visible()
        expect(phone.locator("#connect img.qr")).to_be_visible()
        expect(phone.locator(".steps li.current")).to_have_text("Waiting for scan")
        channel.refresh_from_db()  # it was read as queued; the worker has created it in Whapi since
        assert "Log out" not in phone.content()
        screenshot(phone, "handoff")
        assert HandoffLink.objects.get(channel=channel).uses == 1

        # Revoked from the channel page: the link stops working.
        page.reload()
        page.get_by_role("button", name="Revoke").click()
        expect(page.locator(".message.success")).to_contain_text("no longer works")
        # The phone's page, still following the status, says so by itself.
        expect(phone.get_by_role("heading", name="This link has expired")).to_be_visible()
        response = phone.goto(link)
        assert response.status == 410
        expect(phone.get_by_role("heading", name="This link has expired")).to_be_visible()

        # A new link works until it expires.
        page.get_by_role("button", name="Make a link").click()
        fresh = page.locator("#handoff-url").input_value()
        assert phone.goto(fresh).status == 200
        HandoffLink.objects.filter(channel=channel, revoked_at__isnull=True).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        expect(phone.get_by_role("heading", name="This link has expired")).to_be_visible()
        assert phone.goto(fresh).status == 410
        expect(phone.get_by_text("This link has expired")).to_be_visible()

        # Another link, and a pairing code for the number typed on the phone.
        page.reload()
        page.get_by_role("button", name="Make a link").click()
        assert phone.goto(page.locator("#handoff-url").input_value()).status == 200
        phone.get_by_label("Phone number").fill("+1 415 555 0123")
        phone.get_by_role("button", name="Get a pairing code").click()
        code = phone.get_by_label("Pairing code").input_value()
        sandbox_control(sandbox, f"/channels/{channel.whapi_id}/pair", code=code, name="Front desk phone")
        # Linked: the link has done its job and stops; its page says so, without the number or the
        # account's name.
        expect(phone.get_by_role("heading", name="The number is connected")).to_be_visible()
        assert PHONE not in phone.content() and "Front desk phone" not in phone.content()
    finally:
        phone_context.close()


def test_another_customers_channel_is_a_404(portal, owner, browser_page, live_server):
    other = Customer.objects.create(name="Other Inc")
    project = Project.objects.create(whapi_id="otherProjectAAAAAAAAA", name="Other", customer=other)
    theirs = Channel.objects.create(project=project, name="Not yours", whapi_id="OTHERS-CH4NL")
    page = browser_page
    log_in(page, live_server)
    response = page.goto(f"{live_server.url}/app/channels/{theirs.code}/")
    assert response.status == 404
    assert "Not yours" not in page.content()
