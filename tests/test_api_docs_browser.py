"""/api/v1/docs renders in a real browser (Debian's chromium) under the portal's Content-Security-Policy:
Swagger UI comes from the portal's static files and lists the API's operations."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_lists_the_operations(live_server, browser_page):
    page = browser_page
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.get_by_text("Whapi Partner Portal API")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/customers/{code}/channels").first).to_be_visible()
    expect(page.get_by_text("Request a channel")).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    assert page.locator(".opblock").count() >= 15
