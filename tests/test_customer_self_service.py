"""Customers manage their channels to the end: an owner deletes a channel after a confirmation that
says what is lost, an owner or operator restarts a channel in error; each action's outcome is shown
and audited like a staff action.

Whapi is mocked with `responses`; alice owns the channel's customer, bob operates it, vera views it,
charlie is an outsider.
"""

import pytest
import responses
from django.urls import reverse
from django.utils import timezone

from channels_app.models import AuditLog, Channel
from tests.conftest import GATE_URL, make_channel, whapi_fixture

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


@pytest.fixture(autouse=True)
def _whapi_mocked(whapi):
    return whapi


def url(name: str, channel: Channel) -> str:
    return reverse(f"channels_app:{name}", args=[channel.code])


def in_error(project) -> Channel:
    return make_channel(
        project,
        state=Channel.State.ERROR,
        connected_number="14155550123",
        last_error="Whapi reports ERROR for this channel.",
        error_source=Channel.ErrorSource.HEALTH,
        health_status="ERROR",
    )


# ------------------------------------------------------------------------------------------------
# Delete
# ------------------------------------------------------------------------------------------------
def test_the_owner_is_told_what_is_lost_before_deleting(client, alice, project, whapi):
    channel = make_channel(
        project,
        state=Channel.State.CONNECTED,
        connected_number="14155550123",
        active_till=timezone.now() + timezone.timedelta(days=5, hours=2),
    )
    client.force_login(alice)
    assert "Delete the channel…" in client.get(url("channel", channel)).content.decode()
    confirm = client.get(url("channel_delete", channel)).content.decode()
    assert "Delete “Shop bot”?" in confirm
    assert "+14155550123" in confirm  # the number is logged out
    assert "API token stops working" in confirm
    assert "Its 6 unused days go back to your provider" in confirm
    assert "uses 0 of its" in confirm  # the quota it frees
    assert not whapi.calls
    channel.refresh_from_db()
    assert channel.state == Channel.State.CONNECTED


def test_the_owner_deletes_a_channel_and_lands_on_the_dashboard_without_it(client, alice, project, whapi):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    whapi.add(responses.DELETE, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    client.force_login(alice)
    response = client.post(url("channel_delete", channel), follow=True)
    assert response.redirect_chain[-1][0] == reverse("channels_app:dashboard", args=[project.customer.code])
    page = response.content.decode()
    assert "“Shop bot” was deleted." in page
    channel.refresh_from_db()
    assert channel.state == Channel.State.DELETED
    assert AuditLog.objects.get(action="channel.delete").actor == alice
    assert client.get(url("channel", channel)).status_code == 404


def test_a_refused_delete_is_explained_and_leaves_the_channel(client, alice, project, whapi):
    channel = make_channel(project, state=Channel.State.DISCONNECTED)
    whapi.add(
        responses.DELETE, f"{PARTNER}/channels/{channel.whapi_id}", status=500, json=whapi_fixture("error_500.json")
    )
    client.force_login(alice)
    response = client.post(url("channel_delete", channel), follow=True)
    assert response.redirect_chain[-1][0] == url("channel", channel)
    assert "Whapi could not delete the channel" in response.content.decode()
    channel.refresh_from_db()
    assert channel.state == Channel.State.DISCONNECTED


def test_a_queued_channel_is_withdrawn_without_calling_whapi(client, alice, project, whapi):
    channel = make_channel(project, state=Channel.State.QUEUED, whapi_id=None, api_url="", token="")
    client.force_login(alice)
    assert "withdraws the request" in client.get(url("channel_delete", channel)).content.decode()
    client.post(url("channel_delete", channel))
    channel.refresh_from_db()
    assert channel.state == Channel.State.DELETED
    assert not whapi.calls


def test_only_an_owner_may_delete(client, bob, vera, charlie, channel, whapi):
    client.force_login(bob)
    assert "Delete the channel…" not in client.get(url("channel", channel)).content.decode()
    for user, status in ((bob, 403), (vera, 403), (charlie, 404)):
        client.force_login(user)
        assert client.get(url("channel_delete", channel)).status_code == status
        assert client.post(url("channel_delete", channel)).status_code == status
    assert not whapi.calls
    channel.refresh_from_db()
    assert channel.state != Channel.State.DELETED


# ------------------------------------------------------------------------------------------------
# Restart
# ------------------------------------------------------------------------------------------------
def test_an_operator_restarts_a_channel_in_error(client, bob, project, whapi):
    channel = in_error(project)
    whapi.add(responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/restart", json={"success": True})
    client.force_login(bob)
    assert "Restart the channel" in client.get(url("channel", channel)).content.decode()
    response = client.post(url("channel_restart", channel), follow=True)
    assert "Whapi is restarting the channel." in response.content.decode()
    assert [call.request.url for call in whapi.calls] == [f"{PARTNER}/channels/{channel.whapi_id}/restart"]
    assert AuditLog.objects.get(action="channel.restart").actor == bob


def test_a_failed_restart_is_explained(client, bob, project, whapi):
    channel = in_error(project)
    whapi.add(
        responses.POST,
        f"{PARTNER}/channels/{channel.whapi_id}/restart",
        status=500,
        json=whapi_fixture("error_500.json"),
    )
    client.force_login(bob)
    response = client.post(url("channel_restart", channel), follow=True)
    assert "Whapi could not restart the channel" in response.content.decode()
    channel.refresh_from_db()
    assert channel.state == Channel.State.ERROR


def test_restart_is_offered_only_for_a_channel_in_error(client, bob, project, whapi):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    client.force_login(bob)
    assert "Restart the channel" not in client.get(url("channel", channel)).content.decode()
    response = client.post(url("channel_restart", channel), follow=True)
    assert "Only a channel in error can be restarted" in response.content.decode()
    assert not whapi.calls


def test_a_viewer_may_not_restart(client, vera, charlie, project, whapi):
    channel = in_error(project)
    client.force_login(vera)
    assert "Restart the channel" not in client.get(url("channel", channel)).content.decode()
    assert client.post(url("channel_restart", channel)).status_code == 403
    client.force_login(charlie)
    assert client.post(url("channel_restart", channel)).status_code == 404
    assert not whapi.calls
