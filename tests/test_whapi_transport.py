"""Tests of channels_app.whapi.transport, the transport both clients share: what every request
carries, how answers and failures become WhapiError, GET-only retries, no secrets in reprs or logs.
HTTP is mocked with `responses` only; fixtures and helpers are in tests/whapi_fixtures.py and
tests/whapi_support.py."""

import logging
import pickle
from datetime import UTC, datetime

import pytest
import requests
import urllib3.exceptions

from channels_app.whapi import GateClient, WhapiError
from channels_app.whapi.transport import reusable_session
from tests.conftest import whapi_fixture
from tests.whapi_support import GATE, GATE_TOKEN, PARTNER, PARTNER_TOKEN, refused, reset

pytest_plugins = ["tests.whapi_fixtures"]


# ------------------------------------------------------------------------------------------------
# What every request carries
# ------------------------------------------------------------------------------------------------
def test_every_request_sends_bearer_token_and_accept_json(mocked, partner):
    mocked.add("PUT", f"{PARTNER}/projects", json=whapi_fixture("partner_project"))
    partner.create_project("Clinics")
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {PARTNER_TOKEN}"
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"


def test_a_reusable_session_sends_each_channel_its_own_token_and_no_cookie_from_another(mocked):
    mocked.add(
        "GET",
        f"{GATE}/health",
        json={"start_at": 1, "uptime": 5, "status": {"text": "AUTH"}},
        headers={"Set-Cookie": "route=node-7; Path=/"},
    )
    with reusable_session() as session:
        GateClient(GATE, "token-of-channel-a", session=session).health()
        GateClient(GATE, "token-of-channel-b", session=session).health()
    first, second = (call.request.headers for call in mocked.calls)
    assert (first["Authorization"], second["Authorization"]) == (
        "Bearer token-of-channel-a",
        "Bearer token-of-channel-b",
    )
    assert "Cookie" not in second


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


# ------------------------------------------------------------------------------------------------
# WhapiError (channels_app.whapi.errors)
# ------------------------------------------------------------------------------------------------
def test_whapi_error_survives_pickling():
    err = WhapiError("Too many requests", method="PUT", path="/channels", status=429, retry_after=30.0)
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert (copy.status, copy.retry_after, copy.permanent) == (429, 30.0, False)
