"""The channel page and its actions: live pipeline, QR, pairing code, token, webhook, rename, disconnect.

Whapi is mocked with `responses`; alice owns the channel's customer, bob operates it, vera views it,
charlie is an outsider.
"""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.urls import reverse
from django.utils import timezone

from channels_app.models import AuditLog, Channel, CreateAttempt
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel, whapi_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "whapi"
PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


@pytest.fixture(autouse=True)
def _whapi_mocked(whapi):
    return whapi


def url(name: str, channel: Channel) -> str:
    return reverse(f"channels_app:{name}", args=[channel.code])


def page_of(client, channel: Channel) -> str:
    response = client.get(url("channel", channel))
    assert response.status_code == 200
    return response.content.decode()


# ------------------------------------------------------------------------------------------------
# The page and its live status
# ------------------------------------------------------------------------------------------------
def test_it_works(client, alice, channel):
    client.force_login(alice)
    page = page_of(client, channel)
    assert "Shop bot" in page
    assert "MANTIS-M72HC" in page
    assert "Ready to connect:" in page
    assert GATE_URL in page  # the API URL is not a secret
    assert CHANNEL_TOKEN not in page  # the token is, until revealed
    assert channel.webhook_secret not in page


def test_it_checks_membership(client, charlie, channel):
    client.force_login(charlie)
    for name in ("channel", "channel_status", "channel_qr"):
        assert client.get(url(name, channel)).status_code == 404


def test_a_queued_channel_shows_its_place_and_eta(client, alice, project, settings):
    settings.WHAPI_CREATE_BUDGET = 1
    now = timezone.now()
    CreateAttempt.objects.create(at=now - timedelta(seconds=60))
    first = make_channel(project, name="First", whapi_id=None, state=Channel.State.QUEUED)
    second = make_channel(project, name="Second", whapi_id="OTHERS-CH4NL", state=Channel.State.QUEUED)
    Channel.objects.filter(pk=second.pk).update(requested_at=first.requested_at + timedelta(seconds=1))
    client.force_login(alice)
    page = page_of(client, second)
    assert "In the queue, position 2." in page
    assert "UTC</time> (in about" in page


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (Channel.State.CREATING, "Being created in Whapi."),
        (Channel.State.CONFIGURING, "Setting and verifying the webhooks of the channel"),
        (Channel.State.WAITING_SCAN, "Ready to connect:"),
        (Channel.State.DISCONNECTED, "no phone is linked any more"),
        (Channel.State.STOPPED, "Stopped in Whapi"),
        (Channel.State.EXPIRED, "paid time ran out"),
    ],
)
def test_each_state_reads_plainly(client, alice, project, state, text):
    channel = make_channel(project, state=state)
    client.force_login(alice)
    assert text in page_of(client, channel)


def test_initializing_shows_a_progress_bar_over_the_init_delay(client, alice, project):
    now = timezone.now()
    channel = make_channel(
        project,
        state=Channel.State.INITIALIZING,
        whapi_created_at=now - timedelta(seconds=30),
        init_until=now + timedelta(seconds=60),
    )
    client.force_login(alice)
    page = page_of(client, channel)
    assert 'role="progressbar"' in page
    assert 'aria-valuenow="33"' in page
    assert 'About <span class="js-seconds-left">60</span> s left' in page
    # No QR before the init delay is over.
    assert client.get(url("channel_qr", channel)).status_code == 409


def test_connected_shows_the_number(client, alice, project):
    channel = make_channel(
        project, state=Channel.State.CONNECTED, connected_number="14155550123", connected_name="Alice's phone"
    )
    client.force_login(alice)
    page = page_of(client, channel)
    assert 'Connected <span class="number">+14155550123</span>' in page
    assert "Disconnect the number" in page


def test_an_error_is_explained_without_internal_details(client, alice, project):
    channel = make_channel(
        project,
        state=Channel.State.ERROR,
        error_source=Channel.ErrorSource.CREATE,
        last_error="Whapi refused to create the channel: 400 Bad Request (server 6, trace 8f3a)",
    )
    client.force_login(alice)
    page = page_of(client, channel)
    assert "Whapi could not create this channel. Contact support" in page
    assert "trace 8f3a" not in page


def test_the_status_json_polls_while_in_progress_and_offers_the_scan(client, alice, vera, project):
    channel = make_channel(project, state=Channel.State.CONFIGURING)
    client.force_login(alice)
    data = client.get(url("channel_status", channel)).json()
    assert (data["state"], data["poll"], data["connect"]) == ("configuring", True, False)

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.WAITING_SCAN)
    data = client.get(url("channel_status", channel)).json()
    assert (data["poll"], data["connect"]) == (True, True)

    client.force_login(vera)  # a viewer watches, but is not offered the QR
    assert client.get(url("channel_status", channel)).json()["connect"] is False

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_number="14155550123")
    data = client.get(url("channel_status", channel)).json()
    assert (data["poll"], data["connect"]) == (False, False)
    assert "+14155550123" in data["html"]


def test_the_status_json_sends_the_parts_whose_actions_follow_the_state(client, alice, vera, project):
    channel = make_channel(project)
    client.force_login(alice)
    parts = client.get(url("channel_status", channel)).json()["parts"]
    assert set(parts) == {"channel-meta", "api-access", "handoff", "disconnect", "manage"}
    assert "Make a link" in parts["handoff"]
    assert "Disconnect the number" not in parts["disconnect"]
    assert "Restart the channel" not in parts["manage"]

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_number="14155550123")
    parts = client.get(url("channel_status", channel)).json()["parts"]
    assert "Disconnect the number" in parts["disconnect"]
    assert "no hand-off link is needed" in parts["handoff"] and "Make a link" not in parts["handoff"]

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.ERROR, error_source="health")
    assert "Restart the channel" in client.get(url("channel_status", channel)).json()["parts"]["manage"]

    client.force_login(vera)  # a viewer gets no actions to show
    assert set(client.get(url("channel_status", channel)).json()["parts"]) == {"channel-meta", "api-access"}


def test_an_error_whapi_reports_offers_the_disconnect_its_advice_names(client, alice, vera, project):
    channel = make_channel(
        project,
        state=Channel.State.ERROR,
        error_source=Channel.ErrorSource.HEALTH,
        health_status="SYNC_ERROR",
        connected_number="14155550123",
    )
    client.force_login(alice)
    page = page_of(client, channel)
    assert "Whapi reports a problem with this channel (SYNC_ERROR)." in page
    assert 'use <a href="#disconnect">Disconnect the number</a> below' in page
    assert url("channel_disconnect", channel) in page

    client.force_login(vera)  # the advice says who can follow it
    page = page_of(client, channel)
    assert "an owner or operator can do it" in page
    assert url("channel_disconnect", channel) not in page


@pytest.mark.parametrize(
    "fields",
    [
        {"error_source": Channel.ErrorSource.CONFIGURE},
        # Whapi's error before any number was linked: there is nothing to disconnect.
        {"error_source": Channel.ErrorSource.HEALTH, "health_status": "ERROR"},
    ],
)
def test_an_error_without_a_number_to_log_out_advises_no_disconnect(client, alice, project, fields):
    channel = make_channel(project, state=Channel.State.ERROR, **fields)
    client.force_login(alice)
    page = page_of(client, channel)
    assert "Contact support" in page
    assert "Disconnect the number" not in page and "linking it again" not in page


def test_a_viewer_sees_the_status_but_no_controls(client, vera, channel):
    client.force_login(vera)
    page = page_of(client, channel)
    assert "Ready to connect:" in page
    for control in ("Connect a phone", "Reveal", "Save webhook", "Rename", "Hand-off link"):
        assert control not in page


# ------------------------------------------------------------------------------------------------
# QR code
# ------------------------------------------------------------------------------------------------
def test_the_qr_is_a_png_that_says_when_it_expires(client, bob, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_data_uri.json"))
    client.force_login(bob)
    response = client.get(url("channel_qr", channel))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    assert response["X-QR-Expires-In"] == str(whapi_fixture("gate_qr_data_uri.json").get("expire", 20))
    assert response["Cache-Control"] == "no-store"


def test_the_qr_is_gone_once_the_number_is_connected(
    client, bob, channel, whapi, enqueued, django_capture_on_commit_callbacks
):
    whapi.add(responses.GET, f"{GATE}/users/login", status=409, json=whapi_fixture("error_409_authenticated.json"))
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(url("channel_qr", channel)).status_code == 204
    assert ("channel_health_check", (channel.pk,)) in enqueued

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED)
    assert client.get(url("channel_qr", channel)).status_code == 409
    assert len(whapi.calls) == 1  # not asked again once we know


def test_the_qr_being_prepared_asks_to_retry(client, bob, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_waiting.json"))
    client.force_login(bob)
    response = client.get(url("channel_qr", channel))
    assert (response.status_code, response["Retry-After"]) == (503, "2")


def test_a_whapi_failure_on_the_qr_is_explained(client, bob, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", status=500, json=whapi_fixture("error_500.json"))
    client.force_login(bob)
    response = client.get(url("channel_qr", channel))
    assert response.status_code == 502
    assert response.content.decode().startswith("The QR code is not available right now")
    assert CHANNEL_TOKEN not in response.content.decode()


def test_the_qr_requires_rw_access(client, vera, channel, whapi):
    client.force_login(vera)
    assert client.get(url("channel_qr", channel)).status_code == 403
    assert not whapi.calls


# ------------------------------------------------------------------------------------------------
# Pairing code
# ------------------------------------------------------------------------------------------------
def test_a_pairing_code_is_shown_for_the_phone_number(client, bob, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", json=whapi_fixture("gate_login_code.json"))
    client.force_login(bob)
    response = client.post(url("channel_pairing_code", channel), {"phone": "+1 (415) 555-0123"})
    assert response.status_code == 200
    assert 'class="pairing-code"' in response.content.decode()
    assert "ABC-123" in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    entry = AuditLog.objects.get(action="channel.pairing_code")
    assert (entry.actor, entry.source, entry.ok) == (bob, "customer", True)


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("", "This field is required."),
        ("call me", "Use digits only"),
        ("+44 20 7946 OOOO", "Use digits only"),
        ("123456", "this one has 6"),
        ("1234567890123456", "this one has 16"),
        ("١٢٣٤٥٦٧٨", "Use digits only"),
    ],
)
def test_the_phone_number_is_validated_next_to_the_field(client, bob, channel, whapi, phone, message):
    client.force_login(bob)
    response = client.post(url("channel_pairing_code", channel), {"phone": phone})
    assert message in response.content.decode()
    assert response.context["pairing_form"].errors["phone"]
    assert not whapi.calls


def test_a_whapi_refusal_of_the_pairing_code_is_shown_and_changes_nothing(client, bob, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", status=400, json=whapi_fixture("error_400.json"))
    client.force_login(bob)
    response = client.post(url("channel_pairing_code", channel), {"phone": "14155550123"})
    errors = response.context["pairing_form"].errors["phone"]
    assert "Whapi could not make a pairing code" in errors[0]
    channel.refresh_from_db()
    assert channel.state == Channel.State.WAITING_SCAN


def test_no_pairing_code_before_the_channel_can_be_linked(client, bob, project, whapi):
    channel = make_channel(project, state=Channel.State.CONFIGURING)
    client.force_login(bob)
    response = client.post(url("channel_pairing_code", channel), {"phone": "14155550123"}, follow=True)
    assert "cannot be linked right now" in response.content.decode()
    assert not whapi.calls


def test_the_pairing_code_requires_rw_access(client, vera, channel):
    client.force_login(vera)
    assert client.post(url("channel_pairing_code", channel), {"phone": "14155550123"}).status_code == 403


# ------------------------------------------------------------------------------------------------
# API token
# ------------------------------------------------------------------------------------------------
def test_the_token_is_revealed_by_a_post_and_recorded(client, bob, channel):
    client.force_login(bob)
    assert client.get(url("channel_reveal_token", channel)).status_code == 405
    response = client.post(url("channel_reveal_token", channel))
    assert CHANNEL_TOKEN in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    entry = AuditLog.objects.get(action="channel.reveal_token")
    assert (entry.actor, entry.source, entry.target_id) == (bob, "customer", channel.whapi_id)
    assert CHANNEL_TOKEN not in entry.detail


def test_no_token_yet_is_explained(client, bob, project):
    channel = make_channel(project, whapi_id=None, token="", api_url="", state=Channel.State.QUEUED)
    client.force_login(bob)
    response = client.post(url("channel_reveal_token", channel), follow=True)
    assert "has no token yet" in response.content.decode()


def test_the_token_requires_rw_access(client, vera, channel):
    client.force_login(vera)
    response = client.post(url("channel_reveal_token", channel))
    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="channel.reveal_token").exists()


# ------------------------------------------------------------------------------------------------
# The customer's own webhook
# ------------------------------------------------------------------------------------------------
def mock_gate_settings(whapi) -> list[dict]:
    """Gate settings that keep what was PATCHed (so the read-back verifies); returns the PATCH bodies."""
    patched: list[dict] = []

    def patch(request):
        patched.append(json.loads(request.body))
        return 200, {}, json.dumps({"success": True})

    whapi.add_callback(responses.PATCH, f"{GATE}/settings", callback=patch)
    whapi.add_callback(responses.GET, f"{GATE}/settings", callback=lambda request: (200, {}, json.dumps(patched[-1])))
    whapi.add(responses.GET, f"{GATE}/health", json=whapi_fixture("gate_health_qr.json"))
    return patched


def test_the_webhook_is_saved_and_applied(client, bob, channel, whapi):
    patched = mock_gate_settings(whapi)
    client.force_login(bob)
    response = client.post(
        url("channel_webhook", channel),
        {"url": "https://hooks.acme.example/wa", "events": ["messages", "calls"]},
        follow=True,
    )
    assert "Your webhook is set and Whapi confirmed it." in response.content.decode()
    channel.refresh_from_db()
    assert channel.customer_webhook_url == "https://hooks.acme.example/wa"
    assert channel.customer_webhook_events == [
        {"type": "messages", "method": "post"},
        {"type": "calls", "method": "post"},
    ]
    hooks = {hook["url"]: hook for hook in patched[-1]["webhooks"]}
    assert hooks["https://hooks.acme.example/wa"]["events"] == channel.customer_webhook_events
    assert AuditLog.objects.get(action="channel.customer_webhook").actor == bob


def test_the_webhook_is_saved_for_later_on_a_channel_being_set_up(client, bob, project, whapi):
    channel = make_channel(project, state=Channel.State.INITIALIZING, webhooks_verified_at=None)
    client.force_login(bob)
    response = client.post(
        url("channel_webhook", channel), {"url": "https://hooks.acme.example/wa", "events": ["messages"]}, follow=True
    )
    assert "applied as soon as the channel is set up" in response.content.decode()
    assert not whapi.calls


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": "not a url", "events": ["messages"]}, "url", "Enter a full http(s) URL"),
        ({"url": "ftp://hooks.acme.example/wa", "events": ["messages"]}, "url", "Enter a full http(s) URL"),
        ({"url": "http://localhost:8000/hook", "events": ["messages"]}, "url", "Whapi cannot reach a local address"),
        ({"url": "https://hooks.acme.example/" + "x" * 500, "events": ["messages"]}, "url", "at most 500"),
        ({"url": "https://hooks.acme.example/wa", "events": []}, "events", "Choose at least one kind of event"),
        ({"url": "https://hooks.acme.example/wa", "events": ["secrets"]}, "events", "Select a valid choice"),
    ],
)
def test_the_webhook_is_validated_next_to_the_field(client, bob, channel, whapi, data, field, message):
    client.force_login(bob)
    response = client.post(url("channel_webhook", channel), data)
    assert response.status_code == 200
    assert message in " ".join(response.context["webhook_form"].errors[field])
    assert message in response.content.decode()
    channel.refresh_from_db()
    assert channel.customer_webhook_url == ""
    assert not whapi.calls


def test_a_webhook_error_is_where_the_page_opens_and_said_at_the_top(client, bob, channel, whapi):
    client.force_login(bob)
    response = client.post(url("channel_webhook", channel), {"url": "not a url", "events": ["messages"]})
    page = response.content.decode()
    assert re.search(r'<input type="url" name="url"[^>]* autofocus', page)
    assert page.count("autofocus") == 1
    assert "There is an error below, in “Your webhook”: see the message next to the field." in page


def test_the_webhook_is_removed_with_an_empty_url(client, bob, project, whapi):
    channel = make_channel(
        project, customer_webhook_url="https://hooks.acme.example/wa", customer_webhook_events=[{"type": "messages"}]
    )
    patched = mock_gate_settings(whapi)
    client.force_login(bob)
    response = client.post(url("channel_webhook", channel), {"url": "", "events": ["messages"]}, follow=True)
    assert "Your webhook was removed." in response.content.decode()
    channel.refresh_from_db()
    assert (channel.customer_webhook_url, channel.customer_webhook_events) == ("", [])
    assert len(patched[-1]["webhooks"]) == 1  # only the portal's own


def test_a_webhook_whapi_does_not_take_yet_is_said_plainly(client, bob, channel, whapi):
    whapi.add(responses.PATCH, f"{GATE}/settings", status=500, json=whapi_fixture("error_500.json"))
    client.force_login(bob)
    response = client.post(
        url("channel_webhook", channel), {"url": "https://hooks.acme.example/wa", "events": ["messages"]}, follow=True
    )
    assert "The webhook was saved but could not be applied yet" in response.content.decode()


def test_the_webhook_requires_rw_access(client, vera, channel):
    client.force_login(vera)
    response = client.post(url("channel_webhook", channel), {"url": "https://x.example/", "events": ["messages"]})
    assert response.status_code == 403


# ------------------------------------------------------------------------------------------------
# Rename and disconnect
# ------------------------------------------------------------------------------------------------
def test_rename_works(client, bob, channel, whapi):
    whapi.add(responses.PATCH, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    client.force_login(bob)
    response = client.post(url("channel_rename", channel), {"name": "  Help desk "}, follow=True)
    assert "The channel is now called “Help desk”." in response.content.decode()
    assert json.loads(whapi.calls[0].request.body) == {"name": "Help desk", "projectId": channel.whapi_project_id}
    channel.refresh_from_db()
    assert channel.name == "Help desk"


@pytest.mark.parametrize(("name", "message"), [("", "This field is required."), ("x" * 151, "at most 150 characters")])
def test_rename_validates_the_name_next_to_the_field(client, bob, channel, whapi, name, message):
    client.force_login(bob)
    response = client.post(url("channel_rename", channel), {"name": name})
    assert message in " ".join(response.context["rename_form"].errors["name"])
    assert not whapi.calls


def test_a_whapi_refusal_to_rename_leaves_the_name(client, bob, channel, whapi):
    whapi.add(
        responses.PATCH, f"{PARTNER}/channels/{channel.whapi_id}", status=500, json=whapi_fixture("error_500.json")
    )
    client.force_login(bob)
    response = client.post(url("channel_rename", channel), {"name": "Help desk"})
    assert "Whapi could not rename the channel" in response.context["rename_form"].errors["name"][0]
    channel.refresh_from_db()
    assert channel.name == "Shop bot"


def test_disconnect_asks_first_then_logs_the_number_out(client, bob, project, whapi):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    client.force_login(bob)
    confirm = client.get(url("channel_disconnect", channel))
    assert b"Disconnect the number?" in confirm.content
    assert b"+14155550123" in confirm.content
    assert not whapi.calls

    response = client.post(url("channel_disconnect", channel), follow=True)
    assert "The number was logged out." in response.content.decode()
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == (Channel.State.DISCONNECTED, "")
    assert AuditLog.objects.get(action="channel.logout").actor == bob


def test_disconnecting_a_channel_whapi_reports_in_error_lets_a_phone_link_again(client, bob, project, whapi):
    channel = make_channel(
        project,
        state=Channel.State.ERROR,
        error_source=Channel.ErrorSource.HEALTH,
        health_status="SYNC_ERROR",
        last_error="Whapi reports SYNC_ERROR for this channel.",
        connected_number="14155550123",
    )
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    client.force_login(bob)
    response = client.post(url("channel_disconnect", channel), follow=True)
    assert "The number was logged out." in response.content.decode()
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == (Channel.State.DISCONNECTED, "")
    assert (channel.last_error, channel.error_source) == ("", "")
    assert channel.health_check_due_at <= timezone.now()  # Whapi's next report says whether it helped
    assert response.context["status"]["connect"] is True


def test_disconnecting_leaves_an_error_of_the_setup_for_staff(client, bob, project, whapi):
    channel = make_channel(
        project,
        state=Channel.State.ERROR,
        error_source=Channel.ErrorSource.CONFIGURE,
        last_error="settings not verified",
        connected_number="14155550123",
    )
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    client.force_login(bob)
    client.post(url("channel_disconnect", channel))
    channel.refresh_from_db()
    assert (channel.state, channel.last_error) == (Channel.State.ERROR, "settings not verified")


def test_a_failed_disconnect_is_explained_and_leaves_the_channel(client, bob, project, whapi):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", status=500, json=whapi_fixture("error_500.json"))
    client.force_login(bob)
    response = client.post(url("channel_disconnect", channel), follow=True)
    assert "Whapi could not log the number out" in response.content.decode()
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == (Channel.State.CONNECTED, "14155550123")


def test_rename_and_disconnect_require_rw_access(client, vera, channel, whapi):
    client.force_login(vera)
    assert client.post(url("channel_rename", channel), {"name": "x"}).status_code == 403
    assert client.get(url("channel_disconnect", channel)).status_code == 403
    assert client.post(url("channel_disconnect", channel)).status_code == 403
    assert not whapi.calls
