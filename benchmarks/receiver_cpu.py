"""CPU per callback inside the portal: the WSGI application called in a loop in this process, with no
HTTP server, network or load generator around it, against the bench database (PostgreSQL).

It takes the same event mix as `mix`, over the same fleet (`benchmarks.fleet`), and reports the CPU
this process used per request for `/livez` and for the webhook, and the CPU of this connection's
PostgreSQL backend per webhook (read from `/proc`, so only when PostgreSQL runs on this machine).
No targets: these figures say where a callback's time goes when the `mix` figure moves, and
`--receiver-profile N` adds the N functions with the most own time (cProfile, which slows the run
down) to the log and to var/bench.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

from benchmarks import Result, benchmark, positive_int
from benchmarks.environment import Environment, log
from benchmarks.fleet import fleet_grow, fleet_reset
from benchmarks.mix import MixStream

CONNECTIONS = 16  # as many "connections" as `mix` uses: the same order of events per channel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("receiver_cpu")
    group.add_argument(
        "--receiver-requests", type=positive_int, default=3000, help="timed requests of each kind (3000)"
    )
    group.add_argument(
        "--receiver-profile", type=int, default=0, metavar="N", help="log the N functions with the most own time"
    )


def _environ(request: bytes) -> dict:
    """The WSGI environ of one raw HTTP/1.1 request as the load generator sends it."""
    head, body = request.split(b"\r\n\r\n", 1)
    request_line, *header_lines = head.decode().split("\r\n")
    method, path, protocol = request_line.split(" ")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": protocol,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }
    for line in header_lines:
        name, value = line.split(": ", 1)
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def _backend_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@benchmark("receiver_cpu", "Receiver CPU per callback, in-process", add_arguments=add_arguments)
def run(env: Environment) -> Result:
    from django.db import connection

    from portal.wsgi import application

    args, result = env.args, Result()
    statuses: dict[str, int] = {}

    def call(environ: dict) -> None:
        def start_response(status: str, headers: list) -> None:
            statuses[status[:3]] = statuses.get(status[:3], 0) + 1

        response = application(environ, start_response)
        b"".join(response)
        response.close()

    count = args.receiver_requests
    fleet = fleet_grow(env, args.fleet)
    fleet_reset(env, fleet)
    stream = MixStream(fleet, CONNECTIONS, "127.0.0.1")
    webhooks = [_environ(stream.next_request(index % CONNECTIONS)) for index in range(2 * count)]
    livez = _environ(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for environ in webhooks[:count]:  # warm-up: connection, prepared statements, caches
        call(environ)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    started = time.process_time()
    for _ in range(count):
        call(dict(livez, **{"wsgi.input": io.BytesIO()}))
    livez_us = (time.process_time() - started) / count * 1e6

    profile = cProfile.Profile() if args.receiver_profile > 0 else None
    db_before, started = _backend_cpu_s(backend), time.process_time()
    if profile:
        profile.enable()
    for environ in webhooks[count:]:
        call(environ)
    if profile:
        profile.disable()
    webhook_us = (time.process_time() - started) / count * 1e6
    db_after = _backend_cpu_s(backend)
    db_us = (db_after - db_before) / count * 1e6 if db_before is not None and db_after is not None else None
    log(f"receiver_cpu: /livez {livez_us:.0f} µs, webhook {webhook_us:.0f} µs + PostgreSQL {db_us or 0:.0f} µs")

    note = "under cProfile" if profile else f"{count:,} requests"
    result.add("in-process CPU per request (/livez)", round(livez_us), "µs", note=note)
    result.add("in-process CPU per request (webhook)", round(webhook_us), "µs", note=note)
    result.add("PostgreSQL CPU per webhook", None if db_us is None else round(db_us), "µs", note="this backend")
    failed = sum(n for status, n in statuses.items() if not status.startswith("2"))
    result.add("non-2xx answers", failed, "", "0", failed == 0)
    result.details = {"requests": count, "statuses": statuses, "events_by_kind": dict(stream.sent)}
    if profile:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.receiver_profile)
        log(text.getvalue())
        result.details["profile"] = text.getvalue()
    return result
