"""Load runs with their CPU, and the `/livez` baseline every callback figure is compared with.

`/livez` is the trivial view on the same server (no database): what gunicorn, the network stack and
the load generator cost per request on this machine at this moment. Measured once per connection
count in a run (`livez`) and shared by the benchmarks through `env.shared`, so each ratio compares
with the same run's baseline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks import Result, cpu
from benchmarks.environment import Environment, log
from benchmarks.loadgen import LoadResult, run_load

WARMUP_S = 1.0
LIVEZ_DURATION_S = 8.0
# Other work on the machine beyond this many cores during a run is worth a warning.
DISTURBED_CORES = 0.15


@dataclass
class Run:
    """One measured load run: the load generator's result and the CPU each role used (in cores)."""

    load: LoadResult
    usage: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def server_ms_per_request(self) -> tuple[float, float] | None:
        """(gunicorn, PostgreSQL) CPU ms per answered request; None without /proc figures."""
        if not self.usage or not self.load.completed:
            return None
        per = self.wall_s / self.load.completed * 1000
        return self.usage.get("gunicorn", 0.0) * per, self.usage.get("postgres", 0.0) * per

    def others_cores(self) -> float:
        return round(self.usage.get("foreign", 0.0) + self.usage.get("steal", 0.0), 2)

    def summary(self) -> dict:
        server = self.server_ms_per_request()
        return {
            **self.load.summary(),
            "cpu_cores_used": self.usage,
            "server_cpu_ms_per_request": None if server is None else [round(value, 3) for value in server],
        }


def measured_run(
    env: Environment,
    next_request: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    label: str,
    requests: int | None = None,
    warmup: bool = True,
) -> Run:
    """Optionally a warm-up of WARMUP_S, then the measured run with CPU sampled around it."""
    address = ("127.0.0.1", env.portal_port)
    if warmup:
        run_load(address, next_request, connections=connections, duration=WARMUP_S)
    groups, others = env.process_groups(), env.other_db_backends()
    before, started = cpu.sample(groups, others), time.monotonic()
    load = run_load(address, next_request, connections=connections, duration=duration, requests=requests)
    wall = time.monotonic() - started
    run = Run(load, cpu.usage(before, cpu.sample(groups, others), wall), wall)
    log(
        f"{label}: {load.completed:,} answers, {load.rps:.0f} requests/s, p99 {load.percentile(99) or 0:.1f} ms; "
        + "CPU in cores: "
        + ", ".join(f"{role} {share:.2f}" for role, share in run.usage.items())
    )
    env.check_alive()
    return run


def livez(env: Environment, connections: int) -> Run:
    """The `/livez` baseline at `connections`, measured on first use in this run."""
    cache = env.shared.setdefault("livez", {})
    if connections not in cache:
        request = f"GET /livez HTTP/1.1\r\nHost: 127.0.0.1:{env.portal_port}\r\nConnection: keep-alive\r\n\r\n"
        data = request.encode()
        cache[connections] = measured_run(
            env, lambda _i: data, connections=connections, duration=LIVEZ_DURATION_S, label=f"GET /livez x{connections}"
        )
    return cache[connections]


def add_livez_figures(result: Result, run: Run, connections: int) -> None:
    """The baseline's own figures, as a benchmark that compares with it reports them."""
    reuse = "kept alive" if run.load.keep_alive else "new TCP connection per request (server closes)"
    result.add(f"GET /livez throughput x{connections}", round(run.load.rps, 1), "req/s", note=reuse)
    server = run.server_ms_per_request()
    if server is not None:
        result.add(
            f"server CPU per /livez x{connections}",
            round(sum(server), 3),
            "ms",
            note=f"gunicorn {server[0]:.2f} + postgres {server[1]:.2f}",
        )
    failures = run.load.errors + run.load.timed_out + run.load.non_2xx
    result.add(f"/livez x{connections} errors and non-2xx", failures, "", "0", failures == 0)


def warn_if_disturbed(result: Result, run: Run, label: str) -> None:
    others = run.others_cores()
    if others > DISTURBED_CORES:
        result.warnings.append(
            f"during the {label} run other work used {others:.2f} cores of {os.cpu_count()}: "
            "throughput and latency are lower than on a quiet machine; run again."
        )
