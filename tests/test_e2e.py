"""End to end over real sockets: the portal (live server) against the built-in Whapi sandbox.

The sandbox creates channels, holds them in INIT/LAUNCH, serves the gate API and delivers webhooks
to the live portal. The django-q2 worker is played by `Worker`, which runs the tasks the code
enqueued and the one-off schedules that came due, in this process.
"""

import threading
from datetime import timedelta

import png
import pytest
import requests

from channels_app import budget, pipeline, status
from channels_app.models import Channel, CreateAttempt
from channels_app.whapi import gate_client
from tests.portal_fixtures import INIT_DELAY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def run_at_once(count: int, work) -> list:
    """Run work(0..count-1) in threads released together; returns their results."""
    barrier = threading.Barrier(count)
    results = []

    def run(index: int) -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(work(index))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def control(sandbox, verb: str, route: str, **body):
    response = requests.request(verb, f"{sandbox.url}/_sandbox{route}", json=body or None, timeout=5)
    response.raise_for_status()
    return response.json() if response.content else None


def ledger(channel: Channel) -> list:
    return list(channel.webhook_events.order_by("id").values_list("event_type", "event_method", "outcome", "detail"))


def reload(channel: Channel) -> Channel:
    return Channel.objects.get(pk=channel.pk)


def test_create_wait_configure_scan_logout_and_scan_again(portal, worker):
    sandbox, project = portal
    channel = pipeline.channel_queue(project=project, name="Shop bot", source="customer")[0]

    worker.run_until(lambda: reload(channel).state == "initializing", what="creation")
    channel = reload(channel)
    worker.run_until(lambda: reload(channel).state == "waiting_scan", what="configuration after init")
    channel = reload(channel)

    # Nothing touched the gate before the init delay ran out.
    remote = control(sandbox, "GET", f"/channels/{channel.whapi_id}")
    created = channel.whapi_created_at.timestamp()
    gate_calls = remote["gate_calls"]
    assert gate_calls, "the portal never called the gate"
    assert min(call["at"] for call in gate_calls) >= created + INIT_DELAY - 0.05
    # The webhook settings were applied and verified by reading them back.
    assert channel.webhooks_verified_at is not None
    hooks = remote["settings"]["webhooks"]
    assert [hook["url"] for hook in hooks] == [f"{settings_url(portal)}/whapi/webhook"]
    assert channel.health_status == "QR"

    # The QR is a real PNG.
    qr = gate_client(channel.api_url, channel.token).login_qr()
    assert png.Reader(bytes=qr.png).read()[0] > 20

    control(sandbox, "POST", f"/channels/{channel.whapi_id}/scan", phone="14155550123", name="Alice")
    worker.run_until(lambda: reload(channel).state == "connected", what="connect webhook")
    assert reload(channel).connected_number == "14155550123"

    control(sandbox, "POST", f"/channels/{channel.whapi_id}/logout")
    worker.run_until(lambda: reload(channel).state == "disconnected", what="logout webhook")
    assert reload(channel).connected_number == ""

    control(sandbox, "POST", f"/channels/{channel.whapi_id}/scan", phone="14155550123", name="Alice")
    worker.run_until(lambda: reload(channel).state == "connected", what="second connect")
    channel = reload(channel)
    assert channel.connected_number == "14155550123"
    states = [event.to_state for event in channel.timeline.order_by("at", "id")]
    assert states == [
        "queued",
        "creating",
        "initializing",
        "configuring",
        "waiting_scan",
        "connected",
        "disconnected",
        "connected",
    ]
    assert channel.webhook_events.filter(event_type="users", outcome="applied").count() == 3


def settings_url(portal) -> str:
    from django.conf import settings

    return settings.PORTAL_BASE_URL


def test_duplicate_deliveries_change_nothing(portal, worker):
    sandbox, project = portal
    channel = pipeline.channel_queue(project=project, name="Shop bot")[0]
    worker.run_until(lambda: reload(channel).state == "waiting_scan", what="configuration")
    channel = reload(channel)

    control(sandbox, "POST", "/faults", kind="webhook_duplicate", count=10)
    control(sandbox, "POST", f"/channels/{channel.whapi_id}/scan", phone="14155550123", name="Alice")
    worker.run_until(lambda: reload(channel).state == "connected", what="connect")
    worker.run_until(lambda: channel.webhook_events.filter(outcome="duplicate").exists(), what="the duplicate delivery")
    assert reload(channel).timeline.filter(to_state="connected").count() == 1


def test_reordered_deliveries_end_in_whapis_state(portal, worker):
    sandbox, project = portal
    channel = pipeline.channel_queue(project=project, name="Shop bot")[0]
    worker.run_until(lambda: reload(channel).state == "waiting_scan", what="configuration")
    channel = reload(channel)

    # Connect and log out at once; the four callbacks (users.post, health AUTH, users.delete,
    # health QR) arrive in reverse order, so the stale "connected" ones come last.
    control(sandbox, "POST", "/faults", kind="webhook_reorder", count=4)
    control(sandbox, "POST", f"/channels/{channel.whapi_id}/scan", phone="14155550123", name="Alice")
    control(sandbox, "POST", f"/channels/{channel.whapi_id}/logout")
    worker.run_until(lambda: channel.webhook_events.count() >= 4, what="the reordered deliveries")
    worker.run_until(
        lambda: reload(channel).state == "disconnected" and not worker.enqueued,
        what=f"the follow-up health check {ledger(channel)}",
    )
    channel = reload(channel)
    assert (channel.connected_number, channel.health_status) == ("", "QR")


def test_a_lost_create_answer_still_yields_one_channel(portal, worker):
    sandbox, project = portal
    control(sandbox, "POST", "/faults", kind="lost_response", method="PUT", path="/channels", count=1)
    channel = pipeline.channel_queue(project=project, name="Shop bot")[0]
    worker.run_until(lambda: reload(channel).state == "initializing", what="adoption after the lost answer")
    listed = requests.get(
        f"{sandbox.url}/channels/list", headers={"Authorization": f"Bearer {sandbox.config.partner_token}"}, timeout=5
    ).json()["channels"]
    assert [c["id"] for c in listed] == [reload(channel).whapi_id]


def test_the_gate_failing_during_configure_is_retried(portal, worker, monkeypatch):
    sandbox, project = portal
    monkeypatch.setattr(status, "RETRY_DELAYS", (0.2, 0.2, 0.2, 0.2, 0.2, 0.2))
    control(sandbox, "POST", "/faults", kind="status", method="PATCH", path="/gate/settings", status=500, count=2)
    channel = pipeline.channel_queue(project=project, name="Shop bot")[0]
    worker.run_until(lambda: reload(channel).state == "waiting_scan", what="configuration despite 500s")
    channel = reload(channel)
    assert channel.configure_attempts == 0
    assert channel.last_error == ""


def test_25_requests_with_a_budget_of_18(portal, worker, settings):
    """25 requests at once: 18 attempts in the first window, no 429, all 25 created in order."""
    sandbox, project = portal
    window = 10.0  # the first 18 fit well inside it on a busy machine, so the counts below are exact
    settings.WHAPI_CREATE_BUDGET, settings.WHAPI_CREATE_WINDOW = 18, window
    control(sandbox, "POST", "/config", create_limit=20, create_window=window)

    requested = run_at_once(25, lambda index: pipeline.channel_queue(project=project, name=f"bulk {index:02d}")[0].pk)
    assert len(requested) == 25

    # Two pumps race, as two workers would.
    pumps = [threading.Thread(target=pump_and_close) for _ in range(2)]
    for pump in pumps:
        pump.start()
    for pump in pumps:
        pump.join()
    assert CreateAttempt.objects.count() == 18
    assert budget.status().queued == 7

    worker.run_until(
        lambda: not Channel.objects.filter(state__in=("queued", "creating")).exists(),
        timeout=window * 3,
        what="the second window",
    )
    attempts = list(CreateAttempt.objects.order_by("at", "id"))
    assert len(attempts) == 25
    assert {attempt.outcome for attempt in attempts} == {"created"}  # not one 429
    first = attempts[0].at
    assert sum(1 for a in attempts if a.at < first + timedelta(seconds=window)) == 18
    queue_order = list(Channel.objects.order_by("requested_at", "id").values_list("pk", flat=True))
    assert [attempt.channel_id for attempt in attempts] == queue_order
    whapi_order = sorted(
        requests.get(
            f"{sandbox.url}/channels/list",
            headers={"Authorization": f"Bearer {sandbox.config.partner_token}"},
            timeout=5,
        ).json()["channels"],
        key=lambda c: (c["creationTS"], c["id"]),
    )
    assert len(whapi_order) == 25
    by_whapi_id = dict(Channel.objects.values_list("whapi_id", "pk"))
    assert [by_whapi_id[c["id"]] for c in whapi_order] == queue_order


def pump_and_close() -> None:
    from django.db import connection

    try:
        pipeline.create_queue_pump()
    finally:
        connection.close()


def test_requests_racing_for_the_last_quota_slots_never_exceed_the_quota(portal):
    _, project = portal
    customer = project.customer
    customer.channel_quota = 2
    customer.save()

    def ask(index: int) -> str:
        try:
            pipeline.channel_queue(project=project, name=f"racer {index}")[0]
        except pipeline.RequestRefused:
            return "refused"
        return "queued"

    outcomes = run_at_once(6, ask)
    assert sorted(outcomes) == ["queued"] * 2 + ["refused"] * 4
    assert Channel.objects.filter(project__customer=customer).count() == 2
