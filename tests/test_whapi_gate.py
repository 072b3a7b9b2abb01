"""Tests of channels_app.whapi.gate, one channel's gate API client. HTTP is mocked with `responses`
only; fixtures and helpers are in tests/whapi_fixtures.py and tests/whapi_support.py."""

import logging

import pytest

from channels_app.whapi import WhapiError, gate_client
from tests.conftest import whapi_fixture
from tests.whapi_support import GATE, GATE_TOKEN, PNG_SIGNATURE, sent_json

pytest_plugins = ["tests.whapi_fixtures"]


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def test_gate_client_factory_reads_timeout_from_settings():
    assert gate_client(f"{GATE}/", GATE_TOKEN).timeout == 5.0


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
