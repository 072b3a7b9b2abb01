"""The staff console in a real browser (Debian's chromium via Playwright) against the live portal
and the built-in Whapi sandbox, with the worker running in the background.

The channel page's screenshot in docs/operations.md is taken here, as the customer pages' are
(var/screenshots/ on every run, docs/screenshots/ with UPDATE_SCREENSHOTS=1).
"""

import re
from datetime import timedelta

import pytest
import responses
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from channels_app import actions
from channels_app.models import AuditLog, Channel, Customer, Project
from tests.admin_support import GATE
from tests.conftest import make_channel, whapi_fixture
from tests.test_customer_browser import PHONE, SCREENSHOTS, log_in, sandbox_control

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF = AuditLog.Source.STAFF
# The channel page is taller than the customer pages' viewport: the picture shows down to the hand-off link.
PAGE_VIEWPORT = {"width": 1280, "height": 1150}


@pytest.fixture
def root(db):
    user = get_user_model().objects.create_superuser("root", "root@partner.example", "root-password")
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    return user


def staff_log_in(page, live_server, path: str = "/admin/channels_app/channel/") -> None:
    """Sign in as root through the admin's login (password and authentication code), landing on `path`."""
    device = TOTPDevice.objects.get(user__username="root")
    page.goto(f"{live_server.url}{path}")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password")
    page.get_by_label("Authentication code").fill(f"{TOTP(device.bin_key).token():06d}")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text("root")


def channel_page(live_server, channel: Channel) -> str:
    return live_server.url + reverse("admin:channels_app_channel_change", args=[channel.pk])


def form_row(page, label: str):
    """The read-only row of the channel page whose label is `label` (e.g. "Status stale")."""
    return page.locator(".form-row").filter(has=page.locator("label", has_text=re.compile(f"^{label}:?$")))


def test_staff_add_a_channel_and_watch_it_reach_waiting_for_scan(
    portal, root, background_worker, browser_page, live_server
):
    _, project = portal
    page = browser_page
    staff_log_in(page, live_server, "/admin/channels_app/channel/add/")
    expect(page.get_by_role("heading", name="Add channel")).to_be_visible()
    expect(page.locator("#create-budget")).to_contain_text("0 of 18 creations used")

    # The project is picked through the admin's autocomplete (it searches customers' projects).
    page.locator(".field-project .select2-selection").click()
    page.locator(".select2-search__field").fill("Default")
    page.locator(".select2-results__option", has_text=project.name).click()
    page.get_by_label("Name").fill("Shop bot")
    page.get_by_role("button", name="Request the channel").click()

    expect(page.locator(".messagelist")).to_contain_text("Channel “Shop bot” requested for Acme Corp.")
    # The page follows the pipeline without a reload: queued, creating, initializing, configuring…
    page.evaluate("window.notReloaded = true")
    expect(page.locator("h2.channel-state")).to_have_text("Waiting for scan", timeout=20_000)
    expect(page.locator(".channel-status")).to_contain_text("The customer scans the QR code")
    expect(page.locator(".channel-timeline")).to_contain_text("webhooks set and verified")
    assert page.evaluate("window.notReloaded") is True

    channel = Channel.objects.get(name="Shop bot")
    assert channel.whapi_id and channel.webhooks_verified_at
    assert AuditLog.objects.get(action="channel.request").actor.username == "root"
    page.goto(f"{live_server.url}/admin/channels_app/channel/")
    expect(page.locator("#result_list")).to_contain_text(channel.whapi_id)


def test_staff_follow_the_setup_and_the_scan_live_with_the_qr_code_a_pairing_code_and_a_hand_off_link(
    portal, root, background_worker, browser_page, live_server, chromium, settings
):
    sandbox, project = portal
    # Long enough to open the page before the channel is ready to scan.
    settings.WHAPI_INIT_DELAY = 4.0
    page = browser_page
    staff_log_in(page, live_server)
    channel, _ = actions.channel_request(project=project, name="Front desk", actor=root, source=STAFF)

    # The page follows the setup without a reload, to the QR code.
    page.goto(channel_page(live_server, channel))
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".channel-live .progress")).to_be_visible()
    expect(page.locator("h2.channel-state")).to_have_text("Waiting for scan", timeout=20_000)
    expect(page.locator(".channel-live .steps li.current")).to_have_text("Waiting for scan")
    qr = page.locator("#connect img.qr")
    expect(qr).to_be_visible()
    # Shown as soon as its source is set; decoded a moment later.
    page.wait_for_function("() => document.querySelector('#connect img.qr').naturalWidth > 50")
    # What depends on the state followed it: the actions of a channel in Whapi, the timeline.
    expect(page.get_by_role("link", name="Restart…")).to_be_visible()
    expect(page.locator(".channel-timeline")).to_contain_text("webhooks set and verified")
    assert page.evaluate("window.notReloaded") is True

    # A hand-off link to copy and send; it opens for whoever holds the phone, without a login.
    page.get_by_role("button", name="Make a hand-off link").click()
    expect(page.locator(".messagelist")).to_contain_text("A hand-off link is ready below")
    link = page.locator("#handoff-url").input_value()
    assert link.startswith(f"{live_server.url}/connect/")
    entry = AuditLog.objects.get(action="handoff.create")
    assert (entry.actor, entry.source) == (root, STAFF)
    phone_context = chromium.new_context()
    try:
        phone = phone_context.new_page()
        phone.goto(link)
        expect(phone.get_by_role("heading", name="Connect “Front desk”")).to_be_visible()
    finally:
        phone_context.close()

    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("() => document.querySelector('#connect img.qr').naturalWidth > 50")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(PAGE_VIEWPORT)
    page.screenshot(path=str(SCREENSHOTS / "admin-channel.png"))

    # A pairing code for the customer's number, read out on the phone; the page shows the link succeed.
    page.get_by_label("Phone number").fill("+1 415 555 0123")
    page.get_by_role("button", name="Get a pairing code").click()
    expect(page.locator(".pairing-code")).to_be_visible()
    code = page.locator(".pairing-code").input_value().strip()
    entry = AuditLog.objects.get(action="channel.pairing_code")
    assert (entry.actor, entry.source, entry.ok) == (root, STAFF, True)
    channel.refresh_from_db()
    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/pair", code=code, name="Front desk phone")
    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    expect(page.locator("#connect")).to_be_hidden()

    page.get_by_role("link", name="Back to the channel").click()
    expect(page.locator("h2.channel-state")).to_have_text("Connected")
    expect(form_row(page, "Number")).to_contain_text(f"+{PHONE}")


def test_restart_and_a_mode_change_ask_first_and_say_what_they_do(portal, root, worker, browser_page, live_server):
    _, project = portal
    channel, _ = actions.channel_request(project=project, name="Shop bot", actor=root, source=STAFF)
    worker.run_until(lambda: Channel.objects.get(pk=channel.pk).state == Channel.State.WAITING_SCAN, what="scan")
    page = browser_page
    staff_log_in(page, live_server, reverse("admin:channels_app_channel_change", args=[channel.pk]))

    page.get_by_role("link", name="Change mode…").click()
    expect(page.locator(".intro")).to_contain_text("A mode change restarts the channel")
    page.get_by_role("link", name="Cancel").click()

    page.get_by_role("link", name="Restart…").click()
    expect(page.locator(".intro")).to_contain_text("no messages are sent or received")
    assert not AuditLog.objects.filter(action="channel.restart").exists()
    page.get_by_role("button", name="Restart").click()
    expect(page.locator(".messagelist")).to_contain_text("restart requested")
    assert AuditLog.objects.get(action="channel.restart").ok


def test_a_channel_not_in_whapi_yet_offers_only_withdrawing_the_request(root, project, browser_page, live_server):
    queued = Channel.objects.create(project=project, name="Waiting its turn")
    creating = Channel.objects.create(project=project, name="Being made", state=Channel.State.CREATING)
    page = browser_page
    staff_log_in(page, live_server)

    page.goto(channel_page(live_server, creating))
    expect(page.locator("h2.channel-state")).to_have_text("Creating")
    expect(page.locator(".channel-actions")).to_have_count(0)

    page.goto(channel_page(live_server, queued))
    actions_shown = page.locator(".channel-actions a, .channel-actions button")
    expect(actions_shown).to_have_text(["Withdraw the request…"])
    actions_shown.first.click()
    expect(page.locator(".intro")).to_contain_text("never created in Whapi")
    page.get_by_role("button", name="Withdraw the request").click()
    expect(page.locator(".messagelist")).to_contain_text("request withdrawn")
    assert Channel.objects.get(pk=queued.pk).state == Channel.State.DELETED


def test_the_channel_page_reads_right_about_staleness_the_number_and_the_connection(
    root, customer, project, browser_page, live_server, whapi
):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_data_uri.json"))
    connected = make_channel(
        project,
        state=Channel.State.CONNECTED,
        connected_number=PHONE,
        connected_at=timezone.now() - timedelta(hours=2),
        status_stale=False,
    )
    page = browser_page
    staff_log_in(page, live_server, reverse("admin:channels_app_channel_change", args=[connected.pk]))

    # Not stale is not an error: said in words, with no red cross.
    stale = form_row(page, "Status stale")
    expect(stale).to_contain_text("No")
    expect(stale.locator("img")).to_have_count(0)
    # The number is written "+<digits>" on the channel page, in the list and on the customer's page.
    expect(form_row(page, "Number")).to_contain_text(f"+{PHONE}")
    expect(page.locator(".channel-status")).to_contain_text(f"Number +{PHONE} since")
    page.goto(live_server.url + reverse("admin:channels_app_channel_changelist"))
    expect(page.locator("#result_list tr", has_text="Shop bot")).to_contain_text(f"+{PHONE}")
    page.goto(live_server.url + reverse("admin:channels_app_customer_change", args=[customer.pk]))
    expect(page.locator(".customer-channels tr", has_text="Shop bot")).to_contain_text(f"+{PHONE}")

    # After a logout the time it was connected is not shown as if it still were.
    Channel.objects.filter(pk=connected.pk).update(state=Channel.State.DISCONNECTED, connected_number="")
    page.goto(channel_page(live_server, connected))
    expect(page.locator("h2.channel-state")).to_have_text("Disconnected")
    expect(form_row(page, "Connected since")).to_contain_text("Not connected now (last connected")


def test_a_deleted_channel_does_not_count_against_the_quota_and_shows_no_days_left_nor_token(
    root, browser_page, live_server
):
    customer = Customer.objects.create(name="Acme Corp", channel_quota=2)
    project = Project.objects.create(whapi_id="kpSv3OFq9PkP1W1Ogv7p", name="Acme channels", customer=customer)
    make_channel(project, name="Live line", state=Channel.State.CONNECTED, connected_number=PHONE)
    gone = make_channel(
        project,
        name="Gone line",
        whapi_id="GONEGO-00001",
        state=Channel.State.DELETED,
        active_till=timezone.now() + timedelta(days=20),
    )
    page = browser_page
    staff_log_in(page, live_server, reverse("admin:channels_app_customer_change", args=[customer.pk]))
    expect(page.locator(".customer-channels h2")).to_contain_text("1 in use, quota 2")
    expect(page.locator(".customer-channels tr", has_text="Gone line")).not_to_contain_text("days left")

    page.get_by_role("link", name="Gone line").click()
    expect(page.locator("h2.channel-state")).to_have_text("Deleted")
    expect(form_row(page, "Active till")).not_to_contain_text("days left")
    expect(page.get_by_role("link", name="Reveal token…")).to_have_count(0)
    assert gone.token  # it has one: the page hides it because the channel is deleted


def test_staff_and_the_customer_read_the_same_days_left(root, alice, project, browser_page, live_server, chromium):
    channel = make_channel(
        project,
        state=Channel.State.CONNECTED,
        connected_number=PHONE,
        active_till=timezone.now() + timedelta(days=5, hours=12),
    )
    page = browser_page
    staff_log_in(page, live_server, reverse("admin:channels_app_channel_change", args=[channel.pk]))
    expect(form_row(page, "Active till")).to_contain_text("6 days left")
    page.goto(live_server.url + reverse("admin:channels_app_channel_changelist"))
    expect(page.locator("#result_list tr", has_text="Shop bot")).to_contain_text("6 days left")

    page.goto(live_server.url + reverse("admin:channels_app_customer_change", args=[project.customer.pk]))
    expect(page.locator(".customer-channels tr", has_text="Shop bot")).to_contain_text("6 days left")

    customer_context = chromium.new_context()
    try:
        customer_page = customer_context.new_page()
        log_in(customer_page, live_server)
        customer_page.goto(live_server.url + reverse("channels_app:channel", args=[channel.code]))
        expect(customer_page.locator("#channel-meta")).to_contain_text("6 days left")
    finally:
        customer_context.close()
