"""The staff console's channel list at 100 and at 10,000 channels (spread over 1,000 customers):
render time and query count of the first page, in this process with Django's test client against
the bench database (PostgreSQL), logged in as a superuser.

Targets: the same number of queries at both sizes (nothing is fetched per row), and the median
render time at the large size at most 1.5 times the one at the small size. Filtered and searched
pages are measured too, without targets. The seeded rows are removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from benchmarks import Result, benchmark
from benchmarks.environment import Environment, log

PREFIX = "bench-admin "
MAX_QUERY_GROWTH = 0
MAX_TIME_RATIO = 1.5
# Pages measured at both sizes: the default list (with targets) and common staff views (figures only).
PAGES = {
    "list": "",
    "filter: in error": "?state__exact=error",
    "filter: ending within 7 days": "?expiring_within=7",
    "search: customer name": "?q=customer+0042",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("admin_changelist")
    group.add_argument("--admin-small", type=int, default=100, help="channels at the small size (100)")
    group.add_argument("--admin-large", type=int, default=10_000, help="channels at the large size (10,000)")
    group.add_argument("--admin-customers", type=int, default=1_000, help="customers the channels belong to (1,000)")
    group.add_argument("--admin-repeats", type=int, default=25, help="timed requests per page and size (25)")


def _seed_customers(count: int) -> list:
    from channels_app.models import Customer, Project

    customers = Customer.objects.bulk_create(
        [Customer(name=f"{PREFIX}customer {index:04d}", channel_quota=50) for index in range(count)]
    )
    return Project.objects.bulk_create(
        [
            Project(whapi_id=f"BENCHADMIN{index:010d}", name=f"{PREFIX}project {index:04d}", customer=customer)
            for index, customer in enumerate(customers)
        ]
    )


def _seed_channels(projects: list, start: int, count: int) -> None:
    """`count` channels in a realistic mix of states, round-robin over the projects."""
    from django.utils import timezone

    from channels_app.models import Channel

    State = Channel.State
    states = [State.CONNECTED] * 6 + [State.WAITING_SCAN, State.DISCONNECTED, State.ERROR, State.EXPIRED]
    now = timezone.now()
    batch = []
    for index in range(start, start + count):
        state = states[index % len(states)]
        batch.append(
            Channel(
                project=projects[index % len(projects)],
                name=f"{PREFIX}channel {index:05d}",
                whapi_id=f"BENCHA-{index:05d}",
                whapi_project_id=projects[index % len(projects)].whapi_id,
                api_url="https://gate.whapi.test/",
                token=f"{index:032d}",
                state=state,
                mode="live" if index % 3 else "trial",
                health_status={State.CONNECTED: "AUTH", State.ERROR: "ERROR"}.get(state, "QR"),
                connected_number=f"1415{index:07d}" if state == State.CONNECTED else "",
                active_till=now + timedelta(days=(index % 45) - 5),
                # Recent enough that the worker's periodic health poll and settings check (running
                # when other benchmarks need the worker) leave these rows alone while we measure.
                last_confirmed_at=now - timedelta(seconds=index % 600),
                webhooks_verified_at=now,
                status_stale=index % 17 == 0,
                last_error="Whapi reports ERROR for this channel." if state == State.ERROR else "",
                requested_at=now - timedelta(seconds=index),
            )
        )
        if len(batch) == 1000:
            Channel.objects.bulk_create(batch)
            batch = []
    Channel.objects.bulk_create(batch)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("channels_app_channel", "channels_app_project", "channels_app_customer"):
            cursor.execute(f"ANALYZE {table}")


def _measure(client, path: str, repeats: int) -> dict:
    """Median and p90 render time (ms) over `repeats` requests, and the query count of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm-up: templates, the session, PostgreSQL's caches
        client.get(path)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    # Read now: the next request clears the connection's query log.
    query_count = len(queries.captured_queries)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(len(times) * 0.9) - 1], 1),
        "queries": query_count,
        "rows_on_page": response.content.count(b'class="action-select"'),
    }


def _cleanup() -> None:
    from django.contrib.auth import get_user_model

    from channels_app.models import Channel, Customer, Project

    Channel.objects.filter(name__startswith=PREFIX).delete()
    Project.objects.filter(name__startswith=PREFIX).delete()
    Customer.objects.filter(name__startswith=PREFIX).delete()
    get_user_model().objects.filter(username="bench-admin").delete()


@benchmark("admin_changelist", "Staff console channel list: 100 vs 10,000 channels", add_arguments=add_arguments)
def run(env: Environment) -> Result:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from channels_app.models import Channel

    args = env.args
    small, large, repeats = args.admin_small, args.admin_large, args.admin_repeats
    result = Result()
    existing = Channel.objects.count()
    if existing >= small:
        result.error = f"the bench database already holds {existing} channels; run with --only admin_changelist"
        return result
    user = get_user_model().objects.create_superuser("bench-admin", "bench@partner.example", "unused-password")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    base = reverse("admin:channels_app_channel_changelist")
    figures: dict[int, dict[str, dict]] = {}
    try:
        started = time.monotonic()
        projects = _seed_customers(args.admin_customers)
        for size, already in ((small, existing), (large, small)):
            seeded = time.monotonic()
            _seed_channels(projects, already, size - already)
            _analyze()
            total, took = Channel.objects.count(), time.monotonic() - seeded
            log(f"admin_changelist: {total} channels over {len(projects)} customers (seeded in {took:.1f} s)")
            figures[size] = {name: _measure(client, base + query, repeats) for name, query in PAGES.items()}
            log(f"admin_changelist @{size}: {figures[size]['list']}")
        seed_s = round(time.monotonic() - started, 1)
    finally:
        _cleanup()

    at_small, at_large = figures[small]["list"], figures[large]["list"]
    result.add(f"list queries @{small:,}", at_small["queries"], "queries")
    result.add(
        f"list queries @{large:,}",
        at_large["queries"],
        "queries",
        f"= @{small:,} ({at_small['queries']})",
        at_large["queries"] - at_small["queries"] <= MAX_QUERY_GROWTH,
    )
    result.add(f"list median @{small:,}", at_small["median_ms"], "ms", note=f"p90 {at_small['p90_ms']} ms")
    ratio = at_large["median_ms"] / at_small["median_ms"]
    result.add(
        f"list median @{large:,}",
        at_large["median_ms"],
        "ms",
        f"<= {MAX_TIME_RATIO:g} x @{small:,} ({MAX_TIME_RATIO * at_small['median_ms']:.1f})",
        ratio <= MAX_TIME_RATIO,
        note=f"p90 {at_large['p90_ms']} ms; ratio {ratio:.2f}",
    )
    for name in PAGES:
        if name == "list":
            continue
        one, other = figures[small][name], figures[large][name]
        result.add(
            f"{name} @{large:,}",
            other["median_ms"],
            "ms",
            note=f"@{small:,}: {one['median_ms']} ms; queries {one['queries']} -> {other['queries']}",
        )
    result.details = {
        "sizes": {"small": small, "large": large, "customers": args.admin_customers},
        "repeats": repeats,
        "pages": {name: {str(size): figures[size][name] for size in figures} for name in PAGES},
        "seed_and_measure_s": seed_s,
        "how": "in-process Django test client, superuser, first page (100 rows), PostgreSQL after ANALYZE",
    }
    return result
