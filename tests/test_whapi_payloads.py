"""Tests of channels_app.whapi.payloads: the payload types built straight from Whapi objects (answers
and webhook bodies), without HTTP."""

import base64
from datetime import UTC, datetime

import pytest

from channels_app.whapi import Health, QrCode, WhapiChannel
from tests.conftest import whapi_fixture


# ------------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------------
def test_empty_mode_means_live():
    assert WhapiChannel.from_payload(dict(whapi_fixture("partner_channel_create"), mode="")).mode == "live"


def test_second_timestamps_are_tolerated():
    # The spec's own examples use seconds (1640995200); Whapi's real answers use milliseconds.
    channel = WhapiChannel.from_payload(dict(whapi_fixture("partner_channel_create"), creationTS=1640995200))
    assert channel.creation_ts == datetime(2022, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# Health
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# QR codes
# ------------------------------------------------------------------------------------------------
def test_qr_with_invalid_base64_has_no_png():
    assert QrCode.from_payload({"status": "OK", "base64": "not base64 at all!"}).png is None


def test_qr_png_decodes_to_the_fixture_bytes():
    raw = whapi_fixture("gate_qr_plain")["base64"]
    assert QrCode.from_payload({"status": "ok", "base64": raw}).png == base64.b64decode(raw)
