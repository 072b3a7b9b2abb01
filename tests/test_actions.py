"""Channel and project actions (the service layer behind the admin and the customer pages)."""

import json

import pytest
import responses

from channels_app import actions
from channels_app.actions import ActionError
from channels_app.models import AuditLog, Channel
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", is_staff=True)


def last_audit() -> AuditLog:
    return AuditLog.objects.order_by("-id").first()


def test_extend_moves_days_and_is_audited(channel, whapi, staff):
    whapi.add(responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/extend", json={"success": True})
    whapi.add(responses.GET, f"{PARTNER}/channels/{channel.whapi_id}", status=500, body="down")
    actions.channel_extend(channel, days=30, comment="paid invoice 42", actor=staff, source="staff")
    assert json.loads(whapi.calls[0].request.body) == {"days": 30, "comment": "paid invoice 42"}
    entry = last_audit()
    assert (entry.action, entry.ok, entry.actor, entry.customer) == ("channel.extend", True, staff, channel.customer)
    assert "paid invoice 42" in entry.detail


def test_a_whapi_refusal_names_the_channel_and_the_reason_and_changes_nothing(channel, whapi, staff):
    whapi.add(
        responses.POST,
        f"{PARTNER}/channels/{channel.whapi_id}/extend",
        status=503,
        json={"error": {"code": 503, "message": "Not enough days on balance"}},
    )
    with pytest.raises(ActionError, match=r"Shop bot \(MANTIS-M72HC\).*Not enough days on balance"):
        actions.channel_extend(channel, days=30, comment="x", actor=staff, source="staff")
    assert last_audit().ok is False
    assert Channel.objects.get(pk=channel.pk).state == channel.state


@pytest.mark.parametrize(("days", "comment"), [(0, "x"), (-1, "x"), (5000, "x"), (5, " ")])
def test_extend_validates_before_calling_whapi(channel, whapi, staff, days, comment):
    with pytest.raises(ActionError):
        actions.channel_extend(channel, days=days, comment=comment, actor=staff, source="staff")
    assert len(whapi.calls) == 0


def test_logout_disconnects(project, whapi, staff):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    actions.channel_logout(channel, actor=staff, source="customer")
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == ("disconnected", "")
    assert whapi.calls[0].request.headers["Authorization"] == f"Bearer {CHANNEL_TOKEN}"
    assert channel.timeline.get().source == "customer"


def test_delete_logs_out_first_then_deletes(project, whapi, staff):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    whapi.add(responses.DELETE, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    actions.channel_delete(channel, actor=staff, source="staff")
    assert [call.request.method for call in whapi.calls] == ["POST", "DELETE"]
    assert Channel.objects.get(pk=channel.pk).state == "deleted"
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "channel.logout",
        "channel.delete",
    ]


def test_change_mode_mirrors_the_new_mode(channel, whapi, staff):
    whapi.add(responses.PATCH, f"{PARTNER}/channels/{channel.whapi_id}/mode", json={"success": True})
    actions.channel_change_mode(channel, mode="live", actor=staff, source="staff")
    assert Channel.objects.get(pk=channel.pk).mode == "live"
    with pytest.raises(ActionError):
        actions.channel_change_mode(channel, mode="gold", actor=staff, source="staff")


def test_rename_updates_whapi_and_the_portal(channel, whapi, staff):
    whapi.add(responses.PATCH, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    actions.channel_rename(channel, name="Support line", actor=staff, source="customer")
    assert json.loads(whapi.calls[0].request.body)["name"] == "Support line"
    assert Channel.objects.get(pk=channel.pk).name == "Support line"


@pytest.mark.parametrize(
    ("url", "events"),
    [
        ("not a url", [{"type": "messages"}]),
        ("ftp://example.com/hook", [{"type": "messages"}]),
        ("http://localhost:9000/hook", [{"type": "messages"}]),
        ("https://example.com/hook", []),
        ("https://example.com/hook", [{"type": "users"}]),
    ],
)
def test_customer_webhook_validation(channel, whapi, staff, url, events):
    with pytest.raises(ActionError):
        actions.channel_set_customer_webhook(channel, url=url, events=events, actor=staff, source="customer")
    assert Channel.objects.get(pk=channel.pk).customer_webhook_url == ""
    assert len(whapi.calls) == 0


def test_pairing_code_validates_the_phone(channel, whapi, staff):
    for phone in ("+14155550123", "123", "1234567890123456", "41555 0123", "١٢٣٤٥٦٧٨"):
        with pytest.raises(ActionError, match="digits only"):
            actions.channel_pairing_code(channel, phone=phone, actor=staff, source="customer")
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", json={"code": "ABCD-EFGH"})
    assert actions.channel_pairing_code(channel, phone="14155550123", actor=staff, source="customer") == "ABCD-EFGH"


def test_qr_is_none_once_connected(channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", status=409, json={"error": {"code": 409, "message": "authorized"}})
    assert actions.channel_qr(channel) is None


def test_reveal_token_is_audited(channel, staff):
    assert actions.channel_reveal_token(channel, actor=staff, source="customer") == CHANNEL_TOKEN
    assert last_audit().action == "channel.reveal_token"
    assert CHANNEL_TOKEN not in last_audit().detail


def test_the_qr_of_a_gate_that_is_down_fails_fast_without_retries(channel, whapi, settings):
    settings.WHAPI_TIMEOUT = 15
    whapi.add(responses.GET, f"{GATE}/users/login", status=502, body="Bad gateway")
    with pytest.raises(ActionError, match="not available right now"):
        actions.channel_qr(channel)
    assert len(whapi.calls) == 1
    assert whapi.calls[0].request.req_kwargs["timeout"] == (5.0, 5.0)


def test_deleting_a_queued_channel_withdraws_it_and_never_reaches_whapi(project, whapi, staff):
    channel = Channel.objects.create(project=project, name="queued")
    actions.channel_delete(channel, actor=staff, source="customer")
    assert Channel.objects.get(pk=channel.pk).state == "deleted"
    assert not whapi.calls


def test_a_channel_claimed_by_the_pump_meanwhile_is_not_deleted_locally(project, whapi, staff):
    stale = Channel.objects.create(project=project, name="racing")
    Channel.objects.filter(pk=stale.pk).update(state=Channel.State.CREATING)  # the pump got there first
    with pytest.raises(ActionError, match="creation is under way"):
        actions.channel_delete(stale, actor=staff, source="staff")
    assert Channel.objects.get(pk=stale.pk).state == "creating"


def test_moving_a_project_to_another_customer_revokes_its_hand_off_links(channel, project, staff):
    from datetime import timedelta

    from django.utils import timezone

    from channels_app.models import Customer, HandoffLink

    link = HandoffLink.objects.create(channel=channel, expires_at=timezone.now() + timedelta(minutes=30))
    actions.project_assign(project, customer=Customer.objects.create(name="New owner"), actor=staff)
    link.refresh_from_db()
    assert not link.is_active()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.2/hook",
        "https://0.0.0.0/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::1]/hook",
        "https://foo.localhost/hook",
        "https://192.168.0.1:22/",
        "https://224.0.0.1/hook",
        "https://100.64.0.1/hook",
        "https://[2002:7f00:1::]/hook",  # 6to4 for 127.0.0.1
        "https://[2002:a9fe:a9fe::]/hook",  # 6to4 for 169.254.169.254
    ],
)
def test_a_customer_webhook_to_an_internal_address_is_refused(channel, whapi, staff, url):
    with pytest.raises(ActionError, match="cannot reach a local address"):
        actions.channel_set_customer_webhook(
            channel, url=url, events=[{"type": "messages"}], actor=staff, source="customer"
        )
    assert Channel.objects.get(pk=channel.pk).customer_webhook_url == ""


def test_a_customer_webhook_whose_host_resolves_to_a_private_address_is_refused(channel, whapi, staff, dns):
    dns.answers["hooks.internal.example"] = ["93.184.216.34", "10.1.2.3"]
    with pytest.raises(ActionError, match="cannot reach a local address"):
        actions.validate_customer_webhook("https://hooks.internal.example/wa", [{"type": "messages"}])


def test_a_customer_webhook_host_that_does_not_resolve_is_refused(db):
    with pytest.raises(ActionError, match="cannot be found"):
        actions.validate_customer_webhook("https://nowhere.invalid/wa", [{"type": "messages"}])


def test_a_customer_webhook_must_be_https_unless_debugging(db, settings):
    with pytest.raises(ActionError, match="https"):
        actions.validate_customer_webhook("http://hooks.acme.example/wa", [{"type": "messages"}])
    settings.DEBUG = True
    assert actions.validate_customer_webhook("http://hooks.acme.example/wa", [{"type": "messages"}])[0]


def test_a_public_customer_webhook_is_accepted(db):
    url, events = actions.validate_customer_webhook("https://hooks.acme.example/wa", [{"type": "messages"}])
    assert (url, events) == ("https://hooks.acme.example/wa", [{"type": "messages", "method": "post"}])


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254\\@hooks.acme.example/latest/meta-data",
        "https://user@hooks.acme.example/wa",
        "https://user:pw@hooks.acme.example/wa",
    ],
)
def test_a_customer_webhook_url_with_user_info_or_a_backslash_is_refused(db, url):
    with pytest.raises(ActionError, match="without"):
        actions.validate_customer_webhook(url, [{"type": "messages"}])


def test_a_customer_webhook_url_with_port_0_is_refused(db):
    with pytest.raises(ActionError, match="port"):
        actions.validate_customer_webhook("https://hooks.acme.example:0/wa", [{"type": "messages"}])
