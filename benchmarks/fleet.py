"""The fleet: the channels (and ledger rows) the scale benchmarks share, seeded once and grown in steps,
and registered in the sandbox so that its gate knows every one of them.

Channel `i` has the Whapi id `BENCHF-<i:05d>`, a gate token, a webhook secret of its own (the
portal's default: random, encrypted at rest), state connected with the number `1415555<i:05d>`,
its settings verified, and a project of one of the fleet's customers. The layout keeps one customer
(`BIG_CUSTOMER`, with a member who owns it) at 10 channels while the fleet has 100, and at half the
fleet once it has its full size, 5,000 of 10,000 by default (`customer_index`); the others share
the rest. Each step adds channels to reach a size (`fleet_grow`), so pages can be measured at 100
and then at 10,000 in one database.

The sandbox gets every channel by `POST /_sandbox/channels`: token, linked phone (or none), and the
settings the portal would have configured (`configure.desired_settings`), so health checks and
settings checks against it find what they expect.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from benchmarks.environment import Environment, log

PREFIX = "BENCHF-"
NAME_PREFIX = "fleet "
CUSTOMERS = 1_000
BIG_CUSTOMER = 0
# The big customer's channels: 10 of the first 100, then enough of the following ones for half the fleet.
SMALL, BIG_SMALL = 100, 10
MEMBER_USERNAME = "bench-owner"
REGISTER_BATCH = 500
SEED_BATCH = 2_000


@dataclass
class Fleet:
    """What the fleet holds now; kept in `env.shared["fleet"]`."""

    size: int = 0
    full_size: int = 10_000  # the size the layout is made for (--fleet)
    started_at: int = 0  # the health `start_at` every channel was seeded with (epoch seconds)
    customers: list[Any] = field(default_factory=list)  # Project rows, by customer index
    ledger_rows: int = 0
    channels: list[tuple[str, str, str]] = field(default_factory=list)  # (whapi id, secret, number) by index


def whapi_id(index: int) -> str:
    return f"{PREFIX}{index:05d}"


def number(index: int) -> str:
    return f"1415555{index:05d}"


def customer_index(index: int, full_size: int) -> int:
    """Which customer channel `index` belongs to (see the module docstring)."""
    if index < BIG_SMALL or SMALL <= index < SMALL + full_size // 2 - BIG_SMALL:
        return BIG_CUSTOMER
    return 1 + index % (CUSTOMERS - 1)


def fleet_of(env: Environment) -> Fleet:
    return env.shared.setdefault("fleet", Fleet(full_size=env.args.fleet))


def fleet_grow(env: Environment, size: int) -> Fleet:
    """Seed channels until the fleet has `size` (nothing when it has), register them in the sandbox."""
    fleet = fleet_of(env)
    if fleet.size >= size:
        return fleet
    started = time.monotonic()
    if not fleet.customers:
        _seed_customers(fleet)
    _seed_channels(env, fleet, fleet.size, size)
    sandbox_register(env, range(fleet.size, size), fleet, linked=True)
    fleet.size = size
    _analyze()
    log(f"fleet: {size:,} channels over {CUSTOMERS:,} customers ({time.monotonic() - started:.1f} s)")
    return fleet


def _seed_customers(fleet: Fleet) -> None:
    from django.contrib.auth import get_user_model

    from channels_app.models import Customer, Membership, Project

    customers = Customer.objects.bulk_create(
        [Customer(name=f"{NAME_PREFIX}customer {index:04d}", channel_quota=10_000) for index in range(CUSTOMERS)]
    )
    fleet.customers = Project.objects.bulk_create(
        [
            Project(whapi_id=f"BENCHFLEET{index:010d}", name=f"{NAME_PREFIX}project {index:04d}", customer=customer)
            for index, customer in enumerate(customers)
        ]
    )
    owner = get_user_model().objects.create_user(MEMBER_USERNAME, "owner@fleet.example", None)
    Membership.objects.create(customer=customers[BIG_CUSTOMER], user=owner, role=Membership.Role.OWNER)
    fleet.started_at = int(time.time()) - 3600


def _seed_channels(env: Environment, fleet: Fleet, start: int, stop: int) -> None:
    from django.utils import timezone

    from channels_app.models import Channel

    now = timezone.now()
    for batch_start in range(start, stop, SEED_BATCH):
        batch = []
        for index in range(batch_start, min(stop, batch_start + SEED_BATCH)):
            project = fleet.customers[customer_index(index, fleet.full_size)]
            batch.append(
                Channel(
                    project=project,
                    name=f"{NAME_PREFIX}{index:05d}",
                    whapi_id=whapi_id(index),
                    whapi_project_id=project.whapi_id,
                    token=f"{index:032d}",
                    api_url=f"{env.sandbox_url}/gate/",
                    whapi_status="active",
                    mode=Channel.Mode.LIVE,
                    state=Channel.State.CONNECTED,
                    health_status="AUTH",
                    health_code=4,
                    health_start_at=fleet.started_at,
                    health_uptime=0,
                    connected_number=number(index),
                    connected_name="Bench",
                    connected_at=now,
                    last_confirmed_at=now,
                    health_check_due_at=now + timedelta(days=1),
                    webhooks_applied_at=now,
                    webhooks_verified_at=now,
                    settings_check_due_at=now + timedelta(days=1),
                    active_till=now + timedelta(days=365),
                    requested_at=now - timedelta(seconds=index),
                )
            )
        Channel.objects.bulk_create(batch)
    # Read the secrets back through the ORM: they went through encryption and must decrypt again.
    stored = Channel.objects.filter(whapi_id__startswith=PREFIX, pk__isnull=False).order_by("whapi_id")
    fleet.channels = [(channel.whapi_id, channel.webhook_secret, number(i)) for i, channel in enumerate(stored)]


def sandbox_register(
    env: Environment, indexes: range, fleet: Fleet, *, linked: bool, started_at: int | None = None
) -> None:
    """(Re-)register fleet channels in the sandbox: phone linked (health AUTH) or not (QR), silently."""
    from channels_app.configure import desired_settings
    from channels_app.models import Channel

    for batch_start in range(indexes.start, indexes.stop, REGISTER_BATCH):
        ids = [whapi_id(index) for index in range(batch_start, min(indexes.stop, batch_start + REGISTER_BATCH))]
        channels = Channel.objects.filter(whapi_id__in=ids).order_by("whapi_id")
        items = [
            {
                "id": channel.whapi_id,
                "token": channel.token,
                "name": channel.name,
                "mode": "live",
                "user": {"id": number(int(channel.whapi_id[len(PREFIX) :])), "name": "Bench"} if linked else None,
                "settings": desired_settings(channel),
                "started_at": started_at or fleet.started_at,
            }
            for channel in channels
        ]
        post_json(f"{env.sandbox_url}/_sandbox/channels", {"channels": items})


def fleet_reset(env: Environment, fleet: Fleet) -> None:
    """Every fleet channel connected again with its number, nothing pending, next checks a day away:
    the starting point of a storm, whatever the benchmark before left."""
    from django.db.models import Value
    from django.db.models.functions import Concat, Substr
    from django.utils import timezone

    from channels_app.models import Channel

    now = timezone.now()
    Channel.objects.filter(whapi_id__startswith=PREFIX).update(
        state=Channel.State.CONNECTED,
        health_status="AUTH",
        connected_number=Concat(Value("1415555"), Substr("whapi_id", len(PREFIX) + 1, 5)),
        disconnect_reported_at=None,
        last_error="",
        error_source="",
        status_stale=False,
        last_confirmed_at=now,
        health_check_due_at=now + timedelta(days=1),
        settings_check_due_at=now + timedelta(days=1),
    )


def ledger_grow(env: Environment, rows: int) -> int:
    """Seed ledger rows (health callbacks of fleet channels, spread over the last 30 days) until the
    ledger holds `rows`; returns the seconds it took.

    Written with PostgreSQL's COPY (psycopg's `copy`), the one bulk path fast enough for a million rows
    within the run's time (the ORM's bulk_create takes about ten times as long on this machine).
    """
    from django.db import connection
    from django.utils import timezone

    from channels_app.models import Channel, WebhookEvent

    fleet = fleet_of(env)
    have = WebhookEvent.objects.count()
    if have >= rows:
        return 0
    started = time.monotonic()
    now = timezone.now()
    size = max(1, fleet.size)
    ids = [whapi_id(index) for index in range(size)]
    pks = dict(Channel.objects.filter(whapi_id__in=ids).values_list("whapi_id", "pk"))
    spread = 30 * 86_400 / rows
    columns = (
        "channel_id",
        "whapi_channel_id",
        "event_type",
        "event_method",
        "body",
        "received_at",
        "outcome",
        "detail",
    )
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        copy_sql = f"COPY {WebhookEvent._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for n in range(have, rows):
                channel = ids[n % size]
                body = {
                    "health": {"start_at": fleet.started_at, "uptime": n, "status": {"code": 4, "text": "AUTH"}},
                    "event": {"type": "channel", "event": "post"},
                    "channel_id": channel,
                }
                copy.write_row(
                    (
                        pks.get(channel),
                        channel,
                        "channel",
                        "post",
                        json.dumps(body, separators=(",", ":")),
                        now - timedelta(seconds=(rows - n) * spread + 3600),
                        WebhookEvent.Outcome.APPLIED.value,
                        "",
                    )
                )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {WebhookEvent._meta.db_table}")
    fleet.ledger_rows = rows
    took = time.monotonic() - started
    log(f"ledger: {rows:,} rows ({took:.1f} s)")
    return math.ceil(took)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("channels_app_channel", "channels_app_project", "channels_app_customer"):
            cursor.execute(f"ANALYZE {table}")


def post_json(url: str, data: Any, timeout: float = 60) -> Any:
    request = urllib.request.Request(  # noqa: S310 (the sandbox's local URL)
        url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def get_json(url: str, timeout: float = 60) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")
