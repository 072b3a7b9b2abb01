"""Tests of channels_app.whapi, the Whapi client. HTTP is mocked with `responses` only.

The payloads in tests/fixtures/whapi/ are the examples of /work/shared/whapi-api.md (doc example of a
channel create, DOC-STATUS health examples, the spec's Settings and ResponseError shapes); the QR
fixtures carry a real 8x8 PNG, once bare and once behind a `data:image/png;base64,` prefix.
"""

import base64
import json
import logging
import pickle
from datetime import UTC, datetime
from http.client import RemoteDisconnected

import pytest
import requests
import responses
import urllib3.exceptions
from responses import matchers

from channels_app.whapi import (
    GateClient,
    Health,
    PartnerClient,
    QrCode,
    WhapiChannel,
    WhapiError,
    gate_client,
    partner_client,
)
from tests.conftest import whapi_fixture

PARTNER = "https://manager.whapi.test"  # WHAPI_PARTNER_URL of tests/environment.py
PARTNER_TOKEN = "test-partner-token"
GATE = "https://gate.whapi.test"
GATE_TOKEN = "Zx8Vb2Nm4Lk6Jh0Gf1Ds3Aq5Wr7Ty9Ui"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sent_json(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def partner(sleeps) -> PartnerClient:
    return PartnerClient(sleep=sleeps.append)


@pytest.fixture
def gate(sleeps) -> GateClient:
    return GateClient(f"{GATE}/", GATE_TOKEN, sleep=sleeps.append)


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port."""
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/channels", reason))


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the server closes the connection after getting the request."""
    reason = RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reason))


# ------------------------------------------------------------------------------------------------
# Configuration and what every request carries
# ------------------------------------------------------------------------------------------------
def test_partner_client_factory_reads_settings(mocked):
    mocked.add("GET", f"{PARTNER}/projects", json={"projects": [], "total": 0})
    client = partner_client()
    client.list_projects()
    assert client.base_url == PARTNER
    assert client.timeout == 5.0
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {PARTNER_TOKEN}"


def test_gate_client_factory_reads_timeout_from_settings():
    assert gate_client(f"{GATE}/", GATE_TOKEN).timeout == 5.0


def test_every_request_sends_bearer_token_and_accept_json(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/projects", json=whapi_fixture("partner_project"))
    partner.create_project("Clinics")
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {PARTNER_TOKEN}"
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"


def test_timeout_is_passed_to_requests_as_connect_and_read(mocked, partner):
    mocked.add("GET", f"{PARTNER}/channels/SHAZAM-3HDYQ", json=whapi_fixture("partner_channel_create"))
    partner.get_channel("SHAZAM-3HDYQ")
    assert mocked.calls[0].request.req_kwargs["timeout"] == (5.0, 5.0)


def test_constructor_timeout_overrides_settings(mocked):
    mocked.add("GET", f"{GATE}/settings", json=whapi_fixture("gate_settings"))
    GateClient(f"{GATE}/", GATE_TOKEN, timeout=2.5).get_settings()
    assert mocked.calls[0].request.req_kwargs["timeout"] == (2.5, 2.5)


def test_gate_joins_paths_to_an_api_url_with_trailing_slash(mocked, gate):
    mocked.add("GET", f"{GATE}/users/profile", json=whapi_fixture("gate_profile"))
    gate.profile()
    assert mocked.calls[0].request.url == f"{GATE}/users/profile"


def test_gate_joins_paths_under_a_path_prefix(mocked):
    mocked.add("GET", "http://127.0.0.1:8765/gate/users/profile", json=whapi_fixture("gate_profile"))
    GateClient("http://127.0.0.1:8765/gate/", GATE_TOKEN).profile()
    assert mocked.calls[0].request.url == "http://127.0.0.1:8765/gate/users/profile"


def test_gate_sends_the_channel_token(mocked, gate):
    mocked.add("GET", f"{GATE}/users/profile", json=whapi_fixture("gate_profile"))
    gate.profile()
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {GATE_TOKEN}"


def test_client_rejects_a_url_that_is_not_http():
    with pytest.raises(ValueError):
        GateClient("gate.whapi.cloud", GATE_TOKEN)


# ------------------------------------------------------------------------------------------------
# Partner API: projects
# ------------------------------------------------------------------------------------------------
def test_list_projects_parses_projects(mocked, partner):
    mocked.add("GET", f"{PARTNER}/projects", json=whapi_fixture("partner_projects_page"))
    projects = partner.list_projects()
    assert mocked.calls[0].request.params == {"count": "100", "offset": "0"}
    assert [p.id for p in projects] == ["kpSv3OFq9PkP1W1Ogv7p", "Tq7Wn2Lc9Rb4Hs6Ke1Vd"]
    assert projects[0].name == "Default project"
    assert projects[0].is_default is True
    assert projects[1].is_default is False
    assert projects[0].creation_ts == datetime(2024, 4, 7, 14, 26, 40, tzinfo=UTC)


def test_list_projects_follows_pages_to_the_end(mocked, partner):
    project = whapi_fixture("partner_project")
    first = [dict(project, id=f"p{n:019d}") for n in range(100)]
    mocked.add(
        "GET",
        f"{PARTNER}/projects",
        json={"projects": first, "count": 100, "total": 101, "offset": 0},
        match=[matchers.query_param_matcher({"count": 100, "offset": 0})],
    )
    mocked.add(
        "GET",
        f"{PARTNER}/projects",
        json={"projects": [project], "count": 100, "total": 101, "offset": 100},
        match=[matchers.query_param_matcher({"count": 100, "offset": 100})],
    )
    assert len(partner.list_projects()) == 101
    assert len(mocked.calls) == 2


def test_create_project_puts_the_name(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/projects", json=whapi_fixture("partner_project"))
    project = partner.create_project("Default project")
    assert sent_json(mocked.calls[0]) == {"name": "Default project"}
    assert project.id == "kpSv3OFq9PkP1W1Ogv7p"


def test_get_project_reads_one_project(mocked, partner):
    mocked.add("GET", f"{PARTNER}/projects/kpSv3OFq9PkP1W1Ogv7p", json=whapi_fixture("partner_project"))
    assert partner.get_project("kpSv3OFq9PkP1W1Ogv7p").name == "Default project"


# ------------------------------------------------------------------------------------------------
# Partner API: channels
# ------------------------------------------------------------------------------------------------
def test_create_channel_puts_name_and_project(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", json=whapi_fixture("partner_channel_create"))
    channel = partner.create_channel(name="Bot for Ukindo", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert sent_json(mocked.calls[0]) == {"name": "Bot for Ukindo", "projectId": "kpSv3OFq9PkP1W1Ogv7p"}
    assert channel.id == "SHAZAM-3HDYQ"
    assert channel.token == "LK0tQ9qnb5pvfDDsj5NzeRFpnpApSEGb"
    assert channel.api_url == "https://gate.whapi.cloud/"
    assert channel.project_id == "kpSv3OFq9PkP1W1Ogv7p"
    assert (channel.server, channel.mode, channel.status, channel.stopped) == (6, "trial", "active", False)
    assert channel.raw["ownerId"] == "DdEBesOO62Ika8Q8d491Vse2kQp2"


def test_create_channel_sends_the_phone_when_given(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", json=whapi_fixture("partner_channel_create"))
    partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p", phone="61371989950")
    assert sent_json(mocked.calls[0])["phone"] == "61371989950"


def test_create_channel_rejects_a_bad_phone_before_any_request(mocked, partner):
    with pytest.raises(ValueError):
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p", phone="+61 371989950")
    assert len(mocked.calls) == 0


def test_create_channel_answer_without_token_is_outcome_unknown(mocked, partner):
    answer = whapi_fixture("partner_channel_create")
    del answer["token"]
    mocked.add("PUT", f"{PARTNER}/channels", json=answer)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert "'token'" in caught.value.message
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, True)


def test_create_channel_is_never_retried_on_500(mocked, partner, sleeps):
    mocked.add("PUT", f"{PARTNER}/channels", json=whapi_fixture("error_500"), status=500)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert caught.value.outcome_unknown is True
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_create_channel_is_never_retried_on_timeout(mocked, partner, sleeps):
    mocked.add("PUT", f"{PARTNER}/channels", body=requests.exceptions.ReadTimeout())
    with pytest.raises(WhapiError):
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_create_channel_rate_limit_reads_like_a_staff_message(mocked, partner):
    mocked.add(
        "PUT", f"{PARTNER}/channels", json=whapi_fixture("error_429_create"), status=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert str(caught.value) == "Whapi PUT /channels failed: HTTP 429 Too many requests (retry after 30 s)"
    assert caught.value.retry_after == 30.0
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, False)


def test_list_channels_follows_250_channels_across_3_pages(mocked, partner):
    template = whapi_fixture("partner_channel_create")
    everything = [dict(template, id=f"CHAN{n:08d}") for n in range(250)]

    def page(request):
        offset, count = int(request.params["offset"]), int(request.params["count"])
        body = {"channels": everything[offset : offset + count], "count": count, "total": 250, "offset": offset}
        return 200, {}, json.dumps(body)

    mocked.add_callback("GET", f"{PARTNER}/channels/list", callback=page)
    channels = partner.list_channels()
    assert [c.id for c in channels] == [c["id"] for c in everything]
    assert [call.request.params for call in mocked.calls] == [
        {"count": "100", "offset": "0"},
        {"count": "100", "offset": "100"},
        {"count": "100", "offset": "200"},
    ]


def test_list_channels_of_a_project_uses_the_project_path(mocked, partner):
    mocked.add("GET", f"{PARTNER}/channels/list/kpSv3OFq9PkP1W1Ogv7p", json=whapi_fixture("partner_channels_page"))
    channels = partner.list_channels("kpSv3OFq9PkP1W1Ogv7p")
    assert [c.id for c in channels] == ["SHAZAM-3HDYQ", "MANTIS-M72HC"]


def test_list_channels_without_total_stops_at_a_short_page(mocked, partner):
    page = whapi_fixture("partner_channels_page")
    del page["total"]
    mocked.add("GET", f"{PARTNER}/channels/list", json=page)
    assert len(partner.list_channels()) == 2
    assert len(mocked.calls) == 1


def test_list_channels_stops_when_whapi_ignores_the_offset(mocked, partner):
    template = whapi_fixture("partner_channel_create")
    same_page = [dict(template, id=f"CHAN{n:08d}") for n in range(100)]
    mocked.add("GET", f"{PARTNER}/channels/list", json={"channels": same_page, "total": 500})
    assert len(partner.list_channels()) == 100
    assert len(mocked.calls) == 2


def test_list_channels_rejects_an_answer_without_a_channels_list(mocked, partner, sleeps):
    mocked.add("GET", f"{PARTNER}/channels/list", json={"items": [whapi_fixture("partner_channel_create")], "total": 1})
    with pytest.raises(WhapiError) as caught:
        partner.list_channels()
    assert "'channels'" in caught.value.message
    assert caught.value.outcome_unknown is True


def test_get_channel_converts_millisecond_timestamps_to_aware_utc(mocked, partner):
    mocked.add("GET", f"{PARTNER}/channels/SHAZAM-3HDYQ", json=whapi_fixture("partner_channel_create"))
    channel = partner.get_channel("SHAZAM-3HDYQ")
    assert channel.creation_ts == datetime(2024, 4, 8, 17, 44, 27, 389000, tzinfo=UTC)
    assert channel.trial == datetime(2024, 4, 13, 17, 44, 27, 448000, tzinfo=UTC)
    assert channel.active_till == datetime(2024, 4, 14, 17, 44, 27, 448000, tzinfo=UTC)


def test_missing_optional_channel_fields_get_defaults(mocked, partner):
    mocked.add("GET", f"{PARTNER}/channels/MANTIS-PF298", json=whapi_fixture("partner_channel_minimal"))
    channel = partner.get_channel("MANTIS-PF298")
    assert channel.mode == "live"  # the spec: an empty or missing mode means live
    assert (channel.status, channel.trial, channel.creation_ts, channel.phone, channel.blocked) == (None,) * 5
    assert channel.stopped is True


def test_empty_mode_means_live():
    assert WhapiChannel.from_payload(dict(whapi_fixture("partner_channel_create"), mode="")).mode == "live"


def test_second_timestamps_are_tolerated():
    # The spec's own examples use seconds (1640995200); Whapi's real answers use milliseconds.
    channel = WhapiChannel.from_payload(dict(whapi_fixture("partner_channel_create"), creationTS=1640995200))
    assert channel.creation_ts == datetime(2022, 1, 1, tzinfo=UTC)


def test_channel_ids_in_paths_are_quoted(mocked, partner):
    mocked.add("GET", f"{PARTNER}/channels/a%2Fb", json=whapi_fixture("partner_channel_create"))
    partner.get_channel("a/b")
    assert mocked.calls[0].request.path_url == "/channels/a%2Fb"


def test_empty_channel_id_is_rejected_before_any_request(mocked, partner):
    with pytest.raises(ValueError):
        partner.delete_channel("")
    assert len(mocked.calls) == 0


def test_update_channel_patches_name_and_project(mocked, partner):
    mocked.add("PATCH", f"{PARTNER}/channels/SHAZAM-3HDYQ", json=whapi_fixture("partner_success"))
    assert partner.update_channel("SHAZAM-3HDYQ", name="New name", project_id="kpSv3OFq9PkP1W1Ogv7p") is None
    assert sent_json(mocked.calls[0]) == {"name": "New name", "projectId": "kpSv3OFq9PkP1W1Ogv7p"}


def test_delete_channel_sends_delete(mocked, partner):
    mocked.add("DELETE", f"{PARTNER}/channels/SHAZAM-3HDYQ", json=whapi_fixture("partner_success"))
    partner.delete_channel("SHAZAM-3HDYQ")
    assert mocked.calls[0].request.method == "DELETE"


@pytest.mark.parametrize("action", ["start", "restart"])
def test_start_and_restart_post_without_a_body(mocked, partner, action):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/{action}", json=whapi_fixture("partner_success"))
    getattr(partner, f"{action}_channel")("SHAZAM-3HDYQ")
    assert mocked.calls[0].request.body is None


def test_stop_channel_sends_save_days_only_when_given(mocked, partner):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/stop", json=whapi_fixture("partner_success"))
    partner.stop_channel("SHAZAM-3HDYQ")
    partner.stop_channel("SHAZAM-3HDYQ", save_days=True)
    assert mocked.calls[0].request.body is None
    assert sent_json(mocked.calls[1]) == {"saveDays": True}


def test_extend_channel_sends_days_and_comment(mocked, partner):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/extend", json=whapi_fixture("partner_success"))
    partner.extend_channel("SHAZAM-3HDYQ", days=30, comment="Invoice 42")
    assert sent_json(mocked.calls[0]) == {"days": 30, "comment": "Invoice 42"}


@pytest.mark.parametrize("days", [0, -3, 1.5, True])
def test_extend_channel_rejects_bad_days_before_any_request(mocked, partner, days):
    with pytest.raises(ValueError):
        partner.extend_channel("SHAZAM-3HDYQ", days=days, comment="x")
    assert len(mocked.calls) == 0


def test_change_mode_patches_the_mode(mocked, partner):
    mocked.add("PATCH", f"{PARTNER}/channels/SHAZAM-3HDYQ/mode", json=whapi_fixture("partner_success"))
    partner.change_mode("SHAZAM-3HDYQ", "live")
    assert sent_json(mocked.calls[0]) == {"mode": "live"}


@pytest.mark.parametrize("mode", ["sandbox", "LIVE", ""])
def test_change_mode_rejects_an_unknown_mode_before_any_request(mocked, partner, mode):
    with pytest.raises(ValueError):
        partner.change_mode("SHAZAM-3HDYQ", mode)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("status", [200, 204])
def test_action_accepts_an_empty_answer(mocked, partner, status):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/restart", body="", status=status)
    assert partner.restart_channel("SHAZAM-3HDYQ") is None


def test_action_answering_success_false_is_an_error(mocked, partner):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/restart", json={"success": False})
    with pytest.raises(WhapiError) as caught:
        partner.restart_channel("SHAZAM-3HDYQ")
    assert caught.value.outcome_unknown is True


# ------------------------------------------------------------------------------------------------
# Gate API
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wakeup, sent", [(False, "false"), (True, "true")])
def test_health_sends_wakeup(mocked, gate, wakeup, sent):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("gate_health_qr"))
    gate.health(wakeup=wakeup)
    assert mocked.calls[0].request.params == {"wakeup": sent}


def test_health_sends_wakeup_false_by_default(mocked, gate):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("gate_health_qr"))
    gate.health()
    assert mocked.calls[0].request.params == {"wakeup": "false"}


@pytest.mark.parametrize(
    "name, code, text, user",
    [
        ("gate_health_init", 1, "INIT", (None, None)),
        ("gate_health_qr", 3, "QR", (None, None)),
        ("gate_health_auth", 4, "AUTH", ("61371989950", "Jonathan")),
    ],
)
def test_health_parses_each_status(mocked, gate, name, code, text, user):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture(name))
    health = gate.health()
    assert (health.status_code, health.status_text, (health.user_id, health.user_name)) == (code, text, user)
    assert health.start_at == 1713774883


def test_health_keeps_an_unknown_status_text(mocked, gate):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("gate_health_stop"))
    health = gate.health()
    assert (health.status_code, health.status_text) == (7, "STOP")


def test_health_without_status_is_unknown():
    assert Health.from_payload({"start_at": 1713774883, "uptime": 5}).status_text == "UNKNOWN"


def test_health_from_payload_reads_a_webhook_health_object():
    webhook = {
        "health": whapi_fixture("gate_health_qr"),
        "event": {"type": "channel", "event": "post"},
        "channel_id": "X",
    }
    health = Health.from_payload(webhook["health"])
    assert (health.start_at, health.uptime, health.status_text) == (1713774883, 78, "QR")
    assert health.raw["version"] == "1.8.3-74-gf7df472"


@pytest.mark.parametrize("missing", ["start_at", "uptime"])
def test_health_from_payload_raises_value_error_when_malformed(missing):
    payload = whapi_fixture("gate_health_qr")
    del payload[missing]
    with pytest.raises(ValueError):
        Health.from_payload(payload)


def test_malformed_health_answer_is_a_whapi_error(mocked, gate):
    mocked.add("GET", f"{GATE}/health", json={"status": {"code": 3, "text": "QR"}})
    with pytest.raises(WhapiError) as caught:
        gate.health()
    assert "start_at" in caught.value.message
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, True)


def test_get_settings_returns_the_settings(mocked, gate):
    mocked.add("GET", f"{GATE}/settings", json=whapi_fixture("gate_settings"))
    assert gate.get_settings() == whapi_fixture("gate_settings")


def test_patch_settings_sends_changes_and_returns_after_update(mocked, gate):
    mocked.add("PATCH", f"{GATE}/settings", json=whapi_fixture("gate_settings_patch"))
    changes = {"webhooks": whapi_fixture("gate_settings")["webhooks"], "callback_persist": True}
    assert gate.patch_settings(changes) == whapi_fixture("gate_settings")
    assert sent_json(mocked.calls[0]) == changes


def test_patch_settings_returns_the_whole_answer_without_after_update(mocked, gate):
    mocked.add("PATCH", f"{GATE}/settings", json=whapi_fixture("gate_settings"))
    assert gate.patch_settings({"callback_persist": True}) == whapi_fixture("gate_settings")


@pytest.mark.parametrize("name", ["gate_qr_plain", "gate_qr_data_uri"])
def test_login_qr_strips_any_data_prefix_and_decodes_png(mocked, gate, name):
    mocked.add("GET", f"{GATE}/users/login", json=whapi_fixture(name))
    qr = gate.login_qr()
    assert qr.base64 == whapi_fixture("gate_qr_plain")["base64"]
    assert qr.png.startswith(PNG_SIGNATURE)
    assert qr.data_uri == "data:image/png;base64," + qr.base64
    assert (qr.status, qr.expire) == ("OK", 20)


def test_login_qr_sends_the_size_only_when_given(mocked, gate):
    mocked.add("GET", f"{GATE}/users/login", json=whapi_fixture("gate_qr_plain"))
    gate.login_qr()
    gate.login_qr(size=300)
    assert mocked.calls[0].request.params == {}
    assert mocked.calls[1].request.params == {"size": "300"}


def test_login_qr_waiting_has_no_image(mocked, gate):
    mocked.add("GET", f"{GATE}/users/login", json=whapi_fixture("gate_qr_waiting"))
    qr = gate.login_qr()
    assert (qr.status, qr.base64, qr.png, qr.data_uri) == ("WAITING", None, None, None)


def test_qr_with_invalid_base64_has_no_png():
    assert QrCode.from_payload({"status": "OK", "base64": "not base64 at all!"}).png is None


def test_login_qr_when_already_authenticated_is_a_permanent_409(mocked, gate, sleeps):
    mocked.add("GET", f"{GATE}/users/login", json=whapi_fixture("error_409_authenticated"), status=409)
    with pytest.raises(WhapiError) as caught:
        gate.login_qr()
    assert (caught.value.status, caught.value.permanent, caught.value.code) == (409, True, 409)
    assert len(mocked.calls) == 1


def test_pairing_code_returns_the_code(mocked, gate):
    mocked.add("GET", f"{GATE}/users/login/61371989950", json=whapi_fixture("gate_login_code"))
    assert gate.pairing_code("61371989950") == "ABC-123"


def test_pairing_code_keeps_the_phone_out_of_errors_and_logs(mocked, gate, caplog):
    mocked.add("GET", f"{GATE}/users/login/61371989950", json=whapi_fixture("error_409_authenticated"), status=409)
    with caplog.at_level(logging.DEBUG, logger="channels_app.whapi"), pytest.raises(WhapiError) as caught:
        gate.pairing_code("61371989950")
    assert caught.value.path == "/users/login/{phone}"
    assert "61371989950" not in str(caught.value) + caplog.text


@pytest.mark.parametrize(
    "phone",
    ["+61371989950", "613 7198995", "123456", "1234567890123456", "", "phone12345", "6137198995\n", "٦١٣٧١٩٨٩٩٥٠"],
)
def test_pairing_code_rejects_a_bad_phone_before_any_request(mocked, gate, phone):
    with pytest.raises(ValueError):
        gate.pairing_code(phone)
    assert len(mocked.calls) == 0


def test_logout_posts(mocked, gate):
    mocked.add("POST", f"{GATE}/users/logout", json=whapi_fixture("partner_success"))
    assert gate.logout() is None
    assert mocked.calls[0].request.method == "POST"


def test_profile_returns_the_profile(mocked, gate):
    mocked.add("GET", f"{GATE}/users/profile", json=whapi_fixture("gate_profile"))
    assert gate.profile()["name"] == "Jonathan"


# ------------------------------------------------------------------------------------------------
# Error mapping (on a POST, which is never retried, so each case is one request)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, name, message, permanent, outcome_unknown",
    [
        (400, "error_400", "Invalid request body", True, False),
        (401, "error_401", "Unauthorized", True, False),
        (404, "error_404_channel", "Channel not found", True, False),
        (409, "error_409_authenticated", "Channel already authenticated", True, False),
        (422, "error_422_qr", "QR code generation failed", True, False),
        (429, "error_429_create", "Too many requests", False, False),
        (500, "error_500", "Internal server error", False, True),
        (503, "error_503_busy", "All servers are busy, try again later", False, True),
    ],
)
def test_error_status_mapping(mocked, partner, status, name, message, permanent, outcome_unknown):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/restart", json=whapi_fixture(name), status=status)
    with pytest.raises(WhapiError) as caught:
        partner.restart_channel("SHAZAM-3HDYQ")
    err = caught.value
    assert (err.status, err.code, err.message) == (status, status, message)
    assert (err.permanent, err.outcome_unknown) == (permanent, outcome_unknown)
    assert (err.method, err.path) == ("POST", "/channels/SHAZAM-3HDYQ/restart")


def test_non_json_502_gives_a_short_plain_description(mocked, partner):
    page = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    page += "<hr><center>nginx</center>" + " " * 500 + "x" * 500 + "</body></html>"
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/restart", body=page, status=502)
    with pytest.raises(WhapiError) as caught:
        partner.restart_channel("SHAZAM-3HDYQ")
    err = caught.value
    assert err.message.startswith("Bad Gateway: 502 Bad Gateway 502 Bad Gateway nginx")
    assert len(err.message) < 230
    assert (err.status, err.code, err.permanent, err.outcome_unknown) == (502, None, False, True)


def test_non_json_4xx_body_is_not_permanent(mocked, partner):
    mocked.add("POST", f"{PARTNER}/channels/SHAZAM-3HDYQ/restart", body="Not Found", status=404)
    with pytest.raises(WhapiError) as caught:
        partner.restart_channel("SHAZAM-3HDYQ")
    assert caught.value.message == "Not Found: Not Found"
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, False)


def test_2xx_non_json_body_is_outcome_unknown(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", body="<html>welcome</html>", status=200)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    err = caught.value
    assert err.message == "unexpected answer: answer is not JSON"
    assert (err.status, err.permanent, err.outcome_unknown) == (200, False, True)


def test_retry_after_as_http_date_is_read(mocked, partner, time_machine):
    time_machine.move_to(datetime(2024, 4, 8, 12, 0, 0, tzinfo=UTC), tick=False)
    headers = {"Retry-After": "Mon, 08 Apr 2024 12:01:00 GMT"}
    mocked.add("PUT", f"{PARTNER}/channels", json=whapi_fixture("error_429_create"), status=429, headers=headers)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert caught.value.retry_after == 60.0


def test_redirect_is_not_followed(mocked, partner):
    headers = {"Location": "https://elsewhere.test/channels"}
    mocked.add("PUT", f"{PARTNER}/channels", status=301, headers=headers)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert (caught.value.status, caught.value.permanent, caught.value.outcome_unknown) == (301, True, False)
    assert len(mocked.calls) == 1


def test_connect_timeout_is_not_outcome_unknown(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", body=requests.exceptions.ConnectTimeout())
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    err = caught.value
    assert (err.status, err.permanent, err.outcome_unknown) == (None, False, False)
    assert err.message == "no connection to manager.whapi.test within 5 s"


def test_read_timeout_is_outcome_unknown(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", body=requests.exceptions.ReadTimeout())
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    err = caught.value
    assert (err.status, err.permanent, err.outcome_unknown) == (None, False, True)
    assert str(err) == "Whapi PUT /channels failed: no answer within 5 s"


def test_connection_refused_is_not_outcome_unknown(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", body=refused())
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    err = caught.value
    assert (err.status, err.permanent, err.outcome_unknown) == (None, False, False)
    assert err.message == "could not connect to manager.whapi.test (connection refused)"


def test_connection_reset_after_sending_is_outcome_unknown(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/channels", body=reset())
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, True)


def test_answer_cut_mid_body_is_outcome_unknown(mocked, partner):
    cut = requests.exceptions.ChunkedEncodingError(urllib3.exceptions.ProtocolError("Response ended prematurely"))
    mocked.add("PUT", f"{PARTNER}/channels", body=cut)
    with pytest.raises(WhapiError) as caught:
        partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    assert (caught.value.permanent, caught.value.outcome_unknown) == (False, True)


def test_unserialisable_body_is_a_permanent_error_without_request(mocked, gate):
    with pytest.raises(WhapiError) as caught:
        gate.patch_settings({"proxy": object()})
    assert (caught.value.permanent, caught.value.outcome_unknown) == (True, False)
    assert len(mocked.calls) == 0


# ------------------------------------------------------------------------------------------------
# Retries: GET only, at most twice, short backoff
# ------------------------------------------------------------------------------------------------
def test_get_retry_is_bounded_to_three_attempts(mocked, gate, sleeps):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("error_503_busy"), status=503)
    with pytest.raises(WhapiError) as caught:
        gate.health()
    assert caught.value.status == 503
    assert len(mocked.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_get_retry_recovers_on_a_later_attempt(mocked, gate, sleeps):
    mocked.add("GET", f"{GATE}/health", body=requests.exceptions.ReadTimeout())
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("gate_health_auth"))
    assert gate.health().status_text == "AUTH"
    assert len(mocked.calls) == 2
    assert sleeps == [0.5]


def test_get_retries_connection_errors(mocked, partner, sleeps):
    mocked.add("GET", f"{PARTNER}/channels/SHAZAM-3HDYQ", body=refused())
    with pytest.raises(WhapiError):
        partner.get_channel("SHAZAM-3HDYQ")
    assert len(mocked.calls) == 3


def test_get_is_not_retried_on_a_permanent_error(mocked, partner, sleeps):
    mocked.add("GET", f"{PARTNER}/channels/SHAZAM-3HDYQ", json=whapi_fixture("error_404_channel"), status=404)
    with pytest.raises(WhapiError):
        partner.get_channel("SHAZAM-3HDYQ")
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_get_honours_a_short_retry_after(mocked, gate, sleeps):
    mocked.add(
        "GET", f"{GATE}/settings", json=whapi_fixture("error_429_create"), status=429, headers={"Retry-After": "3"}
    )
    mocked.add("GET", f"{GATE}/settings", json=whapi_fixture("gate_settings"))
    gate.get_settings()
    assert sleeps == [3.0]


def test_get_with_a_long_retry_after_raises_at_once(mocked, gate, sleeps):
    mocked.add(
        "GET", f"{GATE}/settings", json=whapi_fixture("error_429_create"), status=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(WhapiError) as caught:
        gate.get_settings()
    assert caught.value.retry_after == 30.0
    assert len(mocked.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "method, url, call",
    [
        ("PATCH", f"{GATE}/settings", lambda p, g: g.patch_settings({"callback_persist": True})),
        ("POST", f"{GATE}/users/logout", lambda p, g: g.logout()),
        ("DELETE", f"{PARTNER}/channels/SHAZAM-3HDYQ", lambda p, g: p.delete_channel("SHAZAM-3HDYQ")),
        (
            "POST",
            f"{PARTNER}/channels/SHAZAM-3HDYQ/extend",
            lambda p, g: p.extend_channel("SHAZAM-3HDYQ", days=1, comment=""),
        ),
        ("PUT", f"{PARTNER}/projects", lambda p, g: p.create_project("Clinics")),
    ],
)
def test_non_get_requests_are_never_retried(mocked, partner, gate, sleeps, method, url, call):
    mocked.add(method, url, body=requests.exceptions.ReadTimeout())
    with pytest.raises(WhapiError):
        call(partner, gate)
    assert len(mocked.calls) == 1
    assert sleeps == []


# ------------------------------------------------------------------------------------------------
# Secrets stay out of reprs, messages and logs
# ------------------------------------------------------------------------------------------------
def test_no_token_in_repr_or_str(mocked, partner, gate):
    channel_token = whapi_fixture("partner_channel_create")["token"]
    mocked.add("PUT", f"{PARTNER}/channels", json=whapi_fixture("partner_channel_create"))
    # A server that echoes the credential back in its error message.
    echo = {"error": {"code": 401, "message": f"Bearer {GATE_TOKEN} is not valid"}}
    mocked.add("GET", f"{GATE}/users/profile", json=echo, status=401)
    channel = partner.create_channel(name="Shop", project_id="kpSv3OFq9PkP1W1Ogv7p")
    with pytest.raises(WhapiError) as caught:
        gate.profile()
    texts = [repr(channel), str(channel), repr(partner), repr(gate), repr(caught.value), str(caught.value)]
    for text in texts:
        assert channel_token not in text
        assert GATE_TOKEN not in text
        assert PARTNER_TOKEN not in text


def test_log_line_has_method_path_status_and_milliseconds_but_no_token(mocked, gate, caplog):
    mocked.add("GET", f"{GATE}/health", json=whapi_fixture("gate_health_qr"))
    with caplog.at_level(logging.DEBUG, logger="channels_app.whapi"):
        gate.health()
    lines = [record.getMessage() for record in caplog.records if record.name == "channels_app.whapi"]
    assert len(lines) == 1
    assert lines[0].startswith("whapi GET /health -> 200 in ")
    assert lines[0].endswith(" ms")
    assert GATE_TOKEN not in lines[0]
    assert "wakeup" not in lines[0]


def test_whapi_error_survives_pickling():
    err = WhapiError("Too many requests", method="PUT", path="/channels", status=429, retry_after=30.0)
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert (copy.status, copy.retry_after, copy.permanent) == (429, 30.0, False)


def test_qr_png_decodes_to_the_fixture_bytes():
    raw = whapi_fixture("gate_qr_plain")["base64"]
    assert QrCode.from_payload({"status": "ok", "base64": raw}).png == base64.b64decode(raw)
