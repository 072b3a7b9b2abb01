"""The customer's alerts page in a real browser (Debian's chromium via Playwright): an owner tells a
member, a refused chat URL is explained next to its field, and the record shows what was sent. The
test takes docs/screenshots/alerts.png (with UPDATE_SCREENSHOTS=1)."""

import pytest
from playwright.sync_api import expect

from alerts.models import Event, Notification, Recipient
from channels_app.models import Channel
from tests.test_customer_browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_sets_who_is_told_and_reads_the_record(portal, owner, browser_page, live_server):
    _, project = portal
    customer = project.customer
    channel = Channel.objects.create(project=project, name="Shop bot", whapi_id="SHOPBT-00001", state="connected")
    page = browser_page
    log_in(page, live_server)
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.get_by_text("Nobody of Acme Corp is told yet")).to_be_visible()

    page.get_by_label("Or a chat service").fill("json://10.0.0.5/hook")
    page.get_by_role("button", name="Add").click()
    expect(page.locator(".field.has-error")).to_contain_text("Slack, Telegram, Microsoft Teams or Discord")

    page.get_by_label("Or a chat service").fill("")
    page.get_by_label("A member").select_option(label="alice (alice@acme.example)")
    page.get_by_label("A channel's paid days are running out").uncheck()
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_text("alice <alice@acme.example> is told about")).to_be_visible()
    recipient = Recipient.objects.get(customer=customer)
    assert Event.EXPIRING not in recipient.events and Event.DISCONNECTED in recipient.events

    Notification.objects.create(
        event=Event.DISCONNECTED,
        key="disconnected:1",
        recipient=recipient,
        to=recipient.address,
        customer=customer,
        channel=channel,
        subject="Shop bot: the WhatsApp number disconnected",
        body="…",
        status=Notification.Status.SENT,
    )
    page.goto(page.url.split("#")[0])
    record = page.locator("#record")
    expect(record).to_contain_text("Shop bot: the WhatsApp number disconnected")
    expect(record).to_contain_text("Sent")
    screenshot(page, "alerts", full_page=True)
