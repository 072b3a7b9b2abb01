"""The checks sweep: every due health check and settings read-back made, once, by however many sweeps."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
from django.db import connection
from django.utils import timezone

from channels_app import checks, configure, status, tasks
from channels_app.models import Channel
from tests.conftest import GATE_URL, make_channel

GATE = GATE_URL.rstrip("/")
HEALTH_AUTH = {"start_at": 1, "uptime": 5, "status": {"code": 4, "text": "AUTH"}, "user": {"id": "14155550123"}}


def sweep() -> int:
    """Sweeps of one round each, in this thread, until one finds nothing due; returns the checks made."""
    total = 0
    while made := checks.checks_sweep(seconds=0, concurrency=1):
        total += made
    return total


def fleet(project, count: int, **fields) -> list[Channel]:
    return [make_channel(project, whapi_id=f"FLEET-{n:05d}", name=f"bot {n}", **fields) for n in range(count)]


def test_due_channels_are_asked_oldest_first_and_the_rest_wait(project, whapi, monkeypatch):
    monkeypatch.setattr(checks, "CLAIM_BATCH", 2)
    now = timezone.now()
    late, later, not_yet = (
        make_channel(project, whapi_id="LATE", health_check_due_at=now - timedelta(minutes=9)),
        make_channel(project, whapi_id="LATER", health_check_due_at=now - timedelta(minutes=1)),
        make_channel(project, whapi_id="NOT-YET", health_check_due_at=now + timedelta(minutes=5)),
    )
    assert checks.checks_claim() == [("health", late.pk), ("health", later.pk)]
    # Claimed: not handed out again until the claim runs out (CHECK_RETRY), should the check never answer.
    assert checks.checks_claim() == []
    not_yet.refresh_from_db()
    assert not_yet.health_check_due_at > now


def test_a_sweep_confirms_every_due_channel_and_plans_the_next_check(project, whapi):
    channels = fleet(project, 6, health_check_due_at=timezone.now() - timedelta(seconds=1))
    whapi.add(responses.GET, f"{GATE}/health", json=HEALTH_AUTH)
    assert sweep() == 6
    assert len(whapi.calls) == 6
    for channel in channels:
        channel.refresh_from_db()
        assert channel.state == "connected"
        assert channel.health_check_due_at == channel.last_confirmed_at + timedelta(minutes=15)
    assert sweep() == 0


class CountingGate(ThreadingHTTPServer):
    """A gate on a real socket that answers every /health with AUTH, keeps connections alive and
    counts the connections it accepted."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0) -> None:
        self.connections = 0
        self.in_flight = self.most_in_flight = 0
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(handler) -> None:
                with lock:
                    self.in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                time.sleep(delay)  # a remote gate's latency
                with lock:
                    self.in_flight -= 1
                body = json.dumps(HEALTH_AUTH).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def process_request(self, request, client_address) -> None:
        self.connections += 1
        super().process_request(request, client_address)


def test_a_sweep_loop_asks_one_gate_host_over_one_connection(project):
    gate = CountingGate()
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    try:
        api_url = f"http://127.0.0.1:{gate.server_address[1]}/"
        channels = fleet(project, 3, api_url=api_url, health_check_due_at=timezone.now() - timedelta(seconds=1))
        assert sweep() == 3
    finally:
        gate.shutdown()
        gate.server_close()
    assert all(Channel.objects.get(pk=channel.pk).state == "connected" for channel in channels)
    # One TCP (and, with Whapi's HTTPS gate, TLS) handshake for the loop, not one per check.
    assert gate.connections == 1


@pytest.mark.django_db(transaction=True)
def test_a_loop_asks_its_claimed_gates_several_at_once_over_a_connection_each(project):
    """A remote gate answers in its own time: a loop waits for ASKS_PER_LOOP answers at once, each of
    its lanes on one kept connection, and writes all the answers."""
    gate = CountingGate(delay=1.0)  # long enough for every lane to be asking at once on a busy machine
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    try:
        api_url = f"http://127.0.0.1:{gate.server_address[1]}/"
        channels = fleet(project, 8, api_url=api_url, health_check_due_at=timezone.now() - timedelta(seconds=1))
        assert checks.checks_sweep(seconds=0, concurrency=checks.ASKS_PER_LOOP) == 8
    finally:
        gate.shutdown()
        gate.server_close()
        connection.close()
    assert all(Channel.objects.get(pk=channel.pk).state == "connected" for channel in channels)
    assert gate.most_in_flight == checks.ASKS_PER_LOOP
    assert gate.connections == checks.ASKS_PER_LOOP


def test_a_channel_not_in_whapi_is_dropped_from_the_sweep(project, whapi):
    gone = make_channel(
        project, state="deleted", health_check_due_at=timezone.now(), settings_check_due_at=timezone.now()
    )
    assert sweep() == 2
    assert len(whapi.calls) == 0
    gone.refresh_from_db()
    assert (gone.health_check_due_at, gone.settings_check_due_at) == (None, None)
    assert sweep() == 0


def test_a_channel_still_starting_up_is_asked_when_its_init_delay_ends(project, whapi):
    init_until = timezone.now() + timedelta(seconds=40)
    channel = make_channel(project, state="initializing", init_until=init_until, health_check_due_at=timezone.now())
    assert sweep() == 1
    assert len(whapi.calls) == 0
    channel.refresh_from_db()
    assert channel.health_check_due_at == init_until


def test_one_failing_check_does_not_stop_the_others(project, whapi, monkeypatch):
    broken, fine = fleet(project, 2, health_check_due_at=timezone.now())
    broken.token = "a-token-whose-call-breaks"
    broken.save(update_fields=["token"])
    real = status.gate_client

    def gate_client(api_url, token, **kwargs):
        if token == broken.token:
            raise RuntimeError("bug")
        return real(api_url, token, **kwargs)

    monkeypatch.setattr(status, "gate_client", gate_client)
    whapi.add(responses.GET, f"{GATE}/health", json=HEALTH_AUTH)
    assert sweep() == 2
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert fine.state == "connected"
    # The broken one is tried again when its claim runs out (CHECK_RETRY), not lost.
    assert timezone.now() < broken.health_check_due_at <= timezone.now() + timedelta(minutes=2)


def test_one_answer_that_cannot_be_written_does_not_cost_the_others_theirs(project, whapi, monkeypatch):
    """The answers of a loop's claim are written in one transaction; when one write fails, the others
    are written one by one, and only that channel waits for its claim to run out."""
    broken, fine, other = fleet(project, 3, state="disconnected", health_check_due_at=timezone.now())
    real = status.change_for_health

    def decide(channel, health, *, source):
        if channel.pk == broken.pk:
            raise RuntimeError("bug")
        return real(channel, health, source=source)

    monkeypatch.setattr(status, "change_for_health", decide)
    whapi.add(responses.GET, f"{GATE}/health", json=HEALTH_AUTH)
    assert sweep() == 3
    assert Channel.objects.get(pk=fine.pk).state == "connected"
    assert Channel.objects.get(pk=other.pk).state == "connected"
    broken.refresh_from_db()
    assert broken.state == "disconnected"
    assert timezone.now() < broken.health_check_due_at <= timezone.now() + timedelta(minutes=2)


def test_one_read_back_that_cannot_be_written_does_not_cost_the_others_theirs(project, whapi, monkeypatch):
    """A claim's read-backs: clearing the next read-back of a channel no longer live fails for one
    channel; the others' read-backs are still made and recorded."""
    now = timezone.now()
    stopped = make_channel(project, whapi_id="STOPPED", state="stopped", settings_check_due_at=now)
    live = make_channel(project, whapi_id="LIVE", settings_check_due_at=now)
    real = configure.channel_update

    def update(channel, fields, **kwargs):
        if channel.pk == stopped.pk:
            raise RuntimeError("bug")
        return real(channel, fields, **kwargs)

    monkeypatch.setattr(configure, "channel_update", update)
    whapi.add(responses.GET, f"{GATE}/settings", status=500)
    assert configure.channel_settings_verify_many([stopped.pk, live.pk]) == {stopped.pk: False, live.pk: False}
    live.refresh_from_db()
    assert "Reading the webhook settings failed" in live.last_error
    assert live.settings_check_due_at > now
    with pytest.raises(RuntimeError):  # alone in its batch, it fails as it is
        configure.channel_settings_verify_many([stopped.pk])


def test_a_read_back_that_fails_is_tried_again_later(project, whapi):
    channel = make_channel(project, settings_check_due_at=timezone.now())
    whapi.add(responses.GET, f"{GATE}/settings", status=500)
    assert sweep() == 1
    channel.refresh_from_db()
    assert "Reading the webhook settings failed" in channel.last_error
    assert channel.settings_check_due_at - timezone.now() == pytest.approx(
        configure.SETTINGS_RETRY, abs=timedelta(seconds=5)
    )


def test_staff_see_how_late_the_oldest_check_is(project):
    now = timezone.now()
    make_channel(project, whapi_id="A", health_check_due_at=now - timedelta(minutes=7))
    make_channel(project, whapi_id="B", health_check_due_at=now - timedelta(minutes=2))
    make_channel(project, whapi_id="C", health_check_due_at=now + timedelta(minutes=2))
    make_channel(project, whapi_id="D", settings_check_due_at=now + timedelta(hours=2))
    coverage = checks.checks_coverage(now)
    assert (coverage.health_due, coverage.health_overdue) == (2, timedelta(minutes=7))
    assert (coverage.settings_due, coverage.settings_overdue) == (0, None)


@pytest.mark.django_db(transaction=True)
def test_sweeps_running_at_once_ask_each_channel_once(project, whapi):
    """Two sweeps of several threads each (as on two worker clusters) share the due channels."""
    fleet(project, 40, health_check_due_at=timezone.now() - timedelta(seconds=1))
    asked: list[str] = []
    lock = threading.Lock()

    def health(request):
        with lock:
            asked.append(request.headers["Authorization"])
        return 200, {}, '{"start_at": 1, "uptime": 5, "status": {"code": 4, "text": "AUTH"}}'

    whapi.add_callback(responses.GET, f"{GATE}/health", callback=health)
    done = []

    def run():
        try:
            # Three loops of four gate calls at once, each claiming up to CLAIM_BATCH (16): 48 a sweep.
            done.append(checks.checks_sweep(seconds=0, concurrency=12))
        finally:
            connection.close()

    sweeps = [threading.Thread(target=run) for _ in range(2)]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join(30)
    assert sum(done) == 40
    assert len(asked) == 40
    assert Channel.objects.filter(state="connected").count() == 40


def test_a_sweep_runs_in_several_worker_processes_that_share_the_calls(project, whapi, settings, monkeypatch):
    """A Python process computes on one core at a time: the "checks" schedule's task queues the other
    processes' parts of the sweep, each with its share of CHECKS_CONCURRENCY and the sweep's end."""
    settings.CHECKS_PROCESSES, settings.CHECKS_CONCURRENCY = 3, 64
    queued: list[tuple] = []
    monkeypatch.setattr(checks.background, "enqueue", lambda task, *args: queued.append((task, *args)))
    ran: list[tuple] = []
    monkeypatch.setattr(
        checks, "checks_sweep", lambda *, concurrency=None, seconds=80: ran.append((concurrency, seconds)) or 0
    )
    started = time.time()
    tasks.checks_sweep()
    ends_at = queued[0][2]
    assert queued == [("checks_sweep_part", 1, ends_at), ("checks_sweep_part", 2, ends_at)]
    assert started + checks.SWEEP_SECONDS - 1 <= ends_at <= time.time() + checks.SWEEP_SECONDS
    assert ran == [(22, 80)]  # 64 calls over three processes: 22 + 21 + 21
    tasks.checks_sweep_part(2, ends_at)  # what a queued part runs: until the sweep's end
    concurrency, seconds = ran[-1]
    assert concurrency == 21 and 0 < seconds <= checks.SWEEP_SECONDS
    # A part that waited for a free worker past its sweep's end does nothing.
    assert tasks.checks_sweep_part(1, int(time.time()) - 1) == 0
    assert len(ran) == 2
