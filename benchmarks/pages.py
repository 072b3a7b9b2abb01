"""Pages at a small and a large size of the same database: what a customer and staff wait for.

In this process with Django's test client against the bench database (PostgreSQL), after ANALYZE:

- the customer dashboard `/app/c/<customer code>/` and its live update `status.json`, signed in as
  the customer's owner, for the largest customer of each seeding step: 10 channels in a fleet of
  100, then 5,000 in a fleet of 10,000 (`benchmarks.fleet`): median time and bytes, each at most
  1.5 times the small size's;
- the REST API's channel list `GET /api/v1/customers/<code>/channels?limit=10` (its first page) and
  one channel `GET /api/v1/channels/<code>`, with a read-only key of that customer, at the same two
  sizes: median time at most 1.5 times the small size's and the same number of queries;
- the staff console's channel list at 100 and 10,000 channels: median time at most 1.5 times and
  the same number of queries; filtered and searched lists without targets;
- the staff console's ledger (webhook events) list at 100,000 and 1,000,000 rows: median time at
  most 1.5 times.

Staff sign in with two factors when DJANGO_DEBUG is off: the superuser gets a recovery-code device
and the session is marked verified with it, as a sign-in with a code would.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks import Result, benchmark, positive_int
from benchmarks.environment import Environment, log
from benchmarks.fleet import PREFIX, SMALL, fleet_grow

MAX_RATIO = 1.5
MEASURE_BUDGET_S = 8.0  # timed requests per page and size: as many as fit, 5 to 25
# The API's list is measured on a first page as long as the small customer's whole list, so that both
# sizes answer the same items and the figure is about the customer's size, not the page's length.
API_PAGE = 10
ADMIN_CHANNEL_PAGES = {
    "filter: in error": "?state__exact=error",
    "filter: ending within 7 days": "?expiring_within=7",
    "search: customer name": "?q=customer+0042",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pages")
    group.add_argument("--ledger-small", type=positive_int, default=100_000, help="ledger rows at the small size")
    group.add_argument("--ledger-large", type=positive_int, default=1_000_000, help="ledger rows at the large size")


def measure(client, path: str) -> dict:
    """Median and p90 time (ms), bytes and query count of GET `path`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):  # warm-up: templates, the session, PostgreSQL's caches
        client.get(path)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    first_s = time.perf_counter() - started
    counts = [len(queries.captured_queries)]  # read now: the next request clears the log
    # The fewest of three: an API request also writes now and then (a key's "last used" once a
    # minute, the first request of a rate-limit window), which is not what the figure is about.
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        counts.append(len(queries.captured_queries))
    query_count = min(counts)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    repeats = max(5, min(25, int(MEASURE_BUDGET_S / max(first_s, 0.001))))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[max(0, int(len(times) * 0.9) - 1)], 1),
        "bytes": len(response.content),
        "queries": query_count,
        "repeats": repeats,
    }


def _staff_client():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_static.models import StaticDevice

    staff = get_user_model().objects.create_superuser("bench-staff", "staff@fleet.example", None)
    device = StaticDevice.objects.create(user=staff, name="bench")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _member_client(username: str):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _api_client(customer):
    """A client bearing a read-only key of `customer`, as the customer's own system would."""
    from django.test import Client

    from api.keys import api_key_create
    from channels_app.models import AuditLog

    _, key = api_key_create(name="bench", customer=customer, can_write=False, actor=None, source=AuditLog.Source.SYSTEM)
    return Client(HTTP_HOST="127.0.0.1", headers={"Authorization": f"Bearer {key}"})


def _paths(customer) -> dict[str, str]:
    from django.urls import reverse

    from channels_app import access

    channels = reverse("admin:channels_app_channel_changelist")
    paths = {
        "dashboard": reverse("channels_app:dashboard", args=[customer.code]),
        "dashboard status.json": reverse("channels_app:dashboard_status", args=[customer.code]),
        "api channel list": f"/api/v1/customers/{customer.code}/channels?limit={API_PAGE}",
        "api channel get": f"/api/v1/channels/{access.channels_for(customer).values_list('code', flat=True).first()}",
        "admin channel list": channels,
        "admin ledger list": reverse("admin:channels_app_webhookevent_changelist"),
    }
    paths.update({f"admin channel {name}": channels + query for name, query in ADMIN_CHANNEL_PAGES.items()})
    return paths


@benchmark(
    "pages",
    "Dashboard, its status.json, the API's channel list and get, admin channel and ledger lists: small vs large",
    add_arguments=add_arguments,
)
def run(env: Environment) -> Result:
    from channels_app.models import Channel

    args = env.args
    result = Result()
    from channels_app.models import WebhookEvent

    if Channel.objects.filter(whapi_id__startswith=PREFIX).count() > SMALL:
        result.error = "the fleet is larger than the small size already; run pages before mix and storms"
        return result
    sizes = {}
    figures: dict[str, dict[str, dict]] = {}
    admin = _staff_client()
    steps = (("small", SMALL, args.ledger_small), ("large", args.fleet, args.ledger_large))
    for label, fleet_size, ledger_rows in steps:
        fleet = fleet_grow(env, fleet_size, ledger_rows=ledger_rows)
        customer, owner = fleet.big_customers[-1]
        member = _member_client(owner)
        api = _api_client(customer)
        paths = _paths(customer)
        sizes[label] = {
            "channels": Channel.objects.count(),
            "customer_channels": Channel.objects.filter(project__customer=customer).count(),
            "ledger_rows": WebhookEvent.objects.count(),
        }
        figures[label] = {}
        for name, path in paths.items():
            client = member if name.startswith("dashboard") else api if name.startswith("api") else admin
            figures[label][name] = measure(client, path)
        log(
            f"pages @{label} {sizes[label]}: "
            + ", ".join(f"{name} {page['median_ms']} ms" for name, page in figures[label].items())
        )

    small, large = sizes["small"], sizes["large"]
    size_label = {
        "dashboard": ("customer_channels", "channels"),
        "dashboard status.json": ("customer_channels", "channels"),
        "api channel list": ("customer_channels", "channels"),
        "api channel get": ("customer_channels", "channels"),
        "admin channel list": ("channels", "channels"),
        "admin ledger list": ("ledger_rows", "rows"),
    }
    for name, (key, unit) in size_label.items():
        one, other = figures["small"][name], figures["large"][name]
        at = f"@{small[key]:,} vs @{large[key]:,} {unit}"
        ratio = other["median_ms"] / one["median_ms"] if one["median_ms"] else 0.0
        result.add(
            f"{name}: time",
            other["median_ms"],
            "ms",
            f"<= {MAX_RATIO:g} x {one['median_ms']:.1f}",
            ratio <= MAX_RATIO,
            note=f"{at}; {ratio:.2f} x; p90 {other['p90_ms']} ms",
        )
        if name.startswith("dashboard"):
            bytes_ratio = other["bytes"] / one["bytes"] if one["bytes"] else 0.0
            result.add(
                f"{name}: bytes",
                other["bytes"],
                "B",
                f"<= {MAX_RATIO:g} x {one['bytes']:,}",
                bytes_ratio <= MAX_RATIO,
                note=f"{bytes_ratio:.2f} x",
            )
        if name == "admin channel list" or name.startswith("api"):
            result.add(
                f"{name}: queries",
                other["queries"],
                "queries",
                f"= {one['queries']}",
                other["queries"] <= one["queries"],
                note=at,
            )
    for name in ADMIN_CHANNEL_PAGES:
        one, other = figures["small"][f"admin channel {name}"], figures["large"][f"admin channel {name}"]
        result.add(
            f"admin channel {name}",
            other["median_ms"],
            "ms",
            note=f"@{small['channels']:,}: {one['median_ms']} ms; queries {one['queries']} -> {other['queries']}",
        )
    result.details = {
        "sizes": sizes,
        "pages": {name: {label: figures[label][name] for label in figures} for name in paths},
        "how": "in-process Django test client, first page, PostgreSQL after ANALYZE; median of 5-25 requests",
    }
    return result
