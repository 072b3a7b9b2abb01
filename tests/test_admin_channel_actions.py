"""Actions on one channel from its page in the staff console, the page itself (timeline, callbacks,
webhook settings, masked token), revealing the token, and "Sync channels from Whapi".

Whapi is mocked at the HTTP seam. Every action is audited and needs its own permission; Whapi's
refusals become a message naming the channel and Whapi's reason, never an error page."""

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from channels_app import handoff, tasks
from channels_app.models import AuditLog, Channel, HandoffLink, WebhookEvent
from tests.admin_support import (
    CHANNEL_PERMS,
    GATE,
    PARTNER,
    gate_that_keeps,
    login_as,
    messages_of,
    page,
    remote_channel,
    url,
    whapi_error,
)
from tests.conftest import CHANNEL_TOKEN, make_channel, whapi_fixture

pytest_plugins = ["tests.admin_fixtures"]

State = Channel.State
CHANNEL_ID = "MANTIS-M72HC"


def act(client, channel, action: str, data: dict | None = None):
    return client.post(url("channel_action", channel.pk, action), data or {})


def audited(action: str) -> AuditLog:
    return AuditLog.objects.filter(action=action).latest("id")


def reload(channel: Channel) -> Channel:
    return Channel.objects.get(pk=channel.pk)


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------
def test_the_page_shows_timeline_callbacks_settings_and_the_token_masked(staff_client, channel, whapi):
    channel.timeline.create(to_state=State.WAITING_SCAN, from_state=State.CONFIGURING, source="system", detail="set")
    WebhookEvent.objects.create(
        channel=channel,
        whapi_channel_id=CHANNEL_ID,
        event_type="users",
        event_method="post",
        body="{}",
        outcome="applied",
    )
    stored = gate_that_keeps(whapi)
    act(staff_client, channel, "configure")  # verifies the settings, so the read-back is stored
    secret = reload(channel).webhook_secret
    assert stored["webhooks"][0]["headers"]["X-Portal-Secret"] == secret

    response = staff_client.get(url("channel_change", channel.pk))
    text = response.content.decode()
    assert response.status_code == 200
    assert "webhooks set and verified" in text  # timeline
    assert "users.post" in text and "Applied" in text  # recent callbacks
    assert "Verified by reading them back" in text
    assert text.count("https://portal.test/whapi/webhook") >= 2  # desired and read back
    assert "Whapi&#x27;s copy differs" not in text
    assert "••••••••" + CHANNEL_TOKEN[-4:] in text  # masked
    assert CHANNEL_TOKEN not in text
    assert secret not in text
    assert "channel.configure" in text  # recent actions


def test_a_drifted_read_back_is_pointed_out(staff_client, channel):
    Channel.objects.filter(pk=channel.pk).update(webhooks_readback={"webhooks": [], "callback_persist": False})
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "copy differs" in text and "is missing" in text


def test_the_page_edits_nothing(staff_client, channel):
    response = staff_client.post(url("channel_change", channel.pk), {"name": "Renamed"})
    assert response.status_code == 403
    assert reload(channel).name == "Shop bot"
    assert staff_client.get(url("channel_delete", channel.pk)).status_code == 403


def test_staff_see_only_the_buttons_they_may_use(client, django_user_model, channel):
    login_as(client, django_user_model, "sam", "view_channel", "extend_channel")
    text = client.get(url("channel_change", channel.pk)).content.decode()
    assert url("channel_action", channel.pk, "extend") in text
    for action in ("configure", "rotate_secret", "refresh", "restart", "mode", "logout", "delete"):
        assert url("channel_action", channel.pk, action) not in text, action
    assert url("channel_token", channel.pk) not in text


# ------------------------------------------------------------------------------------------------
# Actions that run at once
# ------------------------------------------------------------------------------------------------
def test_configure_now_sets_and_verifies_the_webhooks(staff_client, project, whapi):
    channel = make_channel(project, state=State.ERROR, error_source="configure", last_error="gave up")
    gate_that_keeps(whapi)
    response = act(staff_client, channel, "configure")
    assert response.status_code == 302 and response["Location"] == url("channel_change", channel.pk)
    assert messages_of(response) == [f"Shop bot ({CHANNEL_ID}): webhooks set and verified."]
    assert reload(channel).state == State.WAITING_SCAN
    assert audited("channel.configure").ok


def test_rotating_the_webhook_secret_keeps_both_secrets_until_whapi_has_the_new_one(
    staff_client, project, whapi, client
):
    from tests.test_webhooks import health, post

    channel = make_channel(project)
    old = channel.webhook_secret
    whapi.add(responses.PATCH, f"{GATE}/settings", status=500, json={"error": {"message": "down"}})
    response = act(staff_client, channel, "rotate_secret")
    assert "both secrets work until it does" in messages_of(response)[0]
    new = reload(channel).webhook_secret
    assert new != old and reload(channel).previous_webhook_secret == old
    # Meanwhile Whapi may call with either secret.
    assert post(client, channel, health("QR", 1713774883, 100, 3), secret=old).status_code == 200
    assert post(client, channel, health("QR", 1713774883, 200, 3), secret=new).status_code == 200

    whapi.reset()
    stored = gate_that_keeps(whapi)
    response = act(staff_client, channel, "rotate_secret")
    assert messages_of(response)[-1] == f"Shop bot ({CHANNEL_ID}): new webhook secret set and verified."
    newest = reload(channel).webhook_secret
    assert stored["webhooks"][0]["headers"] == {"X-Portal-Secret": newest}
    assert reload(channel).previous_webhook_secret == ""
    for refused in (old, new):
        assert post(client, channel, health("QR", 1713774883, 300, 3), secret=refused).status_code == 401
    assert post(client, channel, health("QR", 1713774883, 300, 3), secret=newest).status_code == 200
    assert audited("channel.rotate_secret").ok


def test_a_configuration_that_verified_an_older_secret_keeps_the_previous_one(project, whapi):
    """A configure run that began before a rotation must not end the grace of the secret Whapi holds."""
    from channels_app import configure

    channel = make_channel(project)
    gate_that_keeps(whapi)
    rotated = {}

    def rotate_while_whapi_is_asked(*args, **kwargs):
        if not rotated:
            rotated["old"] = Channel.objects.get(pk=channel.pk).webhook_secret
            fresh = Channel.objects.get(pk=channel.pk)
            fresh.previous_webhook_secret, fresh.webhook_secret = fresh.webhook_secret, "rotated-secret-0123456789"
            fresh.save(update_fields=["previous_webhook_secret", "webhook_secret"])
        return original(*args, **kwargs)

    original = configure.settings_mismatches
    configure.settings_mismatches = rotate_while_whapi_is_asked
    try:
        assert configure.channel_configure(channel.pk) is True
    finally:
        configure.settings_mismatches = original
    assert reload(channel).previous_webhook_secret == rotated["old"]  # still accepted


def test_refresh_reads_whapi_now(staff_client, channel, whapi):
    whapi.add(responses.GET, f"{PARTNER}/channels/{CHANNEL_ID}", json=remote_channel("Shop bot", CHANNEL_ID))
    whapi.add(
        responses.GET,
        f"{GATE}/health",
        json={"start_at": 1, "uptime": 5, "status": {"code": 4, "text": "AUTH"}, "user": {"id": "14155550123"}},
    )
    response = act(staff_client, channel, "refresh")
    assert messages_of(response) == [f"Shop bot ({CHANNEL_ID}): status refreshed: AUTH (Connected)."]
    assert reload(channel).connected_number == "14155550123"


def test_a_failed_refresh_says_why(staff_client, channel, whapi):
    whapi.add(responses.GET, f"{PARTNER}/channels/{CHANNEL_ID}", json=remote_channel("Shop bot", CHANNEL_ID))
    whapi.add(responses.GET, f"{GATE}/health", **whapi_error(401, "Invalid token"))
    response = act(staff_client, channel, "refresh")
    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith(f"Shop bot ({CHANNEL_ID}):") and "Invalid token" in message
    assert reload(channel).status_stale


def test_restart(staff_client, channel, whapi, enqueued, django_capture_on_commit_callbacks):
    whapi.add(responses.POST, f"{PARTNER}/channels/{CHANNEL_ID}/restart", json={"success": True})
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, channel, "restart")
    assert messages_of(response) == [
        f"Shop bot ({CHANNEL_ID}): restart requested; the status here follows when Whapi reports it."
    ]
    assert ("channel_health_check", (channel.pk,)) in enqueued
    assert audited("channel.restart").actor.username == "root"


def test_a_whapi_refusal_is_a_message_naming_the_channel_and_the_reason(staff_client, channel, whapi):
    whapi.add(responses.POST, f"{PARTNER}/channels/{CHANNEL_ID}/restart", **whapi_error(503, "Channel is not ready"))
    response = act(staff_client, channel, "restart")
    assert response.status_code == 302
    reason = "Whapi could not restart the channel: Channel is not ready"
    assert messages_of(response) == [f"Shop bot ({CHANNEL_ID}): {reason}"]
    entry = audited("channel.restart")
    assert entry.ok is False and "Channel is not ready" in entry.detail
    assert reload(channel).last_error.endswith("Channel is not ready")


def test_an_action_on_a_channel_not_yet_in_whapi_is_refused_politely(staff_client, project, whapi):
    channel = Channel.objects.create(project=project, name="queued")
    response = act(staff_client, channel, "restart")
    assert messages_of(response) == ["queued: “Restart” is not possible: it does not exist in Whapi yet."]
    assert staff_client.get(url("channel_action", channel.pk, "extend"))["Location"] == url(
        "channel_change", channel.pk
    )
    assert not whapi.calls and not AuditLog.objects.exists()


@pytest.mark.parametrize(
    ("fields", "offered"),
    [
        ({"state": State.QUEUED}, ["delete"]),
        ({"state": State.CREATING}, []),
        ({"state": State.ERROR, "error_source": "create", "last_error": "Whapi said no"}, ["delete"]),
        ({"state": State.DELETED}, []),
    ],
)
def test_a_channel_not_in_whapi_offers_no_whapi_action(staff_client, project, fields, offered):
    channel = Channel.objects.create(project=project, name="Not there", **fields)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    shown = [
        name
        for name in ("configure", "rotate_secret", "refresh", "restart", "extend", "mode", "logout", "delete")
        if url("channel_action", channel.pk, name) in text
    ]
    assert shown == offered
    assert ("Withdraw the request…" in text) == bool(offered)


def test_a_request_that_never_reached_whapi_is_withdrawn_after_a_confirmation(staff_client, project, whapi):
    channel = Channel.objects.create(project=project, name="Not there")
    confirm = staff_client.get(url("channel_action", channel.pk, "delete")).content.decode()
    assert "never created in Whapi" in confirm and "Unused days go back" not in confirm
    response = act(staff_client, channel, "delete", {"confirm": "yes"})
    assert messages_of(response) == ["Not there (not in Whapi yet): request withdrawn; nothing was created in Whapi."]
    assert reload(channel).state == State.DELETED
    assert not whapi.calls


def test_get_on_a_button_action_changes_nothing(staff_client, channel, whapi):
    response = staff_client.get(url("channel_action", channel.pk, "refresh"))
    assert response.status_code == 302
    assert not whapi.calls


def test_restart_asks_first_and_says_what_it_does(staff_client, channel, whapi):
    page_text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert f'href="{url("channel_action", channel.pk, "restart")}">Restart…</a>' in page_text
    confirm = staff_client.get(url("channel_action", channel.pk, "restart"))
    assert confirm.status_code == 200
    assert "no messages are sent or received" in confirm.content.decode()
    assert not whapi.calls and not AuditLog.objects.exists()


def test_a_mode_change_says_that_it_restarts_the_channel(staff_client, channel):
    text = staff_client.get(url("channel_action", channel.pk, "mode")).content.decode()
    assert "A mode change restarts the channel" in text


def test_unknown_actions_and_channels_are_404(staff_client, channel):
    assert staff_client.post(url("channel_action", channel.pk, "explode")).status_code == 404
    assert staff_client.post(url("channel_action", 999999, "restart")).status_code == 404


# ------------------------------------------------------------------------------------------------
# Actions that ask first
# ------------------------------------------------------------------------------------------------
def test_extend_asks_for_days_and_a_comment(staff_client, channel, whapi):
    page_ = staff_client.get(url("channel_action", channel.pk, "extend"))
    assert page_.status_code == 200
    assert "moved from the partner balance" in page_.content.decode()

    invalid = act(staff_client, channel, "extend", {"days": "0", "comment": ""})
    assert invalid.status_code == 200 and invalid.context["form"].errors.keys() == {"days", "comment"}
    assert not whapi.calls

    whapi.add(responses.POST, f"{PARTNER}/channels/{CHANNEL_ID}/extend", json={"success": True})
    till = timezone.now() + timedelta(days=35)
    whapi.add(
        responses.GET,
        f"{PARTNER}/channels/{CHANNEL_ID}",
        json=remote_channel("Shop bot", CHANNEL_ID, activeTill=int(till.timestamp() * 1000)),
    )
    response = act(staff_client, channel, "extend", {"days": "30", "comment": "invoice 42"})
    assert json.loads(whapi.calls[0].request.body) == {"days": 30, "comment": "invoice 42"}
    assert messages_of(response) == [f"Shop bot ({CHANNEL_ID}): extended by 30 days; active till {till:%Y-%m-%d}."]
    assert audited("channel.extend").detail == "30 days: invoice 42"


def test_extend_refused_for_lack_of_balance_names_the_reason(staff_client, channel, whapi):
    whapi.add(responses.POST, f"{PARTNER}/channels/{CHANNEL_ID}/extend", **whapi_error(503, "Not enough days"))
    response = act(staff_client, channel, "extend", {"days": "30", "comment": "invoice 42"})
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Shop bot ({CHANNEL_ID}): Whapi could not extend the channel by 30 days: Not enough days"
    ]


def test_change_mode(staff_client, channel, whapi):
    form_page = staff_client.get(url("channel_action", channel.pk, "mode"))
    assert "about 30 seconds" in form_page.content.decode()
    assert [value for value, _ in form_page.context["form"].fields["mode"].choices] == ["trial", "dev", "live"]
    whapi.add(responses.PATCH, f"{PARTNER}/channels/{CHANNEL_ID}/mode", json={"success": True})
    response = act(staff_client, channel, "mode", {"mode": "dev"})
    assert json.loads(whapi.calls[0].request.body) == {"mode": "dev"}
    assert reload(channel).mode == "dev"
    assert "mode changed to Sandbox (dev)" in messages_of(response)[0]
    assert audited("channel.mode").detail == "live → dev"


def test_logout_asks_for_confirmation(staff_client, project, whapi):
    channel = make_channel(project, state=State.CONNECTED, connected_number="14155550123")
    confirm = staff_client.get(url("channel_action", channel.pk, "logout"))
    assert "no messages are sent or received" in confirm.content.decode()
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    response = act(staff_client, channel, "logout")
    assert messages_of(response) == [f"Shop bot ({CHANNEL_ID}): number logged out."]
    assert (reload(channel).state, reload(channel).connected_number) == (State.DISCONNECTED, "")


def test_delete_says_the_days_go_back_and_logs_out_first(staff_client, project, whapi):
    channel = make_channel(project, state=State.CONNECTED, connected_number="14155550123")
    confirm = staff_client.get(url("channel_action", channel.pk, "delete"))
    text = confirm.content.decode()
    assert "Unused days go back to the partner balance." in text
    assert "logged out first" in text
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    whapi.add(responses.DELETE, f"{PARTNER}/channels/{CHANNEL_ID}", json={"success": True})
    response = act(staff_client, channel, "delete")
    assert [call.request.method for call in whapi.calls] == ["POST", "DELETE"]
    assert reload(channel).state == State.DELETED
    assert "its unused days went back to the partner balance" in messages_of(response)[0]
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "channel.logout",
        "channel.delete",
    ]
    # A deleted channel offers no more actions.
    page_text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert url("channel_action", channel.pk, "restart") not in page_text


# ------------------------------------------------------------------------------------------------
# Permissions
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "permission", "data"),
    [
        ("configure", "operate_channel", {}),
        ("refresh", "operate_channel", {}),
        ("restart", "operate_channel", {}),
        ("extend", "extend_channel", {"days": "5", "comment": "x"}),
        ("mode", "change_mode", {"mode": "live"}),
        ("logout", "logout_number", {}),
        ("delete", "delete_in_whapi", {}),
    ],
)
def test_each_action_needs_its_permission(client, django_user_model, channel, whapi, action, permission, data):
    others = [codename for codename in CHANNEL_PERMS if codename != permission]
    login_as(client, django_user_model, "sam", "view_channel", *others)
    assert client.get(url("channel_action", channel.pk, action)).status_code in (302, 403)
    assert act(client, channel, action, data).status_code == 403
    assert not whapi.calls
    assert not AuditLog.objects.exists()


def test_non_staff_are_sent_to_the_login(client, alice, channel, whapi):
    client.force_login(alice)
    response = act(client, channel, "delete")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not whapi.calls


# ------------------------------------------------------------------------------------------------
# The token
# ------------------------------------------------------------------------------------------------
def test_revealing_the_token_is_explicit_and_audited(staff_client, channel):
    confirm = staff_client.get(url("channel_token", channel.pk))
    assert confirm.status_code == 200
    assert CHANNEL_TOKEN not in confirm.content.decode()
    assert not AuditLog.objects.exists()

    response = staff_client.post(url("channel_token", channel.pk))
    assert CHANNEL_TOKEN in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    entry = audited("channel.reveal_token")
    assert entry.actor.username == "root" and CHANNEL_TOKEN not in entry.detail
    assert CHANNEL_TOKEN not in " ".join(messages_of(response))


def test_revealing_the_token_needs_its_permission(client, django_user_model, channel):
    login_as(client, django_user_model, "sam", "view_channel", *[p for p in CHANNEL_PERMS if p != "reveal_token"])
    assert client.get(url("channel_token", channel.pk)).status_code == 403
    response = client.post(url("channel_token", channel.pk))
    assert response.status_code == 403
    assert CHANNEL_TOKEN not in response.content.decode()
    assert not AuditLog.objects.exists()


# ------------------------------------------------------------------------------------------------
# Sync with Whapi
# ------------------------------------------------------------------------------------------------
def test_sync_runs_in_the_background_imports_unassigned_and_marks_the_gone(
    staff_client, superuser, project, whapi, enqueued, django_capture_on_commit_callbacks
):
    known = make_channel(project)
    gone = make_channel(project, name="gone", whapi_id="GONEGO-00001")
    whapi.add(responses.GET, f"{PARTNER}/channels/GONEGO-00001", **whapi_error(404, "Channel not found"))
    whapi.add(responses.GET, f"{PARTNER}/projects", body=page("projects", []))
    whapi.add(
        responses.GET,
        f"{PARTNER}/channels/list",
        body=page(
            "channels",
            [
                remote_channel("Shop bot", CHANNEL_ID, mode="live"),
                remote_channel("Made in the panel", "PANELP-00001", project_id="Z" * 20),
            ],
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("channel_sync"))
    assert response.status_code == 302 and response["Location"] == url("channel_changelist")
    [message] = messages_of(response)
    assert "has started" in message and "audit log" in message
    assert not whapi.calls  # nothing inside the request
    assert enqueued == [("whapi_sync", (superuser.pk,))]

    tasks.whapi_sync(superuser.pk)
    imported = Channel.objects.get(whapi_id="PANELP-00001")
    assert imported.project is None and imported.customer is None
    assert reload(gone).state == State.DELETED
    assert reload(known).mode == "live"
    entry = audited("channels.sync")
    assert entry.ok and entry.actor == superuser
    assert "1 imported, 1 gone from Whapi, 1 updated" in entry.detail
    listed = staff_client.get(url("channel_changelist") + "?assigned=no").context["cl"].result_list
    assert [channel.whapi_id for channel in listed] == ["PANELP-00001"]


def test_a_failed_sync_is_recorded_with_whapis_reason(superuser, whapi):
    whapi.add(responses.GET, f"{PARTNER}/projects", **whapi_error(401, "Bad partner token"))
    assert tasks.whapi_sync(superuser.pk) == "The sync with Whapi failed: Bad partner token"
    entry = audited("channels.sync")
    assert entry.ok is False and "Bad partner token" in entry.detail


def test_sync_needs_the_operate_permission(client, django_user_model, db, whapi):
    login_as(client, django_user_model, "sam", "view_channel")
    assert client.post(url("channel_sync")).status_code == 403
    assert "Sync channels from Whapi" not in client.get(url("channel_changelist")).content.decode()
    assert not whapi.calls


# ------------------------------------------------------------------------------------------------
# How the page reads: booleans, the number, the connection, a deleted channel
# ------------------------------------------------------------------------------------------------
def test_a_fresh_status_and_a_running_channel_do_not_look_like_errors(staff_client, project):
    channel = make_channel(project, state=State.CONNECTED, connected_number="14155550123", status_stale=False)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "icon-no.svg" not in text and "icon-yes.svg" not in text
    Channel.objects.filter(pk=channel.pk).update(status_stale=True)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "Yes: the last health check failed" in text


def test_the_number_reads_the_same_everywhere(staff_client, project, customer):
    # Not the pairing form's example number (14155550123), which the page shows as digits.
    channel = make_channel(project, state=State.CONNECTED, connected_number="4915112345678")
    pages = [
        staff_client.get(url("channel_change", channel.pk)).content.decode(),
        staff_client.get(url("channel_changelist")).content.decode(),
        staff_client.get(url("customer_change", customer.pk)).content.decode(),
    ]
    for text in pages:
        assert "+4915112345678" in text
        assert text.count("4915112345678") == text.count("+4915112345678")


def test_a_disconnected_channel_shows_no_connected_time_as_current(staff_client, project):
    connected_at = timezone.now() - timedelta(hours=2)
    channel = make_channel(project, state=State.CONNECTED, connected_number="14155550123", connected_at=connected_at)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert f"{connected_at:%Y-%m-%d %H:%M:%S} UTC" in text and "Not connected now" not in text
    Channel.objects.filter(pk=channel.pk).update(state=State.DISCONNECTED, connected_number="")
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert f"Not connected now (last connected {connected_at:%Y-%m-%d %H:%M:%S} UTC)." in text


def test_a_deleted_channel_shows_no_days_left_and_no_token(staff_client, project):
    channel = make_channel(project, state=State.DELETED, active_till=timezone.now() + timedelta(days=20))
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "days left" not in text
    assert url("channel_token", channel.pk) not in text
    response = staff_client.post(url("channel_token", channel.pk))
    assert response.status_code == 302
    assert messages_of(response) == [f"{channel}: the channel is deleted; its token no longer works."]
    assert not AuditLog.objects.exists()


# ------------------------------------------------------------------------------------------------
# The live page: status, QR code, pairing code, hand-off link
# ------------------------------------------------------------------------------------------------
def test_the_page_polls_the_customer_pages_status_while_the_channel_changes(staff_client, project):
    channel = make_channel(project, state=State.CONFIGURING)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert f'data-poll="{url("channel_status", channel.pk)}" data-poll-active="1"' in text
    assert '<meta http-equiv="refresh"' not in text

    payload = staff_client.get(url("channel_status", channel.pk)).json()
    assert payload["state"] == "configuring" and payload["poll"] is True and payload["connect"] is False
    assert 'aria-current="step"' in payload["html"]
    assert set(payload["parts"]) == {"channel-summary", "channel-actions", "channel-timeline"}
    assert "Configuring" in payload["parts"]["channel-summary"]

    Channel.objects.filter(pk=channel.pk).update(state=State.WAITING_SCAN)
    payload = staff_client.get(url("channel_status", channel.pk)).json()
    assert payload["state"] == "waiting_scan" and payload["connect"] is True
    assert url("channel_action", channel.pk, "restart") in payload["parts"]["channel-actions"]


def test_the_qr_code_and_the_pairing_code_need_the_operate_permission(client, django_user_model, channel, whapi):
    login_as(client, django_user_model, "sam", "view_channel")
    text = client.get(url("channel_change", channel.pk)).content.decode()
    assert 'id="connect"' not in text and url("channel_handoff", channel.pk) not in text
    assert client.get(url("channel_status", channel.pk)).json()["connect"] is False
    assert client.get(url("channel_qr", channel.pk)).status_code == 403
    assert client.post(url("channel_connect", channel.pk), {"phone": "14155550123"}).status_code == 403
    assert client.post(url("channel_handoff", channel.pk), {"minutes": "30"}).status_code == 403
    assert not whapi.calls and not AuditLog.objects.exists()


def test_staff_get_the_qr_code(staff_client, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_data_uri.json"))
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert f'data-qr-url="{url("channel_qr", channel.pk)}"' in text
    response = staff_client.get(url("channel_qr", channel.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_staff_get_a_pairing_code_for_a_phone_number_audited(staff_client, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", json=whapi_fixture("gate_login_code.json"))
    response = staff_client.post(url("channel_connect", channel.pk), {"phone": "+1 (415) 555-0123"})
    text = response.content.decode()
    assert response.status_code == 200
    assert 'class="pairing-code"' in text and "ABC-123" in text
    assert f'data-poll="{url("channel_status", channel.pk)}" data-poll-active="1"' in text
    assert "no-store" in response["Cache-Control"]
    entry = audited("channel.pairing_code")
    assert (entry.actor.username, entry.source, entry.ok) == ("root", "staff", True)


def test_a_wrong_phone_number_is_named_next_to_the_field(staff_client, channel, whapi):
    response = staff_client.post(url("channel_connect", channel.pk), {"phone": "call me"})
    text = response.content.decode()
    assert response.status_code == 200 and "Use digits only" in text and 'value="call me"' in text
    assert not whapi.calls


def test_no_pairing_code_for_a_channel_that_cannot_be_linked(staff_client, project, whapi):
    channel = make_channel(project, state=State.CONNECTED, connected_number="14155550123")
    response = staff_client.post(url("channel_connect", channel.pk), {"phone": "14155550123"})
    assert response.status_code == 302
    assert messages_of(response) == [f"{channel}: the channel cannot be linked right now (it is connected)."]
    assert not whapi.calls


def test_staff_make_and_revoke_a_hand_off_link_audited(staff_client, channel, client):
    response = staff_client.post(url("channel_handoff", channel.pk), {"minutes": "120"})
    assert response["Location"] == url("channel_change", channel.pk) + "#handoff"
    link = HandoffLink.objects.get(channel=channel)
    assert timedelta(minutes=119) < link.expires_at - link.created_at <= timedelta(minutes=120)
    entry = audited("handoff.create")
    assert (entry.actor.username, entry.source) == ("root", "staff")

    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    sent = handoff.handoff_url(link)
    assert sent.startswith("https://portal.test/connect/") and f'value="{sent}"' in text
    assert client.get(sent.removeprefix("https://portal.test")).status_code == 302  # it opens

    response = staff_client.post(url("channel_handoff_revoke", channel.pk))
    assert messages_of(response) == ["The hand-off link no longer works."]
    assert not HandoffLink.objects.get(pk=link.pk).is_active()
    entry = audited("handoff.revoke")
    assert (entry.actor.username, entry.source) == ("root", "staff")


def test_no_live_part_and_no_hand_off_link_for_a_deleted_channel(staff_client, project):
    channel = make_channel(project, state=State.DELETED)
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "data-poll=" not in text and 'id="connect"' not in text and 'id="handoff"' not in text
    response = staff_client.post(url("channel_handoff", channel.pk), {"minutes": "30"})
    assert "is deleted" in messages_of(response)[0]
    assert not channel.handoff_links.exists()
