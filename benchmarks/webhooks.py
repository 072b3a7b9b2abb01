"""Webhook throughput: how many authenticated Whapi callbacks per second the portal takes in, against a
trivial view on the same server, with what latency, and whether every one lands in the ledger.

Channels are seeded straight into the database (48 by default, state CONNECTED, a real encrypted
webhook secret each). Each of the N connections owns every N-th channel and sends its events in
order, so a channel's health events arrive with strictly increasing uptime, as Whapi sends them:
per channel, of every 20 events 16 are `channel.post` health (AUTH), 3 are `messages.post` (an
event type the portal stores but does not handle) and 1 is `users.post`/`users.delete` in turn
(these move the channel's state and enqueue follow-up tasks for the worker; `--no-users-events` puts
a health event in their place). Every event is distinct.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import deque

from benchmarks import Result, benchmark, cpu, positive_float, positive_int
from benchmarks.environment import Environment, log
from benchmarks.loadgen import LoadResult, run_load

CHANNEL_PREFIX = "BENCH-"
WARMUP_S = 1.0
# Targets.
MIN_RATIO = 0.25
MAX_P99_MS = 50.0
# Other work on the machine beyond this many cores during a run is worth a warning.
DISTURBED_CORES = 0.15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("webhooks")
    group.add_argument(
        "--duration", type=positive_float, default=10.0, help="seconds of load for each of /livez and the webhook (10)"
    )
    group.add_argument("--connections", type=positive_int, default=16, help="concurrent keep-alive connections (16)")
    group.add_argument(
        "--no-users-events",
        action="store_true",
        help="send health events instead of the users events (and so enqueue no follow-up tasks)",
    )
    group.add_argument(
        "--webhook-channels", type=positive_int, default=48, help="channels the events are spread over (48)"
    )


class EventStream:
    """Distinct, authenticated webhook requests; connection i sends for channels i, i+N, i+2N, ..."""

    START_AT = 1_713_774_883

    def __init__(self, channels: list[tuple[str, str]], connections: int, host: str, *, users: bool = True) -> None:
        self.host = host
        self.users = users  # without: the users slot carries a health event
        self.by_connection = [channels[index::connections] for index in range(connections)]
        if any(not owned for owned in self.by_connection):
            raise ValueError("need at least one channel per connection")
        self.counters = [0] * connections  # requests built per connection
        self.ready: list[deque[tuple[str, bytes]]] = [deque() for _ in range(connections)]  # built, not sent
        self.sequence: dict[str, int] = {}  # events sent per channel
        self.uptime: dict[str, int] = {}
        self.users_sent: dict[str, int] = {}
        self.sent_by_kind: dict[str, int] = {}

    def body(self, channel_id: str, number: str) -> tuple[str, dict]:
        sequence = self.sequence.get(channel_id, 0)
        self.sequence[channel_id] = sequence + 1
        slot = sequence % 20
        if slot < 16 or (slot == 19 and not self.users):
            uptime = self.uptime.get(channel_id, 0) + 1
            self.uptime[channel_id] = uptime
            return "channel.post", {
                "health": {
                    "start_at": self.START_AT,
                    "uptime": uptime,
                    "status": {"code": 4, "text": "AUTH"},
                    "version": "1.8.3-74-gf7df472",
                    "user": {"id": number, "name": "Bench"},
                },
                "event": {"type": "channel", "event": "post"},
                "channel_id": channel_id,
            }
        if slot < 19:
            return "messages.post", {
                "messages": [
                    {
                        "id": f"BM{channel_id}{sequence}",
                        "from_me": False,
                        "type": "text",
                        "chat_id": "61371989950@s.whatsapp.net",
                        "timestamp": 1713775000 + sequence,
                        "text": {"body": f"Hello {sequence}"},
                        "from": "61371989950",
                        "from_name": "Jonathan",
                    }
                ],
                "event": {"type": "messages", "event": "post"},
                "channel_id": channel_id,
            }
        users = self.users_sent.get(channel_id, 0)
        self.users_sent[channel_id] = users + 1
        method = "delete" if users % 2 == 0 else "post"  # seeded connected: log out first, then back in
        return f"users.{method}", {
            "user": {"id": number, "name": "Bench"},
            "event": {"type": "users", "event": method},
            "channel_id": channel_id,
        }

    def prepare(self, per_connection: int) -> None:
        """Build the next `per_connection` requests of every connection now, so that during a run the
        load generator only sends bytes, as it does for /livez: on a machine whose cores the server
        uses too, encoding JSON during the run would be taken from the server being measured."""
        for connection, ready in enumerate(self.ready):
            ready.extend(self._build(connection) for _ in range(per_connection))

    def next_request(self, connection: int) -> bytes:
        ready = self.ready[connection]
        kind, request = ready.popleft() if ready else self._build(connection)
        self.sent_by_kind[kind] = self.sent_by_kind.get(kind, 0) + 1
        return request

    def _build(self, connection: int) -> tuple[str, bytes]:
        owned = self.by_connection[connection]
        count = self.counters[connection]
        self.counters[connection] = count + 1
        channel_id, secret = owned[count % len(owned)]
        kind, payload = self.body(channel_id, _number(channel_id))
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = (
            f"POST /whapi/webhook HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"X-Portal-Secret: {secret}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
        )
        return kind, head.encode() + body


def _number(channel_id: str) -> str:
    return "1415555" + channel_id.rsplit("-", 1)[-1].rjust(4, "0")


def seed_channels(env: Environment, count: int, prefix: str = CHANNEL_PREFIX) -> list[tuple[str, str]]:
    """Create `count` connected channels with Whapi ids `<prefix>0000`, ...; returns (whapi id, webhook
    secret) pairs."""
    from django.utils import timezone

    from channels_app.models import Channel

    now = timezone.now()
    channels = [
        Channel(
            name=f"bench {index:04d}",
            whapi_id=f"{prefix}{index:04d}",
            token=f"bench-gate-token-{index:04d}",
            api_url=f"{env.sandbox_url}/gate/",
            whapi_status="active",
            mode=Channel.Mode.LIVE,
            state=Channel.State.CONNECTED,
            connected_number=_number(f"{prefix}{index:04d}"),
            connected_name="Bench",
            connected_at=now,
            last_confirmed_at=now,
            webhooks_applied_at=now,
            webhooks_verified_at=now,
        )
        for index in range(count)
    ]
    Channel.objects.bulk_create(channels)
    # Read the secrets back through the ORM: they went through encryption and must decrypt again.
    stored = Channel.objects.filter(whapi_id__startswith=prefix).order_by("whapi_id")
    return [(channel.whapi_id, channel.webhook_secret) for channel in stored]


def _livez_request(host: str) -> bytes:
    return f"GET /livez HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()


def _run(
    env: Environment, next_request, *, connections: int, duration: float, label: str
) -> tuple[LoadResult, LoadResult, dict[str, float]]:
    """A warm-up of WARMUP_S, then the measured run; returns both and the CPU use during the run."""
    address = ("127.0.0.1", env.portal_port)
    warmup = run_load(address, next_request, connections=connections, duration=WARMUP_S)
    log(f"{label}: {connections} connections for {duration:g} s")
    groups, others = env.process_groups(), env.other_db_backends()
    before, started = cpu.sample(groups, others), time.monotonic()
    result = run_load(address, next_request, connections=connections, duration=duration)
    wall = time.monotonic() - started
    usage = cpu.usage(before, cpu.sample(groups, others), wall)
    if usage and result.completed:
        # CPU of the web workers and PostgreSQL per answered request, in ms.
        for role in ("gunicorn", "postgres"):
            usage[f"{role}_ms_per_request"] = round(usage.get(role, 0.0) * wall / result.completed * 1000, 3)
    log(
        f"{label}: {result.rps:.0f} requests/s, p99 {result.percentile(99) or 0:.1f} ms; CPU in cores: "
        + ", ".join(f"{role} {share:.2f}" for role, share in usage.items() if not role.endswith("_request"))
    )
    env.check_alive()
    return warmup, result, usage


# With the worker: the users events enqueue follow-up tasks, and running them is part of the load.
@benchmark("webhooks", "Webhook throughput vs /livez", add_arguments=add_arguments, needs_worker=True)
def run(env: Environment) -> Result:
    from django.db.models import Count

    from channels_app.models import WebhookEvent

    args = env.args
    result = Result()
    host = f"127.0.0.1:{env.portal_port}"
    channels = seed_channels(env, args.webhook_channels)
    stream = EventStream(channels, args.connections, host, users=not args.no_users_events)
    livez_bytes = _livez_request(host)

    livez_warmup, livez, livez_cpu = _run(
        env, lambda _i: livez_bytes, connections=args.connections, duration=args.duration, label="GET /livez"
    )
    # Enough requests for the warm-up and the run at half /livez's rate (twice the target ratio);
    # beyond that they are built as they are sent.
    stream.prepare(round(livez.rps / 2 * (WARMUP_S + args.duration) / args.connections))
    # Events sent during the webhook warm-up count too: they are distinct and go to the ledger.
    hooks_warmup, hooks, hooks_cpu = _run(
        env, stream.next_request, connections=args.connections, duration=args.duration, label="POST /whapi/webhook"
    )
    events_sent = sum(stream.sent_by_kind.values())  # built but not sent: not counted
    # Every request has been answered (or counted as an error), so every ledger row is committed.
    time.sleep(0.2)
    ledger = WebhookEvent.objects.filter(whapi_channel_id__startswith=CHANNEL_PREFIX)
    ledger_rows = ledger.count()
    outcomes = dict(ledger.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))

    ratio = hooks.rps / livez.rps if livez.rps else 0.0
    p99 = hooks.percentile(99)
    reuse = "kept alive" if hooks.keep_alive else "new TCP connection per request (server closes)"
    result.add("GET /livez throughput", round(livez.rps, 1), "req/s", note=f"{args.connections} connections, {reuse}")
    result.add("POST /whapi/webhook throughput", round(hooks.rps, 1), "req/s", note=f"{hooks.completed:,} answered")
    result.add("webhook / livez ratio", round(ratio, 3), "x", f">= {MIN_RATIO}", ratio >= MIN_RATIO)
    result.add("webhook latency p50", _round(hooks.percentile(50)), "ms")
    result.add("webhook latency p95", _round(hooks.percentile(95)), "ms")
    result.add("webhook latency p99", _round(p99), "ms", f"< {MAX_P99_MS:g}", p99 is not None and p99 < MAX_P99_MS)
    result.add("webhook non-2xx answers", hooks.non_2xx, "", "0", hooks.non_2xx == 0)
    failures = sum(load.errors + load.timed_out for load in (livez_warmup, livez, hooks_warmup, hooks))
    failures += livez.non_2xx + hooks_warmup.non_2xx
    result.add("connection errors (+ /livez non-2xx)", failures, "", "0", failures == 0)
    result.add(
        "ledger rows / distinct events sent",
        ledger_rows,
        "rows",
        f"= {events_sent}",
        ledger_rows == events_sent,
        note=f"{hooks_warmup.sent:,} in the warm-up + {hooks.sent:,} measured",
    )
    # CPU per answered request (web workers + PostgreSQL): what the throughput ratio comes down to on a
    # machine whose cores are all busy, and much less sensitive to other load than requests/s.
    for label, usage in (("/livez", livez_cpu), ("webhook", hooks_cpu)):
        if "gunicorn_ms_per_request" in usage:
            web, db = usage["gunicorn_ms_per_request"], usage["postgres_ms_per_request"]
            result.add(
                f"server CPU per request ({label})",
                round(web + db, 3),
                "ms",
                note=f"gunicorn {web:.2f} + postgres {db:.2f}",
            )
    for label, usage in (("/livez", livez_cpu), ("webhook", hooks_cpu)):
        if not usage:
            continue
        result.add(f"load generator CPU ({label} run)", usage.get("load generator"), "cores")
        others = round(usage.get("foreign", 0.0) + usage.get("steal", 0.0), 2)
        result.add(f"CPU used by others ({label} run)", others, "cores", note="other processes + hypervisor steal")
        if others > DISTURBED_CORES:
            result.warnings.append(
                f"during the {label} run other work used {others:.2f} cores of {os.cpu_count()}: "
                "the throughput and latency figures are lower than on a quiet machine; run again."
            )
    result.details = {
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": WARMUP_S,
        "channels": len(channels),
        "users_events": stream.users,
        "load_generator": "single-thread selectors (epoll) loop over raw non-blocking sockets, HTTP/1.1 keep-alive",
        "livez": livez.summary(),
        "webhook": hooks.summary(),
        "cpu_cores_used": {"livez": livez_cpu, "webhook": hooks_cpu},
        "events_sent": events_sent,
        "events_sent_in_warmup": hooks_warmup.sent,
        "webhook_warmup_non_2xx": hooks_warmup.non_2xx,
        "events_by_kind": dict(stream.sent_by_kind),
        "ledger_rows": ledger_rows,
        "ledger_outcomes": outcomes,
        "ratio": round(ratio, 4),
    }
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
