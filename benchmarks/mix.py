"""The realistic event mix: what the portal's receiver costs per callback, against `/livez`.

Over the whole fleet (10,000 channels, each with its own secret; `benchmarks.fleet`; the ones
present in Whapi, all made connected by `fleet_reset`), with
`--connections` (16) connections for `--duration` seconds (15): connection i sends for channels i,
i+N, i+2N, ... in turn, so a channel's callbacks arrive in order. Each channel walks a cycle of 20
events, starting at its own place in it (its index), so across the fleet the mix holds from the first
second even though a channel gets only a few events in a run:

- 15 of `channel.post` AUTH with increasing uptime (unchanged status: most of what Whapi sends);
- one `channel.post` QR (a state change: connected → disconnected), one `channel.patch` (a new QR),
  then one `channel.post` AUTH (back to connected);
- one `users.delete` (recorded; a follow-up health check asks the sandbox, which says AUTH, so the
  channel stays connected) and one `users.post`.

Only events the portal subscribes to (`configure.OUR_EVENTS`). Health reports carry the `start_at` the
sandbox was told (the fleet's) and an uptime that grows with the clock, so the follow-up checks'
answers and the callbacks agree on which report is newer.

Figures: server CPU per callback (gunicorn + PostgreSQL, `benchmarks.cpu`) against `/livez`'s in the
same run (target ≤ 6 times); every callback stored (ledger rows = callbacks sent); zero non-2xx.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, deque

from benchmarks import Result, benchmark, positive_float, positive_int
from benchmarks import callbacks as cb
from benchmarks.baseline import add_livez_figures, livez, measured_run, warn_if_disturbed
from benchmarks.environment import Environment, log
from benchmarks.fleet import Fleet, fleet_grow, fleet_reset

MAX_CPU_RATIO = 6.0
CYCLE = ["AUTH"] * 15 + ["QR", "patch", "AUTH", "users.delete", "users.post"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mix")
    group.add_argument("--duration", type=positive_float, default=15.0, help="seconds of the mix (15)")
    group.add_argument("--connections", type=positive_int, default=16, help="concurrent connections (16)")


class MixStream:
    """The mix's requests; built ahead (`prepare`) so the load generator mostly only sends bytes."""

    def __init__(self, fleet: Fleet, connections: int, host: str) -> None:
        self.fleet, self.host = fleet, host
        count = len(fleet.channels)
        self.owned = [list(range(index, count, connections)) for index in range(connections)]
        self.turn = [0] * connections
        self.step = [0] * count
        self.uptime = [0] * count
        self.ready: list[deque[tuple[str, bytes]]] = [deque() for _ in range(connections)]
        self.sent: Counter[str] = Counter()

    def _build(self, connection: int) -> tuple[str, bytes]:
        owned = self.owned[connection]
        index = owned[self.turn[connection] % len(owned)]
        self.turn[connection] += 1
        channel_id, secret, number = self.fleet.channels[index]
        slot = CYCLE[(index + self.step[index]) % len(CYCLE)]
        self.step[index] += 1
        if slot in ("AUTH", "QR"):
            # Uptime as Whapi counts it (seconds since start_at), strictly increasing per channel.
            uptime = max(self.uptime[index] + 1, int(time.time()) - self.fleet.started_at)
            self.uptime[index] = uptime
            payload = cb.health(channel_id, start_at=self.fleet.started_at, uptime=uptime, text=slot, number=number)
        elif slot == "patch":
            payload = cb.qr_patch(channel_id)
        else:
            payload = cb.users(channel_id, slot.split(".")[1], number)
        return cb.kind(payload), cb.request_bytes(self.host, secret, payload)

    def prepare(self, per_connection: int) -> None:
        for connection, ready in enumerate(self.ready):
            ready.extend(self._build(connection) for _ in range(per_connection))

    def next_request(self, connection: int) -> bytes:
        ready = self.ready[connection]
        kind, request = ready.popleft() if ready else self._build(connection)
        self.sent[kind] += 1
        return request


def ledger_count() -> int:
    from channels_app.models import WebhookEvent

    return WebhookEvent.objects.count()


def wait_for_follow_ups(timeout: float) -> float | None:
    """Seconds until every stored callback is applied and no channel has a disconnect report waiting
    for its health check; None if something was still waiting after `timeout`."""
    from channels_app.models import Channel, WebhookEvent

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not (
            WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.RECEIVED).exists()
            or Channel.objects.filter(disconnect_reported_at__isnull=False).exists()
        ):
            return time.monotonic() - started
        time.sleep(0.5)
    return None


@benchmark(
    "mix",
    "Realistic callback mix over the fleet: CPU per callback vs /livez",
    add_arguments=add_arguments,
    needs_worker=True,
)
def run(env: Environment) -> Result:
    from django.db.models import Count

    from channels_app.models import WebhookEvent

    args = env.args
    result = Result()
    fleet = fleet_grow(env, args.fleet)
    wait_for_follow_ups(60)
    fleet_reset(env, fleet)
    base = livez(env, args.connections)
    stream = MixStream(fleet, args.connections, f"127.0.0.1:{env.portal_port}")
    # Enough for the warm-up and the run at a third of /livez's rate; beyond that built as sent.
    stream.prepare(round(base.load.rps / 3 * (1 + args.duration) / args.connections))
    rows_before, first_id = ledger_count(), WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first()
    log(f"mix: {args.connections} connections for {args.duration:g} s over {len(fleet.channels):,} channels")
    mix = measured_run(env, stream.next_request, connections=args.connections, duration=args.duration, label="mix")
    sent = sum(stream.sent.values())
    time.sleep(0.2)
    stored = ledger_count() - rows_before
    follow_ups_s = wait_for_follow_ups(120)
    new_rows = WebhookEvent.objects.filter(id__gt=first_id or 0)
    outcomes = dict(new_rows.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))

    add_livez_figures(result, base, args.connections)
    result.add("mix throughput", round(mix.load.rps, 1), "req/s", note=f"{mix.load.completed:,} answered")
    result.add(
        "mix latency p50 / p99",
        round(mix.load.percentile(50) or 0, 1),
        "ms",
        note=f"p99 {mix.load.percentile(99) or 0:.1f} ms",
    )
    server, baseline = mix.server_ms_per_request(), base.server_ms_per_request()
    if server is not None and baseline is not None and sum(baseline) > 0:
        ratio = sum(server) / sum(baseline)
        # Not in the target (the server's CPU, as before the applier moved to the worker), but shown:
        # the callbacks applier and the checks run in the worker, during the run and after it.
        worker_ms = mix.usage.get("qcluster", 0.0) * mix.wall_s / mix.load.completed * 1000
        result.add(
            "server CPU per callback",
            round(sum(server), 3),
            "ms",
            f"<= {MAX_CPU_RATIO:g} x /livez ({MAX_CPU_RATIO * sum(baseline):.2f})",
            ratio <= MAX_CPU_RATIO,
            note=f"gunicorn {server[0]:.2f} + postgres {server[1]:.2f}; {ratio:.1f} x /livez; "
            f"worker (applier, checks) {worker_ms:.2f} more",
        )
    else:
        result.add(
            "server CPU per callback", None, "ms", f"<= {MAX_CPU_RATIO:g} x /livez", False, note="no /proc figures"
        )
    result.add("callbacks stored / sent", stored, "rows", f"= {sent:,}", stored == sent, note="warm-up included")
    failures = mix.load.non_2xx + mix.load.errors + mix.load.timed_out
    result.add("mix non-2xx and errors", failures, "", "0", failures == 0)
    result.add(
        "applied and followed up after",
        None if follow_ups_s is None else round(follow_ups_s, 1),
        "s",
        note="after the last callback: every callback applied, every users.delete checked with the sandbox"
        + ("" if follow_ups_s is not None else ": not within 120 s"),
    )
    warn_if_disturbed(result, mix, "mix")
    result.details = {
        "connections": args.connections,
        "duration_s": args.duration,
        "channels": len(fleet.channels),
        "cycle": CYCLE,
        "sent_by_kind": dict(stream.sent),
        "ledger_outcomes": outcomes,
        "livez": base.summary(),
        "mix": mix.summary(),
    }
    return result
