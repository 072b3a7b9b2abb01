"""The customer pages in a real browser, on the details a new user trips over: what a page offers
follows the channel's state without a reload, advice names only what the page offers, a full quota
says what to do, a form error is where the browser opens, and every page keeps the portal's layout.

Against the live portal and the built-in Whapi sandbox, like tests/test_customer_browser.py (whose
helpers these tests share).
"""

import time

import pytest
import requests
from django.urls import reverse
from playwright.sync_api import expect

from channels_app import handoff
from channels_app.models import Channel, Customer, Project
from tests.test_customer_browser import PHONE, log_in, request_channel, sandbox_control

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE_VIEWPORT = {"width": 390, "height": 844}


def wait_for_state(channel: Channel, state: str, timeout: float = 15.0) -> Channel:
    """The channel once the background worker has moved it to `state`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        channel.refresh_from_db()
        if channel.state == state:
            return channel
        time.sleep(0.1)
    raise AssertionError(f"{channel!r} did not reach {state}")


def linked_channel(page, name: str) -> Channel:
    """A channel requested on the page, followed until its QR code shows."""
    channel = request_channel(page, name)
    expect(page.locator("#connect img.qr")).to_be_visible()
    channel.refresh_from_db()
    return channel


def test_the_page_offers_what_the_state_allows_as_the_number_connects_without_a_reload(
    portal, owner, background_worker, browser_page, live_server
):
    sandbox, _ = portal
    page = browser_page
    log_in(page, live_server)
    channel = linked_channel(page, "Front desk")
    expect(page.locator(".message.success")).to_contain_text("“Front desk” is requested")
    expect(page.get_by_role("link", name="Disconnect the number…")).to_have_count(0)
    # A hand-off link sent before the scan (made here, so the page keeps its messages).
    link = handoff.handoff_create(channel=channel, actor=owner)
    link_url = live_server.url + reverse("channels_app:handoff", args=[handoff.handoff_token(link)])
    assert requests.get(link_url, allow_redirects=False, timeout=5).status_code == 302
    page.evaluate("window.notReloaded = true")

    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/scan", phone=PHONE, name="Alice")

    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    # The actions follow the state: disconnecting is offered, a hand-off link is not any more.
    expect(page.get_by_role("link", name="Disconnect the number…")).to_be_visible()
    handoff_card = page.locator("#handoff")
    expect(handoff_card).to_contain_text("The number is connected, so no hand-off link is needed")
    expect(handoff_card.get_by_role("button")).to_have_count(0)
    # "… is requested" was about the setup, which is over.
    expect(page.locator(".message")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True

    # The link sent before has done its job: it stops, and says why.
    response = page.goto(link_url)
    assert response.status == 410
    expect(page.get_by_role("heading", name="The number is connected")).to_be_visible()
    assert PHONE not in page.content()


def test_a_channel_in_error_offers_the_disconnect_its_advice_names_and_links_again(
    portal, owner, background_worker, browser_page, live_server
):
    sandbox, _ = portal
    page = browser_page
    log_in(page, live_server)
    channel = linked_channel(page, "Support line")
    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/scan", phone=PHONE, name="Alice")
    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    # Whapi's SYNC_ERROR, whose remedy is to log out and link again (docs/whapi.md §2).
    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/status", text="SYNC_ERROR")
    wait_for_state(channel, Channel.State.ERROR)

    page.reload()
    status = page.locator("#status")
    expect(status).to_contain_text("Whapi reports a problem with this channel (SYNC_ERROR).")
    expect(status).to_contain_text("Disconnecting the number and linking it again usually helps")
    status.get_by_role("link", name="Disconnect the number").click()
    expect(page.locator("#disconnect")).to_be_in_viewport()
    page.get_by_role("link", name="Disconnect the number…", exact=True).click()
    page.get_by_role("button", name="Disconnect", exact=True).click()

    # Logged out, the channel waits for a phone again: the QR code is offered at once.
    expect(page.locator(".message.success")).to_contain_text("The number was logged out.")
    expect(page.locator("#connect img.qr")).to_be_visible()
    expect(status).not_to_contain_text("Whapi reports a problem")
    page.evaluate("window.notReloaded = true")

    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/scan", phone=PHONE, name="Alice")
    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    expect(page.get_by_role("link", name="Disconnect the number…")).to_be_visible()
    expect(page.locator(".message")).to_have_count(0)  # "… was logged out" is over too
    assert page.evaluate("window.notReloaded") is True
    assert wait_for_state(channel, Channel.State.CONNECTED).last_error == ""


def test_a_full_quota_disables_the_create_buttons_and_says_what_to_do(portal, owner, browser_page, live_server):
    _, project = portal
    Customer.objects.filter(pk=project.customer_id).update(channel_quota=1)
    Channel.objects.create(project=project, name="Only line", whapi_id="ONLYLI-NE000", state="connected")
    page = browser_page
    log_in(page, live_server)

    expect(page.get_by_text("1 of 1 channel in use")).to_be_visible()
    expect(page.get_by_role("button", name="New channel")).to_be_disabled()
    expect(page.get_by_role("link", name="New channel")).to_have_count(0)
    notice = page.locator("#quota-full")
    expect(notice).to_have_text(
        "The channel quota of Acme Corp is used up: 1 of 1 channel. "
        "Ask support for a higher quota to add another channel, or delete one no longer needed "
        "(an owner can, on its page)."
    )

    # The form itself, opened by its address, says the same and cannot be sent.
    page.goto(f"{live_server.url}{reverse('channels_app:channel_create', args=[project.customer.code])}")
    expect(page.locator("#quota-full")).to_be_visible()
    expect(page.get_by_role("button", name="Create channel")).to_be_disabled()
    assert "All 1 channels" not in page.content()


def test_a_form_error_on_a_phone_is_where_the_page_opens_and_is_announced_at_the_top(
    portal, owner, background_worker, browser_page, live_server
):
    page = browser_page
    log_in(page, live_server)
    linked_channel(page, "Front desk")
    page.set_viewport_size(PHONE_VIEWPORT)

    # The customer's own webhook, far below on a phone.
    page.get_by_label("Webhook URL").fill("not a url")
    page.get_by_role("button", name="Save webhook").click()
    url_field = page.get_by_label("Webhook URL")
    expect(url_field).to_be_focused()
    expect(url_field).to_be_in_viewport()
    expect(page.locator("#webhook .error")).to_be_in_viewport()
    expect(page.locator(".messages .message.error")).to_have_text(
        "There is an error below, in “Your webhook”: see the message next to the field."
    )

    # The pairing-code form.
    page.get_by_label("Phone number").fill("call me")
    page.get_by_role("button", name="Get a pairing code").click()
    phone_field = page.get_by_label("Phone number")
    expect(phone_field).to_be_focused()
    expect(phone_field).to_be_in_viewport()
    expect(page.locator(".messages .message.error")).to_contain_text("in “Link with a pairing code”")


def test_a_pairing_code_is_where_the_page_opens_with_a_copy_button_and_how_long_it_lasts(
    portal, owner, background_worker, browser_page, live_server
):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server)
    linked_channel(page, "Front desk")
    page.set_viewport_size(PHONE_VIEWPORT)

    page.get_by_label("Phone number").fill("+1 415 555 0123")
    page.get_by_role("button", name="Get a pairing code").click()
    code = page.get_by_label("Pairing code")
    expect(code).to_be_focused()
    expect(code).to_be_in_viewport()
    # The whole code shows, next to its Copy button.
    assert code.evaluate("field => field.scrollWidth <= field.clientWidth")
    # How long Whapi keeps a pairing code is not documented: the page says no number of minutes.
    expect(page.locator("#pairing-code-help")).to_contain_text("valid for a short time only")
    page.locator(".pairing").get_by_role("button", name="Copy").click()
    expect(page.locator(".pairing").get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == code.input_value()


def test_the_password_page_keeps_the_portals_navigation(portal, owner, browser_page, live_server):
    page = browser_page
    log_in(page, live_server)
    page.get_by_title("Your profile: time zone, language, password").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    page.get_by_role("link", name="Change your password").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("Acme Corp")
    nav.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()


def test_with_debug_on_a_missing_page_is_the_portals_own_404(portal, owner, browser_page, live_server, settings):
    settings.DEBUG = True  # as `make run` has it
    other = Customer.objects.create(name="Other Inc")
    project = Project.objects.create(whapi_id="otherProjectAAAAAAAAA", name="Other", customer=other)
    theirs = Channel.objects.create(project=project, name="Not yours", whapi_id="OTHERS-CH4NL")
    page = browser_page
    log_in(page, live_server)
    for path in ("/app/no-such-page/", f"/app/channels/{theirs.code}/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 404
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        content = page.content()
        assert "URLconf" not in content and "DEBUG = True" not in content and "Not yours" not in content
    # A page that exists is not affected, nor is a slash left out (the redirect still comes first).
    assert page.goto(f"{live_server.url}/app/password").status == 200
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
