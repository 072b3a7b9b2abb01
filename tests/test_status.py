"""A status you can trust: health checks (asked by the checks sweep), with Whapi mocked at the HTTP seam."""

from datetime import timedelta

import requests
import responses
from django.utils import timezone

from channels_app import checks, tasks
from channels_app.models import Channel
from tests.conftest import GATE_URL, make_channel

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


def test_the_poll_confirms_status_and_connected_number(channel, whapi):
    Channel.objects.filter(pk=channel.pk).update(health_check_due_at=timezone.now())
    whapi.add(
        responses.GET,
        f"{GATE}/health",
        json={
            "start_at": 1,
            "uptime": 5,
            "status": {"code": 4, "text": "AUTH"},
            "user": {"id": "14155550123@s.whatsapp.net"},
        },
    )
    assert checks.checks_sweep(seconds=0, concurrency=1) == 1
    channel.refresh_from_db()
    assert (channel.state, channel.connected_number) == ("connected", "14155550123")
    assert channel.timeline.get().source == "poll"
    assert "wakeup=false" in whapi.calls[0].request.url
    # Asked again once it has been quiet for HEALTH_CHECK_EVERY (15 minutes).
    assert channel.health_check_due_at - channel.last_confirmed_at == timedelta(minutes=15)


def test_an_unreachable_gate_marks_the_status_stale_and_keeps_it(channel, whapi):
    channel.health_status, channel.last_confirmed_at = "QR", timezone.now() - timedelta(hours=1)
    channel.save()
    whapi.add(responses.GET, f"{GATE}/health", body=requests.exceptions.ConnectionError("refused"))
    tasks.channel_health_check(channel.pk)
    channel.refresh_from_db()
    assert channel.status_stale is True
    assert channel.health_status == "QR"
    assert "health check failed" in channel.last_error
    # Asked again after CHECK_RETRY, not at the next quiet interval.
    assert timezone.now() < channel.health_check_due_at <= timezone.now() + timedelta(minutes=2)


def test_the_poll_skips_recently_confirmed_channels(project, whapi):
    now = timezone.now()
    make_channel(project, last_confirmed_at=now, health_check_due_at=now + timedelta(minutes=15))
    assert checks.checks_sweep(seconds=0, concurrency=1) == 0
    assert len(whapi.calls) == 0


def test_a_failed_health_check_keeps_the_configuration_failure_reason(channel, whapi):
    Channel.objects.filter(pk=channel.pk).update(
        state="error", error_source="configure", last_error="Whapi did not keep the webhook settings"
    )
    whapi.add(responses.GET, f"{GATE}/health", body=requests.exceptions.ConnectionError("refused"))
    tasks.channel_health_check(channel.pk)
    channel.refresh_from_db()
    assert channel.status_stale is True
    assert channel.last_error == "Whapi did not keep the webhook settings"


def test_a_configuration_that_gives_up_while_the_gate_is_asked_keeps_its_reason(channel, whapi):
    """The check read the channel without an error; while its gate does not answer, the configuration
    gives up and leaves its reason. The failed check marks the status stale and keeps that reason."""
    from channels_app.status import channel_give_up

    def configuration_gives_up_meanwhile(request):
        channel_give_up(
            Channel.objects.get(pk=channel.pk), "Whapi did not keep the webhook settings", source="configure"
        )
        raise requests.exceptions.ConnectionError("refused")

    whapi.add_callback(responses.GET, f"{GATE}/health", callback=configuration_gives_up_meanwhile)
    tasks.channel_health_check(channel.pk)
    channel.refresh_from_db()
    assert (channel.state, channel.error_source) == ("error", "configure")
    assert channel.last_error == "Whapi did not keep the webhook settings"
    assert channel.status_stale is True
