"""Where the machine's CPU went during a load run: our processes (by role) and everything else.

On a 2-core machine the load generator, gunicorn and PostgreSQL share the cores, and anything else
running at the same time (another test suite, the hypervisor taking time: "steal") shows up directly
in the figures. `sample()` before and after a run gives CPU seconds per role from /proc; `foreign` is
busy CPU not accounted to any of ours, so a report can say whether the run was disturbed.
Linux only; elsewhere the figures are empty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Sample:
    busy_s: float = 0.0  # all cores: user + nice + system + irq + softirq
    steal_s: float = 0.0
    roles: dict[str, float] = field(default_factory=dict)
    # pid → (role, CPU seconds): a process that ends between two samples takes its CPU with it, so
    # `usage` counts each process present at the end from where it stood at the start (or from 0).
    processes: dict[int, tuple[str, float]] = field(default_factory=dict)


def _process_cpu(pid: int) -> tuple[float, int, str] | None:
    """(CPU seconds, process group, command name) of a process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[2]), name


def sample(groups: dict[str, int], other_db_backends: set[int] | None = None) -> Sample:
    """CPU so far: `groups` maps a role to a process-group id; PostgreSQL processes count as
    "postgres" except backends of other databases (`other_db_backends`)."""
    result = Sample()
    try:
        values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return result
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    result.busy_s = (user + nice + system + irq + softirq) / _TICK
    result.steal_s = steal / _TICK
    by_group = {pgid: role for role, pgid in groups.items()}
    me = os.getpid()
    roles: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        info = _process_cpu(pid)
        if info is None:
            continue
        seconds, pgid, name = info
        if pid == me:
            role = "load generator"
        elif pgid in by_group:
            role = by_group[pgid]
        elif name.startswith("postgres") and pid not in (other_db_backends or set()):
            role = "postgres"
        else:
            continue
        roles[role] = roles.get(role, 0.0) + seconds
        result.processes[pid] = (role, seconds)
    result.roles = roles
    return result


def usage(before: Sample, after: Sample, wall_s: float) -> dict[str, float]:
    """Per role, the share of one core used between two samples (1.0 = one core busy); plus
    "foreign" (busy CPU none of ours used) and "steal" (time the hypervisor gave to other guests)."""
    if wall_s <= 0 or not after.busy_s:
        return {}
    used: dict[str, float] = dict.fromkeys(sorted(set(before.roles) | set(after.roles)), 0.0)
    for pid, (role, seconds) in after.processes.items():
        start = before.processes.get(pid)
        # A process that ended meanwhile is missing from `after`: what it used in between shows up as
        # "foreign" (it is in /proc/stat's busy time), never as a negative figure of its role.
        used[role] += seconds - (start[1] if start is not None and start[0] == role else 0.0)
    shares = {role: round(seconds / wall_s, 3) for role, seconds in used.items()}
    ours = sum(shares.values())
    shares["foreign"] = round(max(0.0, (after.busy_s - before.busy_s) / wall_s - ours), 3)
    shares["steal"] = round((after.steal_s - before.steal_s) / wall_s, 3)
    return shares
