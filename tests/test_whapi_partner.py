"""Tests of channels_app.whapi.partner, the partner API client. HTTP is mocked with `responses`
only; fixtures and helpers are in tests/whapi_fixtures.py and tests/whapi_support.py."""

import json
from datetime import UTC, datetime

import pytest
import requests
from responses import matchers

from channels_app.whapi import WhapiError, partner_client
from tests.conftest import whapi_fixture
from tests.whapi_support import PARTNER, PARTNER_TOKEN, sent_json

pytest_plugins = ["tests.whapi_fixtures"]


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def test_partner_client_factory_reads_settings(mocked):
    mocked.add("GET", f"{PARTNER}/projects", json={"projects": [], "total": 0})
    client = partner_client()
    client.list_projects()
    assert client.base_url == PARTNER
    assert client.timeout == 5.0
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {PARTNER_TOKEN}"


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
