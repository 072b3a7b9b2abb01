"""Configuring a channel's webhooks after init, with Whapi mocked at the HTTP seam: the complete
settings, read back and verified; bounded retries; drift repaired."""

import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from django_q.models import Schedule

from channels_app import checks, configure, status
from channels_app.models import Channel
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


def settings_answer(request_body: dict) -> dict:
    return {"before_update": {}, "after_update": request_body, "changes": list(request_body)}


@pytest.fixture
def initializing(project):
    return make_channel(
        project,
        state=Channel.State.INITIALIZING,
        init_until=timezone.now() - timedelta(seconds=1),
        webhooks_verified_at=None,
        customer_webhook_url="https://customer.example/hook",
    )


def gate_that_keeps(whapi, *, mangle=None, health_text="QR"):
    """A gate whose GET /settings returns what was PATCHed (optionally changed by `mangle`)."""
    stored = {}

    def patch(request):
        stored.update(json.loads(request.body))
        return 200, {}, json.dumps(settings_answer(stored))

    def get(request):
        actual = json.loads(json.dumps(stored))
        if mangle:
            mangle(actual)
        return 200, {}, json.dumps(actual)

    whapi.add_callback(responses.PATCH, f"{GATE}/settings", callback=patch)
    whapi.add_callback(responses.GET, f"{GATE}/settings", callback=get)
    whapi.add(
        responses.GET,
        f"{GATE}/health",
        json={"start_at": 1713774883, "uptime": 100, "status": {"code": 3, "text": health_text}},
    )
    return stored


def test_nothing_touches_the_gate_before_the_init_delay(project, whapi):
    channel = make_channel(project, state=Channel.State.INITIALIZING, init_until=timezone.now() + timedelta(seconds=60))
    assert configure.channel_configure(channel.pk) is False
    assert status.channel_health_check(channel.pk) is None
    assert len(whapi.calls) == 0
    assert Schedule.objects.get(name=f"channel_configure-{channel.pk}").next_run == channel.init_until


def test_configure_sends_the_complete_settings_and_verifies_them(initializing, whapi):
    gate_that_keeps(whapi)
    assert configure.channel_configure(initializing.pk) is True

    patch = next(call for call in whapi.calls if call.request.method == "PATCH")
    assert patch.request.headers["Authorization"] == f"Bearer {CHANNEL_TOKEN}"
    sent = json.loads(patch.request.body)
    ours, customers = sent["webhooks"]
    assert ours["url"] == "https://portal.test/whapi/webhook"
    assert ours["mode"] == "body"
    assert {(e["type"], e["method"]) for e in ours["events"]} == {
        ("channel", "post"),
        ("channel", "patch"),
        ("users", "post"),
        ("users", "delete"),
    }
    assert ours["headers"] == {"X-Portal-Secret": initializing.webhook_secret}
    assert customers["url"] == "https://customer.example/hook"
    assert sent["callback_persist"] is True
    assert 3000 <= sent["callback_backoff_delay_ms"] <= 15000

    channel = Channel.objects.get(pk=initializing.pk)
    assert channel.state == "waiting_scan"
    assert channel.webhooks_applied_at and channel.webhooks_verified_at
    assert channel.health_status == "QR"
    assert initializing.webhook_secret not in json.dumps(channel.webhooks_readback)
    assert [e.to_state for e in channel.timeline.order_by("at", "id")] == ["configuring", "waiting_scan"]


def test_settings_read_back_different_are_retried_with_backoff(initializing, whapi):
    gate_that_keeps(whapi, mangle=lambda actual: actual.update(webhooks=[]))
    assert configure.channel_configure(initializing.pk) is False
    channel = Channel.objects.get(pk=initializing.pk)
    assert channel.state == "configuring"
    assert "is missing" in channel.last_error
    retry = Schedule.objects.get(name=f"channel_configure-{channel.pk}")
    assert retry.next_run > timezone.now()
    assert channel.configure_attempts == 1


def test_configure_gives_up_after_a_bounded_number_of_attempts(initializing, whapi):
    whapi.add(responses.PATCH, f"{GATE}/settings", status=503, json={"error": {"code": 503, "message": "Initializing"}})
    for _ in range(configure.MAX_CONFIGURE_ATTEMPTS):
        configure.channel_configure(initializing.pk)
    channel = Channel.objects.get(pk=initializing.pk)
    assert channel.state == "error"
    assert "Initializing" in channel.last_error
    assert channel.error_source == "configure"
    assert len(whapi.calls) == configure.MAX_CONFIGURE_ATTEMPTS


def test_a_rejected_token_stops_configuring_at_once(initializing, whapi):
    whapi.add(responses.PATCH, f"{GATE}/settings", status=401, json={"error": {"code": 401, "message": "Unauthorized"}})
    configure.channel_configure(initializing.pk)
    assert Channel.objects.get(pk=initializing.pk).state == "error"


def test_configuring_twice_leaves_the_same_state(initializing, whapi):
    gate_that_keeps(whapi)
    configure.channel_configure(initializing.pk)
    configure.channel_configure(initializing.pk)
    channel = Channel.objects.get(pk=initializing.pk)
    assert channel.state == "waiting_scan"
    assert channel.timeline.count() == 2


def test_drift_is_detected_and_repaired(channel, whapi):
    stored = gate_that_keeps(whapi)
    stored.update(configure.desired_settings(channel))
    stored["webhooks"] = [{"url": "https://someone.else/hook", "events": [{"type": "messages", "method": "post"}]}]
    assert configure.channel_settings_verify(channel.pk) is False
    assert [hook["url"] for hook in stored["webhooks"]] == ["https://portal.test/whapi/webhook"]
    assert "drifted" in channel.timeline.get().detail
    assert configure.channel_settings_verify(channel.pk) is True


def test_the_drift_check_visits_channels_whose_read_back_is_due(project, whapi):
    now = timezone.now()
    old = make_channel(
        project, webhooks_verified_at=now - timedelta(hours=7), settings_check_due_at=now - timedelta(hours=1)
    )
    make_channel(project, whapi_id="SHAZAM-3HDYQ", name="fresh", settings_check_due_at=now + timedelta(hours=5))
    stored = gate_that_keeps(whapi)
    stored.update(configure.desired_settings(old))
    assert checks.checks_sweep(seconds=0, concurrency=1) == 1
    old.refresh_from_db()
    # Read back again SETTINGS_CHECK_EVERY (6 hours) after this verification.
    assert old.settings_check_due_at - old.webhooks_verified_at == timedelta(hours=6)
