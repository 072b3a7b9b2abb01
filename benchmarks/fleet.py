"""The fleet: the channels (and ledger rows) the scale benchmarks share, seeded with the portal's own
`manage.py seed_demo --data-only` in steps, and registered in the sandbox so its gate knows each one.

Each step is one seed_demo run with its own tag (`BENCHA`, `BENCHB`, …: Whapi ids `BENCHA-00000`,
…): customers with a project and an owner login each (`--members`), channels in seed_demo's state
mix (mostly connected; some waiting for a scan, disconnected, in error, stopped, expired, deleted or
queued), each with its own token and webhook secret, health columns and checks due as a running
fleet has them, and `--callbacks` ledger rows. The first step's largest customer has 10 of 100
channels, the second's 5,000 of the 9,900 that make the fleet 10,000 (`--largest`): the dashboard is
measured for the one and then the other (`Fleet.big_customers`). Steps add up: pages measure at 100
and then at 10,000 channels in one database.

After each step every channel present in Whapi (a Whapi id, not deleted) is registered in the
sandbox by `POST /_sandbox/channels`: its token, its phone when connected, a forced ERROR or STOP
where the portal has one, its health `start_at`, and the settings the portal configures
(`configure.desired_settings`), so the worker's checks (due from seeding on) find what they expect.

The callback benchmarks start from `fleet_reset`: every present channel connected with the number
`number(whapi_id)` and a common health `start_at`, nothing pending; the sandbox agrees.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from benchmarks.environment import Environment, log

PREFIX = "BENCH"  # of every step's tag, so of every fleet channel's Whapi id
TAGS = ("BENCHA", "BENCHB", "BENCHC", "BENCHD")
SMALL = 100
SMALL_LARGEST = 10
SMALL_CUSTOMERS = 10
CHANNELS_PER_CUSTOMER = 10  # the other steps: customers = channels / 10, as 1,000 for 10,000
REGISTER_BATCH = 500
PHONE = re.compile(r"[0-9]{7,15}")  # what Whapi (and the sandbox) take as a linked phone
FORCED = {"error": "ERROR", "stopped": "STOP", "expired": "STOP"}


@dataclass
class Fleet:
    """What the fleet holds now; kept in `env.shared["fleet"]`."""

    size: int = 0  # channels seeded
    steps: int = 0
    started_at: int = 0  # the health `start_at` of every channel since the last fleet_reset
    ledger_rows: int = 0  # ledger rows seeded
    big_customers: list[tuple[Any, str]] = field(default_factory=list)  # (Customer, owner username) by step
    channels: list[tuple[str, str, str]] = field(default_factory=list)  # present: (whapi id, secret, number)


def number(whapi_id: str) -> str:
    """The phone the fleet links to a channel: 1, the step's letter as a digit, the id's base-36 suffix
    as 8 decimal digits (`BENCHB-0000A` → 1200000010)."""
    tag, suffix = whapi_id.rsplit("-", 1)
    return f"1{ord(tag[-1]) - ord('A') + 1}{int(suffix, 36):08d}"


# How long checks the sweep has claimed can still take to land: a loop asks its claim (up to
# checks.CLAIM_BATCH channels of each kind) checks.ASKS_PER_LOOP at a time, health first, then
# settings: four gate calls one after the other per lane at the sandbox's latency (0.8 s; a retry,
# channels_app.whapi.transport, adds 0.5 s or 1 s), and the writes.
IN_FLIGHT_CHECKS_S = 6.0


def checks_quiet() -> None:
    """No check due for a day from now on, and time for those in flight to land: a check claimed
    before the caller changes the fleet would land after it, with what the sandbox said then (a health
    report newer than the one a benchmark sends next, against which its callbacks look stale)."""
    from django.utils import timezone

    # The alerts sweep makes a check due for a disconnect it cannot tell yet: none of those either.
    present_update(
        health_check_due_at=timezone.now() + timedelta(days=1),
        settings_check_due_at=timezone.now() + timedelta(days=1),
        disconnect_alert_due_at=None,
    )
    time.sleep(IN_FLIGHT_CHECKS_S)


def fleet_of(env: Environment) -> Fleet:
    return env.shared.setdefault("fleet", Fleet())


def present():
    """The fleet's channels that exist in Whapi: a Whapi id, not deleted."""
    from channels_app.models import Channel

    return Channel.objects.filter(whapi_id__startswith=PREFIX).exclude(state=Channel.State.DELETED)


def present_update(**fields: Any) -> int:
    """`present().update(**fields)`, tried again when PostgreSQL picks it as a deadlock's victim: one
    UPDATE of the whole fleet locks its rows in table order, while the worker's transactions lock a
    few channels each in id order (a checks loop's answers, the applier's batch)."""
    from django.db import DatabaseError

    for attempt in range(5):
        try:
            return present().update(**fields)
        except DatabaseError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    return 0


def fleet_grow(env: Environment, size: int, *, ledger_rows: int = 0) -> Fleet:
    """One seed_demo step up to `size` channels and `ledger_rows` ledger rows (nothing when the fleet
    has them), and the new channels registered in the sandbox."""
    fleet = fleet_of(env)
    if fleet.size >= size and fleet.ledger_rows >= ledger_rows:
        return fleet
    started = time.monotonic()
    tag = TAGS[fleet.steps]
    channels = max(0, size - fleet.size)
    first = fleet.steps == 0 and size <= SMALL
    customers = SMALL_CUSTOMERS if first else max(1, channels // CHANNELS_PER_CUSTOMER)
    largest = SMALL_LARGEST if first else size // 2
    callbacks = max(0, ledger_rows - fleet.ledger_rows)
    command = ["seed_demo", "--data-only", "--members", "--tag", tag, "--api-url", f"{env.sandbox_url}/gate/"]
    command += ["--channels", str(channels), "--customers", str(customers), "--largest", str(min(largest, channels))]
    if callbacks:
        command += ["--callbacks", str(callbacks)]
    env.manage(*command, timeout=900)
    fleet.steps += 1
    fleet.size += channels
    fleet.ledger_rows += callbacks
    fleet.big_customers.append(_largest_customer(tag))
    sandbox_register(env, present().filter(whapi_id__startswith=tag + "-"))
    _vacuum_analyze()
    _read_channels(fleet)
    log(
        f"fleet: {fleet.size:,} channels ({len(fleet.channels):,} present in Whapi), {fleet.ledger_rows:,} ledger "
        f"rows; step {tag} in {time.monotonic() - started:.1f} s"
    )
    return fleet


def _largest_customer(tag: str) -> tuple[Any, str]:
    """The step's first customer (seed_demo gives it `--largest` channels) and its owner's username."""
    from channels_app.models import Customer, Membership

    customer = Customer.objects.filter(projects__channels__whapi_id__startswith=tag + "-").order_by("pk").first()
    owner = Membership.objects.filter(customer=customer, role=Membership.Role.OWNER).select_related("user").first()
    return customer, owner.user.username


def _read_channels(fleet: Fleet) -> None:
    # Read the secrets through the ORM: they went through encryption and must decrypt again.
    fleet.channels = [
        (channel.whapi_id, channel.webhook_secret, number(channel.whapi_id))
        for channel in present().order_by("whapi_id").only("whapi_id", "webhook_secret")
    ]


def sandbox_register(env: Environment, channels, *, linked: bool | None = None, started_at: int | None = None) -> None:
    """(Re-)register channels in the sandbox, silently. `linked` None: as the portal has them (phone
    when connected, ERROR or STOP forced where it has those); True: all linked (AUTH); False: none (QR).
    `started_at` None: each channel's known health `start_at`."""
    from channels_app.configure import desired_settings

    rows = list(channels.order_by("whapi_id"))
    for batch_start in range(0, len(rows), REGISTER_BATCH):
        items = []
        for channel in rows[batch_start : batch_start + REGISTER_BATCH]:
            phone = channel.connected_number if PHONE.fullmatch(channel.connected_number) else number(channel.whapi_id)
            is_linked = channel.state == "connected" if linked is None else linked
            item = {
                "id": channel.whapi_id,
                "token": channel.token,
                "name": channel.name,
                "mode": channel.mode or "live",
                "user": {"id": phone, "name": "Bench"} if is_linked else None,
                "settings": desired_settings(channel),
            }
            if linked is None and channel.state in FORCED:
                item["forced_status"] = FORCED[channel.state]
            start = started_at or channel.health_start_at
            if start:
                item["started_at"] = start
            items.append(item)
        post_json(f"{env.sandbox_url}/_sandbox/channels", {"channels": items})


def fleet_reset(env: Environment, fleet: Fleet, *, linked: bool = True) -> None:
    """Every present fleet channel connected with its number and a common health `start_at`, nothing
    pending, next checks a day away; the sandbox agrees (`linked`) or has the phones logged out."""
    from django.utils import timezone

    from channels_app.models import Channel

    checks_quiet()
    now = timezone.now()
    fleet.started_at = int(time.time() - env.options.init_delay) - 3600
    present_update(
        state=Channel.State.CONNECTED,
        health_status="AUTH",
        health_code=4,
        health_start_at=fleet.started_at,
        health_uptime=0,
        connected_name="Bench",
        disconnect_reported_at=None,
        last_error="",
        error_source="",
        status_stale=False,
        stopped=False,
        active_till=now + timedelta(days=365),
        last_confirmed_at=now,
        health_check_due_at=now + timedelta(days=1),
        settings_check_due_at=now + timedelta(days=1),
    )
    channels = list(present().only("pk", "whapi_id"))
    for channel in channels:
        channel.connected_number = number(channel.whapi_id)
    Channel.objects.bulk_update(channels, ["connected_number"], batch_size=2000)
    sandbox_register(env, present(), linked=linked, started_at=fleet.started_at)


def _vacuum_analyze() -> None:
    """VACUUM (ANALYZE) the tables seed_demo filled: statistics, as seed_demo leaves them, and the
    visibility map, which autovacuum keeps up in a running database and a fresh bulk load lacks (without
    it a count such as the dashboard's quota line visits every row instead of reading the index alone)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "channels_app_channel",
            "channels_app_project",
            "channels_app_customer",
            "channels_app_webhookevent",
        ):
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def post_json(url: str, data: Any, timeout: float = 60) -> Any:
    request = urllib.request.Request(  # noqa: S310 (the sandbox's local URL)
        url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"POST {url} answered {exc.code}: {exc.read()[:500]!r}") from None


def get_json(url: str, timeout: float = 60) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")
