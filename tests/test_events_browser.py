"""The customer's events pages in a real browser (Debian's chromium via Playwright): an owner adds an
endpoint (a local URL explained next to its field), sees its signing secret once with a copy button,
and finds the endpoint's delivery log; the secret is not on the pages after that. The test takes
docs/screenshots/events.png."""

import pytest
from playwright.sync_api import expect

from channels_app.models import Channel
from channels_app.status import channel_update
from events.models import Endpoint, EventType
from tests.test_customer_browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(portal, owner, browser_page, live_server):
    _, project = portal
    page = browser_page
    log_in(page, live_server)
    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    expect(page.get_by_text("No endpoint yet")).to_be_visible()

    page.get_by_label("URL").fill("https://127.0.0.1/hook")
    page.get_by_role("button", name="Add").click()
    expect(page.locator(".field.has-error")).to_contain_text("The portal cannot reach a local address")

    page.get_by_label("URL").fill("https://hooks.acme.example/portal/events")
    page.get_by_label("A channel's paid days are running out").uncheck()
    page.get_by_label("Description").fill("Our CRM")
    page.get_by_role("button", name="Add").click()
    secret = page.locator("#signing-secret")
    expect(secret).to_have_value(Endpoint.objects.get().secret)
    endpoint = Endpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and EventType.EXPIRING not in endpoint.event_types
    page.get_by_role("button", name="Copy").click()

    channel = Channel.objects.create(project=project, name="Shop bot", whapi_id="SHOPBT-00001", state="configuring")
    channel_update(channel, state=Channel.State.WAITING_SCAN)
    page.goto(f"{live_server.url}/app/c/{project.customer.code}/events/")
    expect(page.locator("#signing-secret")).to_have_count(0)
    page.get_by_role("link", name="https://hooks.acme.example/portal/events").click()
    expect(page.get_by_role("heading", name="Our CRM")).to_be_visible()
    log = page.locator("#log")
    expect(log).to_contain_text("channel.ready_for_scan")
    expect(log).to_contain_text("Waiting to be sent")
    assert endpoint.secret not in page.content()
    screenshot(page, "events", full_page=True)
