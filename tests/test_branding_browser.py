"""The partner's brand and the customer's time zone in a real browser (Debian's chromium via
Playwright): a branded dashboard and hand-off page (name, logo, colours), times in the browser's and
in the profile's zone with the zone named, and the admin refusing an unreadable colour.

The hand-off page's picture, docs/screenshots/handoff-branded.png, is taken here (UPDATE_SCREENSHOTS=1).
"""

import re
import zoneinfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from branding.models import Brand, CustomerBrand
from channels_app.models import HandoffLink
from tests.test_admin_browser import root, staff_log_in  # noqa: F401 (root is a fixture)
from tests.test_customer_browser import VIEWPORT, log_in, request_channel, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRIMARY, ACCENT = "#3b1f6e", "#a0204d"
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="28" viewBox="0 0 96 28">'
    b'<rect width="28" height="28" rx="6" fill="#f5b700"/><circle cx="14" cy="14" r="7" fill="#3b1f6e"/>'
    b'<text x="34" y="20" font-family="sans-serif" font-size="15" font-weight="700" fill="#ffffff">ZAP</text></svg>'
)


def rgb(color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(color[i : i + 2], 16) for i in (1, 3, 5)))


def style_of(locator, prop: str) -> str:
    return locator.evaluate(f"element => getComputedStyle(element).{prop}")


def expect_logo_shown(page) -> None:
    logo = page.locator("img.brand-logo")
    expect(logo).to_have_attribute("src", re.compile(r"/brand/logo"))
    page.wait_for_function("() => document.querySelector('img.brand-logo').naturalWidth > 0")


@pytest.fixture
def brand(db):
    return Brand.objects.create(
        name="Zap Connect",
        primary_color=PRIMARY,
        accent_color=ACCENT,
        support_email="help@zap.example",
        support_whatsapp="+44 7700 900123",
        footer="Zap Connect Ltd · 1 High Street, Leeds",
        logo=LOGO,
        logo_type="image/svg+xml",
    )


def test_a_branded_dashboard_and_handoff_page_in_the_browsers_time_zone(
    portal, owner, brand, background_worker, browser_page, live_server, chromium
):
    _, project = portal
    CustomerBrand.objects.create(customer=project.customer, name="Acme Channels")
    page = browser_page
    log_in(page, live_server)

    # The dashboard: the customer's own name, the partner's logo and colours, the footer.
    expect(page.locator(".topbar .brand")).to_have_text("Acme Channels")
    expect(page).to_have_title(re.compile(r"· Acme Channels$"))
    expect_logo_shown(page)
    assert style_of(page.locator(".topbar"), "backgroundColor") == rgb(PRIMARY)
    assert style_of(page.get_by_role("link", name="New channel"), "backgroundColor") == rgb(ACCENT)
    expect(page.locator(".site-footer")).to_contain_text("Zap Connect Ltd · 1 High Street, Leeds")
    expect(page.get_by_role("link", name="WhatsApp +44 7700 900123")).to_have_attribute(
        "href", "https://wa.me/447700900123"
    )

    channel = request_channel(page, "Front desk")
    page.get_by_role("button", name="Make a link").click()
    link = page.locator("#handoff-url").input_value()

    # Whoever holds the phone, in São Paulo: the page names their zone from its first load.
    phone_context = chromium.new_context(viewport=VIEWPORT, timezone_id="America/Sao_Paulo")
    phone = phone_context.new_page()
    try:
        phone.goto(link)
        expect(phone.get_by_role("heading", name="Connect “Front desk”")).to_be_visible()
        expect(phone.locator(".topbar .brand")).to_have_text("Acme Channels")
        expect_logo_shown(phone)
        assert style_of(phone.locator(".topbar"), "backgroundColor") == rgb(PRIMARY)
        assert style_of(phone.get_by_role("link", name="help@zap.example"), "color") == rgb(ACCENT)
        expires = HandoffLink.objects.get(channel=channel).expires_at
        local = timezone.localtime(expires, zoneinfo.ZoneInfo("America/Sao_Paulo"))
        expect(phone.get_by_text("Link valid until")).to_have_text(f"Link valid until {local:%H:%M} America/Sao_Paulo.")
        expect(phone.locator("#connect img.qr")).to_be_visible()
        screenshot(phone, "handoff-branded", full_page=True)
    finally:
        phone_context.close()


def test_a_user_chooses_a_time_zone_in_the_profile(portal, owner, browser_page, live_server):
    page = browser_page
    log_in(page, live_server)
    page.get_by_role("link", name="alice").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    # The browser's zone until one is chosen (the test browser's is UTC).
    expect(page.get_by_label("Time zone").locator("option:checked")).to_have_text("As my browser says (UTC)")
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Save").click()
    # The language chosen applies at once, from the message saying it was saved.
    expect(page.locator(".message.success")).to_have_text("Tu perfil está guardado.")
    expect(page.get_by_text("Ahora son las")).to_contain_text(re.compile(r"Ahora son las \d\d:\d\d Asia/Tokyo\."))
    tokyo = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo:%H}:" in page.get_by_text("Ahora son las").inner_text()
    assert page.locator("html").get_attribute("lang") == "es"
    expect(page.get_by_role("link", name="Canales", exact=True)).to_be_visible()


def test_the_admin_refuses_an_unreadable_colour(root, browser_page, live_server):  # noqa: F811
    page = browser_page
    staff_log_in(page, live_server, "/admin/branding/brand/")
    expect(page.get_by_role("heading", name="Add brand")).to_be_visible()
    page.get_by_label("Name").fill("Zap Connect")
    page.get_by_label("Accent colour").fill("#ffd400")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator(".form-row.field-accent_color .errorlist")
    expect(error).to_contain_text("contrast is 1.4:1")
    expect(error).to_contain_text("at least 4.5:1")
    assert not Brand.objects.exists()

    page.get_by_label("Accent colour").fill(ACCENT)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert Brand.objects.get().accent_color == ACCENT
