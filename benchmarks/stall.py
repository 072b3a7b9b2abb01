"""The lost create: how long the create queue stalls when the worker dies in the middle of a create.

Two channels are queued (`manage.py request_channel`) while the sandbox holds `PUT /channels` for
`STALL_DELAY_S` (a one-shot `delay` fault). As soon as the fault has fired (the pump is waiting for
Whapi's answer, holding the pump lease), the worker's whole process group is killed with SIGKILL, as
a crash or an OOM kill would, and started again. The sandbox finishes the first create by itself
(nobody hears the answer); the pipeline must find it (reconcile by the creation marker) or recreate it,
and go on with the second channel.

Figure: the stall, from the moment the restarted worker is ready until the next queued channel's
creation reaches the sandbox (the restart's own time taken out); target ≤ 30 s. The raw time from
the kill and the pump lease left at the kill are reported too.
"""

from __future__ import annotations

import json
import time
import urllib.request

from benchmarks import Result, benchmark
from benchmarks.environment import SANDBOX_TOKEN, Environment, log
from benchmarks.fleet import get_json, post_json

STALL_DELAY_S = 10.0
MAX_STALL_S = 30.0
WAIT_S = 120.0
NAMES = ("bench stall lost", "bench stall next")


def _sandbox_channel_names(env: Environment) -> list[str]:
    request = urllib.request.Request(  # noqa: S310 (the sandbox's local URL)
        f"{env.sandbox_url}/channels/list?count=500", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return [channel.get("name", "") for channel in json.loads(response.read())["channels"]]


@benchmark("stall", "The create queue after the worker is killed mid-create", needs_worker=True)
def run(env: Environment) -> Result:
    from django.utils import timezone

    from channels_app.models import Channel, CreateBudget, Project

    result = Result()
    env.manage("sync_whapi")
    project = Project.objects.filter(is_default=True).first() or Project.objects.first()
    if project is None:
        result.error = "sync_whapi mirrored no project from the sandbox"
        return result
    post_json(
        f"{env.sandbox_url}/_sandbox/faults",
        {"kind": "delay", "method": "PUT", "path_regex": "/channels", "seconds": STALL_DELAY_S, "count": 1},
    )
    for name in NAMES:
        env.manage("request_channel", "--project", project.whapi_id, "--name", name)
    deadline = time.monotonic() + 120
    while get_json(f"{env.sandbox_url}/_sandbox/faults")["faults"]:
        if time.monotonic() > deadline:
            result.error = "no create reached the sandbox within 120 s"
            return result
        time.sleep(0.1)
    time.sleep(0.5)  # the pump is inside the create call now
    creating = list(Channel.objects.filter(name__in=NAMES, state=Channel.State.CREATING).values_list("name", flat=True))
    budget = CreateBudget.objects.filter(pk=1).first()
    killed_at = env.kill_worker()
    lease_left = None
    if budget is not None and budget.pump_lease_until is not None:
        lease_left = round((budget.pump_lease_until - timezone.now()).total_seconds(), 1)
    lost = creating[0] if creating else NAMES[0]
    log(f"stall: worker killed while creating {lost!r} (pump lease left: {lease_left} s); starting it again")
    restart_s = env.start_worker()
    next_at = None
    while time.monotonic() - killed_at < WAIT_S:
        names = _sandbox_channel_names(env)
        if any(name.startswith(other) for name in names for other in NAMES if other != lost):
            next_at = time.monotonic()
            break
        time.sleep(0.25)
    if next_at is None:
        stall = None
        note = f"no next create within {WAIT_S:g} s of the kill"
    else:
        stall = round(next_at - killed_at - restart_s, 1)
        note = f"{next_at - killed_at:.1f} s from the kill, restart {restart_s:.1f} s"
    log(f"stall: {note}")
    result.add(
        "create queue stall after a lost create",
        stall,
        "s",
        f"<= {MAX_STALL_S:g}",
        stall is not None and stall <= MAX_STALL_S,
        note=note,
    )
    result.add("pump lease left at the kill", lease_left, "s")
    states = dict(Channel.objects.filter(name__in=NAMES).values_list("name", "state"))
    result.details = {
        "create_delay_fault_s": STALL_DELAY_S,
        "lost": lost,
        "restart_s": round(restart_s, 2),
        "kill_to_next_create_s": None if next_at is None else round(next_at - killed_at, 2),
        "pump_lease_left_at_kill_s": lease_left,
        "states_afterwards": states,
        "sandbox_channels": _sandbox_channel_names(env),
    }
    return result
