"""Storms: every channel of the fleet reporting at once, at 64 connections, and the follow-up checks
they cause against the sandbox's gate (with its standing latency, `--gate-delay-ms`).

1. **users.delete**: every phone logged out. The sandbox is told first (its channels re-registered
   without a phone: health QR), then one `users.delete` per channel is sent. The receiver records
   each report and asks for a health check; the checks ask the sandbox, which says QR, and move the
   channels to disconnected.
2. **health**: Whapi restarted and every channel comes back. The sandbox's channels are registered
   again with their phones and a new `start_at`; then one `channel.post` AUTH per channel (with that
   `start_at`) moves each from disconnected to connected.

Before each storm the fleet is put in the storm's starting state through the ORM (connected with
their numbers, or disconnected), with nothing pending and no periodic check due, so what the worker
does afterwards is the storm's follow-ups only.

Figures per storm: callbacks per second (target ≥ 0.2 times `/livez`'s at the same connections in
this run), zero non-2xx, every callback stored and applied, every channel in the state the storm
leads to, and the seconds from the last callback until the follow-ups are finished (every callback
applied by the callbacks applier, no disconnect report waiting, no health check more than 5 s
overdue; target ≤ 60 s).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

from benchmarks import Result, benchmark, positive_int
from benchmarks import callbacks as cb
from benchmarks.baseline import add_livez_figures, livez, measured_run, warn_if_disturbed
from benchmarks.environment import Environment, log
from benchmarks.fleet import Fleet, checks_quiet, fleet_grow, fleet_reset, present, present_update, sandbox_register
from benchmarks.mix import wait_for_follow_ups

MIN_RATIO = 0.2
MAX_FOLLOW_UP_S = 60.0
WAIT_FOLLOW_UP_S = 180.0  # how long to keep looking, to say how long a missed target took
OVERDUE_GRACE = timedelta(seconds=5)


# What the log and var/bench.json show of channels whose follow-up did not finish.
STUCK_FIELDS = (
    "id",
    "whapi_id",
    "state",
    "health_status",
    "health_start_at",
    "health_uptime",
    "connected_number",
    "disconnect_reported_at",
    "health_check_due_at",
    "last_confirmed_at",
    "status_stale",
    "last_error",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("storms")
    group.add_argument("--storm-connections", type=positive_int, default=64, help="concurrent connections (64)")


def channels_pending():
    """Fleet channels whose follow-up is not done: a disconnect report waiting, or a health check overdue."""
    from django.db.models import Q
    from django.utils import timezone

    overdue = timezone.now() - OVERDUE_GRACE
    return present().filter(Q(disconnect_reported_at__isnull=False) | Q(health_check_due_at__lte=overdue))


def follow_ups_pending() -> int:
    """What the storm still waits for: callbacks stored but not yet applied, and channels_pending()."""
    from channels_app.models import WebhookEvent

    return channels_pending().count() + WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.RECEIVED).count()


def storm(
    env: Environment,
    result: Result,
    fleet: Fleet,
    *,
    name: str,
    payload_for: Callable[[int], dict],
    expected_state: str,
    connections: int,
) -> dict:
    from django.db.models import Count

    from channels_app.models import WebhookEvent

    count = len(fleet.channels)
    host = f"127.0.0.1:{env.portal_port}"
    requests = [cb.request_bytes(host, fleet.channels[index][1], payload_for(index)) for index in range(count)]
    position = iter(range(len(requests)))

    def next_request(_connection: int) -> bytes:
        return requests[next(position)]

    first_id = WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    log(f"storm {name}: {count:,} callbacks at {connections} connections")
    run = measured_run(
        env,
        next_request,
        connections=connections,
        duration=600,
        requests=count,
        label=f"storm {name}",
        warmup=False,
    )
    last_callback = time.monotonic()
    finished_after = None
    pending_samples = []
    while time.monotonic() - last_callback < WAIT_FOLLOW_UP_S:
        pending = follow_ups_pending()
        pending_samples.append((round(time.monotonic() - last_callback, 1), pending))
        if pending == 0:
            finished_after = time.monotonic() - last_callback
            break
        time.sleep(1.0)
    log(
        f"storm {name}: follow-ups "
        + (
            f"finished {finished_after:.1f} s after the last callback"
            if finished_after is not None
            else f"not finished within {WAIT_FOLLOW_UP_S:g} s"
        )
    )
    stuck = list(channels_pending().values(*STUCK_FIELDS)[:10])
    if stuck:
        log(f"storm {name}: channels still pending, first {len(stuck)}: {stuck}")
    rows = WebhookEvent.objects.filter(id__gt=first_id)
    outcomes = dict(rows.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    applied = outcomes.get(WebhookEvent.Outcome.APPLIED, 0)
    in_state = present().filter(state=expected_state).count()

    base = livez(env, connections)
    ratio = run.load.rps / base.load.rps if base.load.rps else 0.0
    result.add(
        f"{name}: throughput",
        round(run.load.rps, 1),
        "req/s",
        f">= {MIN_RATIO:g} x /livez ({MIN_RATIO * base.load.rps:,.0f})",
        ratio >= MIN_RATIO,
        note=f"{ratio:.2f} x /livez; p99 {run.load.percentile(99) or 0:.0f} ms",
    )
    failures = run.load.non_2xx + run.load.errors + run.load.timed_out
    result.add(f"{name}: non-2xx and errors", failures, "", "0", failures == 0)
    result.add(
        f"{name}: stored and applied",
        applied,
        "callbacks",
        f"= {count:,}",
        applied == count and run.load.completed == count,
        note=", ".join(f"{outcome} {n:,}" for outcome, n in sorted(outcomes.items())),
    )
    result.add(f"{name}: channels {expected_state}", in_state, "", f"= {count:,}", in_state == count)
    result.add(
        f"{name}: follow-ups finished after",
        None if finished_after is None else round(finished_after, 1),
        "s",
        f"<= {MAX_FOLLOW_UP_S:g}",
        finished_after is not None and finished_after <= MAX_FOLLOW_UP_S,
        note="after the last callback"
        if finished_after is not None
        else f"{pending_samples[-1][1]:,} pending after {WAIT_FOLLOW_UP_S:g} s",
    )
    server = run.server_ms_per_request()
    if server is not None:
        result.add(
            f"{name}: server CPU per callback",
            round(sum(server), 3),
            "ms",
            note=f"gunicorn {server[0]:.2f} + postgres {server[1]:.2f}",
        )
    warn_if_disturbed(result, run, f"{name} storm")
    return {
        "storm": run.summary(),
        "ledger_outcomes": outcomes,
        "channels_in_expected_state": in_state,
        "follow_ups_finished_after_s": finished_after,
        "follow_ups_pending_over_time": pending_samples,
        "channels_pending_at_the_end": stuck,
    }


@benchmark(
    "storms",
    "Storms of users.delete and of health state changes, with their follow-up checks",
    add_arguments=add_arguments,
    needs_worker=True,
)
def run(env: Environment) -> Result:
    from django.utils import timezone

    from channels_app.models import Channel

    args = env.args
    result = Result()
    fleet = fleet_grow(env, args.fleet)
    connections = args.storm_connections
    wait_for_follow_ups(60)  # what the benchmarks before left
    add_livez_figures(result, livez(env, connections), connections)

    # 1. Every phone logged out: the sandbox first (silently), then the callbacks.
    fleet_reset(env, fleet, linked=False)
    deletes = storm(
        env,
        result,
        fleet,
        name="users.delete",
        payload_for=lambda index: cb.users(fleet.channels[index][0], "delete", fleet.channels[index][2]),
        expected_state=Channel.State.DISCONNECTED,
        connections=connections,
    )

    # 2. Whapi restarted, every channel back: a new start_at in the sandbox and in the callbacks. The
    # first storm's disconnects made checks due (the alerts' grace): none may land after the restart.
    checks_quiet()
    restarted_at = int(time.time() - env.options.init_delay) - 1  # the sandbox starts nothing later
    present_update(
        state=Channel.State.DISCONNECTED,
        connected_number="",
        disconnect_reported_at=None,
        health_check_due_at=timezone.now() + timedelta(days=1),
    )
    sandbox_register(env, present(), linked=True, started_at=restarted_at)
    uptime = max(1, int(time.time()) - restarted_at)
    health = storm(
        env,
        result,
        fleet,
        name="health AUTH",
        payload_for=lambda index: cb.health(
            fleet.channels[index][0], start_at=restarted_at, uptime=uptime, text="AUTH", number=fleet.channels[index][2]
        ),
        expected_state=Channel.State.CONNECTED,
        connections=connections,
    )
    fleet.started_at = restarted_at
    result.details = {
        "connections": connections,
        "channels": len(fleet.channels),
        "gate_delay_ms": env.options.gate_delay_ms,
        "livez": livez(env, connections).summary(),
        "users_delete": deletes,
        "health_auth": health,
    }
    return result
