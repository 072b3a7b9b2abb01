"""Demo data: the logins and customer `make run` uses, and, on request, a fleet at scale.

Without options it creates a staff login, a customer ("Acme Corp") and that customer's owner login.
Idempotent: running it again changes nothing and prints the same credentials. The demo passwords
are public, so it refuses to run with DJANGO_DEBUG off.

`--channels N --customers M` adds a fleet as a live portal would hold it, written with
`bulk_create` in batches (no per-row saves, no signals):

- M customers, each with one project (a distinct Whapi id) and a quota that fits its channels;
  with `--members`, one owner login per customer (username `<tag>-owner-0001`, ...);
- N channels over them, skewed like a real partner's book: `--largest K` gives the first customer K
  channels, the rest are shared by the others in proportion to 1/rank (a few big customers, a long
  tail of small ones);
- channel states in a fixed mix (see STATE_MIX: mostly connected, some waiting for a scan or
  disconnected, a few in error, stopped, expired, deleted or queued), each channel with a distinct
  Whapi id, token and webhook secret (encrypted at rest like any other), `--api-url` (default: the
  gate of WHAPI_PARTNER_URL, i.e. the built-in sandbox's under `make run` and the benchmarks; never
  Whapi's real gate),
  health columns and the next checks due as a running fleet has them (health due 15 minutes after
  the last confirmation, so spread over the next 15 minutes; settings due spread over the next
  6 hours), and a few timeline rows each. Queued channels have no Whapi id yet: a running worker
  will try to create them.
- `--callbacks K`: K webhook ledger rows for those channels over the last 90 days (committed in
  batches of 10,000).

Each such run is additive: its rows carry a run tag of six capital letters (printed; `--tag` picks
it), which makes the Whapi ids `<TAG>-00000`, `<TAG>-00001`, ... (Whapi's id format) and the project ids unique,
so a second run adds a second fleet instead of failing. `--data-only` creates no demo logins and
gives member logins unusable passwords, and so runs with DJANGO_DEBUG off (the benchmarks run the
portal that way).

What the Whapi sandbox needs to know of the seeded channels — (whapi_id, token, api_url), plus the
webhook secret to post callbacks — comes from `--export FILE` (one JSON object per line), or from
the ORM, which decrypts the token::

    Channel.objects.filter(whapi_id__startswith=f"{tag}-").values_list("whapi_id", "token", "api_url")
"""

import json
import math
import random
import secrets
import string
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from channels_app.mirror import project_mirror
from channels_app.models import (
    Channel,
    ChannelEvent,
    Customer,
    Membership,
    Project,
    WebhookEvent,
    new_webhook_secret,
)
from channels_app.whapi import WhapiError, partner_client

STAFF = ("staff", "staff-demo-password")
CUSTOMER_USER = ("acme", "acme-demo-password")
CUSTOMER_NAME = "Acme Corp"
# The password of the seeded member logins, when the run may create public-password logins.
MEMBER_PASSWORD = "seed-demo-password"

State = Channel.State
# Share of each state in a seeded fleet (per cent).
STATE_MIX = {
    State.CONNECTED: 72,
    State.WAITING_SCAN: 8,
    State.DISCONNECTED: 8,
    State.ERROR: 3,
    State.STOPPED: 2,
    State.EXPIRED: 3,
    State.DELETED: 2,
    State.QUEUED: 2,
}
HEALTH = {  # state -> Whapi's health status (text, code) as last reported
    State.CONNECTED: ("AUTH", 4),
    State.WAITING_SCAN: ("QR", 3),
    State.DISCONNECTED: ("QR", 3),
    State.ERROR: ("ERROR", 5),
    State.STOPPED: ("STOP", 7),
    State.EXPIRED: ("STOP", 7),
}
QUIET_TOO_LONG = timedelta(minutes=15)  # a channel's health is asked again after 15 quiet minutes
SETTINGS_RECHECK = timedelta(hours=6)  # its webhook settings are read back every 6 hours
# The gate of the sandbox `make run` starts (portal/launcher.py), for channels seeded without one.
SANDBOX_GATE_URL = "http://127.0.0.1:8765/gate/"
CALLBACK_DAYS = 90
# The ledger columns a seeded callback fills, in the order Fleet._callback gives them.
LEDGER_COLUMNS = (
    "channel_id",
    "whapi_channel_id",
    "event_type",
    "event_method",
    "body",
    "received_at",
    "outcome",
    "detail",
)
CHANNEL_BATCH = 2000
ROW_BATCH = 10_000

COMPANY_WORDS = (
    "Northwind",
    "Blue",
    "Harbor",
    "Summit",
    "Cedar",
    "Atlas",
    "Nimbus",
    "Orchid",
    "Granite",
    "Meridian",
    "Solstice",
    "Lumen",
    "Vertex",
    "Willow",
    "Copper",
    "Aurora",
    "Beacon",
    "Pioneer",
    "Tidal",
    "Crescent",
)
COMPANY_KINDS = (
    "Logistics",
    "Dental",
    "Realty",
    "Travel",
    "Foods",
    "Motors",
    "Clinic",
    "Fashion",
    "Telecom",
    "Academy",
    "Insurance",
    "Hotels",
)
LINE_NAMES = (
    "Support",
    "Sales",
    "Bookings",
    "Orders",
    "Billing",
    "Delivery",
    "Reception",
    "Marketing",
    "Returns",
    "Helpdesk",
)


class Command(BaseCommand):
    help = (
        "Create the demo logins and customer used by `make run` (development only); with --channels and "
        "--customers also add a fleet of customers, projects, channels, timelines and, with --callbacks, "
        "webhook ledger rows, fast (bulk inserts). Fleet runs are additive: each gets a new run tag. "
        "--data-only creates no public-password logins and so runs with DJANGO_DEBUG off."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--whapi-project",
            action="store_true",
            help="Also create a Whapi project for the demo customer (make run does this with the sandbox).",
        )
        fleet = parser.add_argument_group("a fleet at scale")
        fleet.add_argument("--channels", type=int, default=0, help="Channels to add (e.g. 10000).")
        fleet.add_argument("--customers", type=int, default=0, help="Customers to add, one project each (e.g. 1000).")
        fleet.add_argument(
            "--largest",
            type=int,
            default=0,
            help="Channels of the first (largest) customer; the others share the rest by 1/rank. Default: "
            "all customers by 1/rank.",
        )
        fleet.add_argument("--callbacks", type=int, default=0, help="Webhook ledger rows over the last 90 days.")
        fleet.add_argument(
            "--api-url",
            help="The channels' gate API URL (default: WHAPI_PARTNER_URL + /gate/, the sandbox's; "
            f"{SANDBOX_GATE_URL} when WHAPI_PARTNER_URL is Whapi's own).",
        )
        fleet.add_argument("--members", action="store_true", help="One owner login per customer.")
        fleet.add_argument("--tag", help="The run tag: six capital letters (default: a new random one).")
        fleet.add_argument(
            "--data-only",
            action="store_true",
            help="No demo logins, member logins without a usable password; allowed with DJANGO_DEBUG off.",
        )
        fleet.add_argument(
            "--export",
            type=Path,
            help="Write the seeded channels (whapi_id, token, api_url, webhook_secret, state, customer) to "
            "this file, one JSON object per line.",
        )
        fleet.add_argument("--seed", type=int, help="Seed of the random choices, for a repeatable fleet.")

    def handle(self, *args, whapi_project: bool, data_only: bool, **options):
        if not data_only and not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DJANGO_DEBUG=on: its passwords are public "
                "(--data-only seeds a fleet without them)."
            )
        if options["channels"] or options["customers"]:
            self._seed_fleet(public_logins=not data_only, **options)
        if not data_only:
            self._seed_logins(whapi_project)

    def _seed_logins(self, whapi_project: bool) -> None:
        User = get_user_model()
        with transaction.atomic():
            staff, created = User.objects.get_or_create(
                username=STAFF[0], defaults={"is_staff": True, "is_superuser": True, "email": "staff@example.com"}
            )
            if created:
                staff.set_password(STAFF[1])
                staff.save()
            customer, _ = Customer.objects.get_or_create(name=CUSTOMER_NAME, defaults={"channel_quota": 5})
            owner, created = User.objects.get_or_create(
                username=CUSTOMER_USER[0], defaults={"email": "owner@acme.example"}
            )
            if created:
                owner.set_password(CUSTOMER_USER[1])
                owner.save()
            Membership.objects.get_or_create(customer=customer, user=owner, defaults={"role": Membership.Role.OWNER})

        if whapi_project and not customer.projects.exists():
            try:
                remote = partner_client().create_project(f"{CUSTOMER_NAME} channels")
            except WhapiError as exc:
                self.stderr.write(f"Could not create the demo Whapi project: {exc}")
            else:
                project_mirror(remote, customer=customer)

        self.stdout.write(
            "Demo logins:\n"
            f"  staff (admin)   {STAFF[0]} / {STAFF[1]}\n"
            f"  customer owner  {CUSTOMER_USER[0]} / {CUSTOMER_USER[1]}  ({CUSTOMER_NAME}, "
            f"{customer.projects.count()} project(s))"
        )

    def _seed_fleet(
        self,
        *,
        channels: int,
        customers: int,
        largest: int,
        callbacks: int,
        api_url: str | None,
        members: bool,
        tag: str | None,
        export: Path | None,
        seed: int | None,
        public_logins: bool,
        **options,
    ) -> None:
        if channels < 0 or customers < 1 or largest < 0 or callbacks < 0:
            raise CommandError("--customers must be at least 1; --channels, --largest and --callbacks not negative.")
        if largest > channels:
            raise CommandError(f"--largest {largest} is more than --channels {channels}.")
        tag = _run_tag(tag)
        started = time.monotonic()
        fleet = Fleet(
            tag=tag,
            api_url=api_url or _sandbox_gate_url(),
            rng=random.Random(seed),  # noqa: S311 (demo data, not secrets: those come from `secrets`)
            now=timezone.now(),
        )
        counts = channel_counts(channels, customers, largest)
        with transaction.atomic():
            projects = fleet.customers(counts, members=members, public_logins=public_logins)
            seeded = fleet.channels(projects, counts)
            timeline = fleet.timeline(seeded)
        seconds = time.monotonic() - started
        by_state = {state: sum(1 for c in seeded if c.state == state) for state in STATE_MIX}
        self.stdout.write(
            f"Run {tag}: {customers} customers, {channels} channels, {timeline} timeline rows in {seconds:.1f} s\n"
            "  " + ", ".join(f"{state} {count}" for state, count in by_state.items() if count) + "\n"
            f"  Whapi ids {tag}-00000 … ; largest customer: {projects[0].customer.name} "
            f"({counts[0]} channels, /app/c/{projects[0].customer.code}/)"
        )
        if members:
            password = MEMBER_PASSWORD if public_logins else "(no usable password)"
            self.stdout.write(f"  owner logins {tag.lower()}-owner-0001 … / {password}")
        if callbacks:
            started = time.monotonic()
            fleet.callbacks(seeded, callbacks)
            seconds = time.monotonic() - started
            self.stdout.write(f"  {callbacks} ledger rows in {seconds:.1f} s ({callbacks / seconds:,.0f} rows/s)")
        _analyze(Channel, ChannelEvent, WebhookEvent, Customer, Project)
        if export:
            with export.open("w") as out:
                for channel in seeded:
                    record = {
                        "whapi_id": channel.whapi_id,
                        "token": channel.token,
                        "api_url": channel.api_url,
                        "webhook_secret": channel.webhook_secret,
                        "state": channel.state,
                        "customer": str(channel.project.customer.code),
                    }
                    out.write(json.dumps(record) + "\n")
            self.stdout.write(f"  channels written to {export}")


def _analyze(*models) -> None:
    """Refresh PostgreSQL's statistics of the tables just filled, as its documentation advises after a
    bulk load: until autovacuum gets to them, the planner estimates from the empty tables and may pick
    plans (a sort of every channel of a large customer) that a running database never uses."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(model._meta.db_table)))


def _sandbox_gate_url() -> str:
    """The gate of the sandbox WHAPI_PARTNER_URL names; `make run`'s sandbox when it names Whapi itself.

    Seeded channels are made up: their tokens must never be sent to Whapi's real gate.
    """
    if urlsplit(settings.WHAPI_PARTNER_URL).hostname.endswith("whapi.cloud"):
        return SANDBOX_GATE_URL
    return f"{settings.WHAPI_PARTNER_URL}/gate/"


def _run_tag(tag: str | None) -> str:
    """The run tag asked for (refused when a run already used it), or a new one."""
    if tag is not None:
        if len(tag) != 6 or not tag.isascii() or not tag.isalpha() or not tag.isupper():
            raise CommandError(f"--tag {tag!r}: six capital letters, please (Whapi ids are <TAG>-00000, ...).")
        if _tag_used(tag):
            raise CommandError(f"A fleet with the tag {tag} exists already; choose another tag or leave it out.")
        return tag
    while True:
        tag = "".join(secrets.choice(string.ascii_uppercase) for _ in range(6))
        if not _tag_used(tag):
            return tag


def _tag_used(tag: str) -> bool:
    return (
        Project.objects.filter(whapi_id__startswith=f"seed{tag}").exists()
        or Channel.objects.filter(whapi_id__startswith=f"{tag}-").exists()
    )


def channel_counts(channels: int, customers: int, largest: int = 0) -> list[int]:
    """How many channels each customer gets, largest first, summing to `channels`.

    The first customer gets `largest` when given; the remaining channels go to the other customers
    (all of them when `largest` is 0) in proportion to 1/rank, rounded by largest remainder.
    """
    counts = [0] * customers
    start, rest = 0, channels
    if largest and customers > 1:
        counts[0], start, rest = largest, 1, channels - largest
    weights = [1 / (rank + 1) for rank in range(customers - start)]
    total = sum(weights)
    shares = [rest * weight / total for weight in weights]
    floors = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - floors[i], reverse=True)
    for i in by_remainder[: rest - sum(floors)]:
        floors[i] += 1
    counts[start:] = floors
    return counts


class Fleet:
    """Builds one run's rows; every timestamp is relative to `now`."""

    def __init__(self, *, tag: str, api_url: str, rng: random.Random, now: datetime):
        self.tag, self.api_url, self.rng, self.now = tag, api_url, rng, now
        self._body_cache: dict[int, tuple[str, str, str]] = {}

    def _ago(self, low: timedelta, high: timedelta) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(low.total_seconds(), high.total_seconds()))

    def customers(self, counts: list[int], *, members: bool, public_logins: bool) -> list[Project]:
        """One customer and project per count, in the same order; the projects, with their customers."""
        rng = self.rng
        created = [self._ago(timedelta(days=30), timedelta(days=900)) for _ in counts]
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    name=f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {index + 1:04d}",
                    channel_quota=max(5, math.ceil(count * 1.25)),
                    created_at=created[index],
                )
                for index, count in enumerate(counts)
            ],
            batch_size=ROW_BATCH,
        )
        projects = Project.objects.bulk_create(
            [
                Project(
                    whapi_id=f"seed{self.tag}{index:010d}",
                    name=f"{customer.name} channels",
                    whapi_created_at=customer.created_at,
                    customer=customer,
                    last_synced_at=self.now,
                    created_at=customer.created_at,
                )
                for index, customer in enumerate(customers)
            ],
            batch_size=ROW_BATCH,
        )
        if members:
            User = get_user_model()
            # One hash for every login: hashing each password would take longer than the whole fleet.
            password = make_password(MEMBER_PASSWORD if public_logins else None)
            prefix = self.tag.lower()
            users = User.objects.bulk_create(
                [
                    User(
                        username=f"{prefix}-owner-{index + 1:04d}",
                        email=f"owner-{index + 1:04d}@{prefix}.example",
                        password=password,
                    )
                    for index in range(len(customers))
                ],
                batch_size=ROW_BATCH,
            )
            Membership.objects.bulk_create(
                [
                    Membership(customer=customer, user=user, role=Membership.Role.OWNER)
                    for customer, user in zip(customers, users, strict=True)
                ],
                batch_size=ROW_BATCH,
            )
        return projects

    def channels(self, projects: list[Project], counts: list[int]) -> list[Channel]:
        """The channels, `counts[i]` for `projects[i]`, in STATE_MIX; returned with their ids."""
        states = _state_list(sum(counts))
        self.rng.shuffle(states)
        rows = []
        index = 0
        for project, count in zip(projects, counts, strict=True):
            for number in range(count):
                rows.append(self._channel(project, index, number + 1, states[index]))
                index += 1
        for start in range(0, len(rows), CHANNEL_BATCH):
            Channel.objects.bulk_create(rows[start : start + CHANNEL_BATCH])
        return rows

    def _channel(self, project: Project, index: int, number: int, state: str) -> Channel:
        rng, now = self.rng, self.now
        name = f"{rng.choice(LINE_NAMES)} {number}"
        # Some time after its project was made (at least two days ago): spread out, as real requests are,
        # not clamped to the project's creation, which gave many channels one request time.
        requested = self._ago(timedelta(days=2), max(self.now - project.created_at, timedelta(days=2)))
        if state == State.QUEUED:
            requested = self._ago(timedelta(0), timedelta(hours=1))
            return Channel(
                project=project,
                name=name,
                requested_at=requested,
                whapi_project_id=project.whapi_id,  # as request_channel queues one
                state=state,
                state_changed_at=requested,
                webhook_secret=new_webhook_secret(),
                created_at=requested,
            )
        whapi_created = requested + timedelta(seconds=rng.uniform(5, 600))
        verified = whapi_created + timedelta(minutes=2)
        mode = Channel.Mode.TRIAL if rng.random() < 0.1 else Channel.Mode.LIVE
        if state == State.EXPIRED:
            active_till = self._ago(timedelta(days=1), timedelta(days=60))
        else:
            active_till = now + timedelta(days=rng.uniform(1, 365))
        fields = {}
        if state in HEALTH:
            text, code = HEALTH[state]
            confirmed = self._ago(timedelta(0), QUIET_TOO_LONG)
            fields |= {
                "health_status": text,
                "health_code": code,
                "health_start_at": int(whapi_created.timestamp() * 1000),
                "health_uptime": int((confirmed - whapi_created).total_seconds()),
                "last_confirmed_at": confirmed,
                "health_check_due_at": confirmed + QUIET_TOO_LONG,
                "webhooks_applied_at": verified,
                "webhooks_verified_at": verified,
            }
        if state in Channel.LIVE:
            fields["settings_check_due_at"] = now + timedelta(seconds=rng.uniform(0, SETTINGS_RECHECK.total_seconds()))
        if state == State.CONNECTED:
            fields |= {
                "connected_number": f"1{rng.randrange(200, 999)}555{index:07d}"[:15],
                "connected_name": name,
                "connected_at": verified + timedelta(minutes=rng.uniform(1, 600)),
            }
        if state == State.ERROR:
            fields |= {
                "last_error": "Whapi reports ERROR for this channel; restarting it usually helps.",
                "last_error_at": fields["last_confirmed_at"],
                "error_source": Channel.ErrorSource.HEALTH,
            }
        return Channel(
            project=project,
            name=name,
            requested_at=requested,
            whapi_id=f"{self.tag}-{_base36(index)}",
            whapi_name=name,
            whapi_project_id=project.whapi_id,
            api_url=self.api_url,
            token=secrets.token_hex(16),
            webhook_secret=new_webhook_secret(),
            server=rng.randrange(1, 12),
            mode=mode,
            whapi_status="deleted" if state == State.DELETED else "active",
            stopped=state == State.STOPPED,
            whapi_created_at=whapi_created,
            active_till=active_till,
            trial_till=whapi_created + timedelta(days=5) if mode == Channel.Mode.TRIAL else None,
            init_until=whapi_created + timedelta(seconds=90),
            state=state,
            state_changed_at=max(verified, self._ago(timedelta(0), timedelta(days=30))),
            created_at=requested,
            **fields,
        )

    def timeline(self, channels: list[Channel]) -> int:
        """A few timeline rows per channel: requested, ready to scan, and how it got to its state."""
        Source = ChannelEvent.Source
        rows = []
        for channel in channels:
            rows.append(
                ChannelEvent(
                    channel=channel,
                    to_state=State.QUEUED,
                    source=Source.CUSTOMER,
                    at=channel.requested_at,
                    detail="requested",
                )
            )
            if channel.state == State.QUEUED:
                continue
            ready = channel.whapi_created_at + timedelta(minutes=2)
            rows.append(
                ChannelEvent(
                    channel=channel,
                    from_state=State.CONFIGURING,
                    to_state=State.WAITING_SCAN,
                    source=Source.SYSTEM,
                    at=ready,
                )
            )
            if channel.state == State.WAITING_SCAN:
                continue
            connected = channel.connected_at or ready + timedelta(minutes=5)
            rows.append(
                ChannelEvent(
                    channel=channel,
                    from_state=State.WAITING_SCAN,
                    to_state=State.CONNECTED,
                    source=Source.WEBHOOK,
                    at=min(connected, channel.state_changed_at),
                )
            )
            if channel.state != State.CONNECTED:
                source = Source.STAFF if channel.state == State.DELETED else Source.WEBHOOK
                rows.append(
                    ChannelEvent(
                        channel=channel,
                        from_state=State.CONNECTED,
                        to_state=channel.state,
                        source=source,
                        at=channel.state_changed_at,
                    )
                )
        for start in range(0, len(rows), ROW_BATCH):
            ChannelEvent.objects.bulk_create(rows[start : start + ROW_BATCH])
        return len(rows)

    def callbacks(self, channels: list[Channel], count: int) -> None:
        """`count` ledger rows over the last 90 days, oldest first, each batch committed on its own."""
        senders = [channel for channel in channels if channel.whapi_id and channel.state != State.QUEUED]
        if not senders:
            return
        span = timedelta(days=CALLBACK_DAYS).total_seconds()
        start = self.now - timedelta(days=CALLBACK_DAYS)
        for first in range(0, count, ROW_BATCH):
            size = min(ROW_BATCH, count - first)
            # This batch's slice of the 90 days, so that ids grow with received_at as in a real ledger.
            low, high = first / count * span, (first + size) / count * span
            offsets = sorted(self.rng.uniform(low, high) for _ in range(size))
            rows = [self._callback(self.rng.choice(senders), start + timedelta(seconds=at)) for at in offsets]
            with transaction.atomic():
                _ledger_insert(rows)

    def _callback(self, channel: Channel, at: datetime) -> tuple:
        """One stored callback (~430 bytes), as LEDGER_COLUMNS: mostly health reports, some messages,
        the odd login."""
        rng = self.rng
        roll = rng.random()
        Outcome = WebhookEvent.Outcome
        health, message, login = self._bodies(channel)
        if roll < 0.8:
            kind, method = "channel", "post"
            outcome = Outcome.DUPLICATE if roll < 0.56 else Outcome.APPLIED
            body = health.replace('"<uptime>"', str(int((at - channel.whapi_created_at).total_seconds())))
        elif roll < 0.98:
            kind, method, outcome = "messages", "post", Outcome.IGNORED
            body = message.replace("<id>", f"{rng.getrandbits(64):016X}").replace('"<ts>"', str(int(at.timestamp())))
        else:
            kind, method, outcome, body = "users", "post", Outcome.APPLIED, login
        return (channel.pk, channel.whapi_id, kind, method, body, at, outcome.value, "")

    def _bodies(self, channel: Channel) -> tuple[str, str, str]:
        """The channel's health, message and login callbacks as JSON, with <uptime>, <id> and <ts> to
        fill in: bodies are written once per channel, not once per row."""
        if channel.pk in self._body_cache:
            return self._body_cache[channel.pk]
        rng = self.rng
        number = channel.connected_number or "14155550123"
        name = channel.connected_name or channel.name
        health = {
            "health": {
                "start_at": channel.health_start_at or int(channel.whapi_created_at.timestamp() * 1000),
                "uptime": "<uptime>",
                "status": {"code": channel.health_code or 4, "text": channel.health_status or "AUTH"},
                "version": "1.8.7-74-gf7df472",
                "device_id": rng.randrange(1, 40),
                "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                "user": {
                    "id": number,
                    "name": name,
                    "pushname": name,
                    "is_business": True,
                    "profile_pic": f"https://pps.whatsapp.net/v/t61.24694-24/{rng.randrange(10**12)}_n.jpg",
                    "saved": True,
                    "about": "Hey there! I am using WhatsApp Business.",
                },
            },
            "event": {"type": "channel", "event": "post"},
            "channel_id": channel.whapi_id,
        }
        message = {
            "messages": [
                {
                    "id": "<id>",
                    "from_me": False,
                    "type": "text",
                    "chat_id": f"{rng.randrange(10**10, 10**11)}@s.whatsapp.net",
                    "timestamp": "<ts>",
                    "source": "mobile",
                    "text": {"body": "Hello, is my order on its way? I ordered it last week, number 4711."},
                    "from": number,
                    "from_name": "Customer",
                    "chat_name": "Customer",
                }
            ],
            "event": {"type": "messages", "event": "post"},
            "channel_id": channel.whapi_id,
        }
        login = {
            "user": {"id": number, "name": name},
            "event": {"type": "users", "event": "post"},
            "channel_id": channel.whapi_id,
        }
        bodies = tuple(json.dumps(payload, separators=(",", ":")) for payload in (health, message, login))
        self._body_cache[channel.pk] = bodies
        return bodies


def _ledger_insert(rows: list[tuple]) -> None:
    """Insert ledger rows given as LEDGER_COLUMNS, the fastest way the database offers.

    On PostgreSQL that is COPY, measured at ~40,000 rows/s against ~4,000 for `bulk_create`, which
    sends the values there as array literals (UNNEST) and spends its time escaping the quotes of the
    JSON bodies. The ledger's columns are plain text and timestamps: no field converts its value.
    """
    if connection.vendor != "postgresql":
        WebhookEvent.objects.bulk_create([WebhookEvent(**dict(zip(LEDGER_COLUMNS, row, strict=True))) for row in rows])
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(WebhookEvent._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(WebhookEvent._meta.get_field(name).column) for name in LEDGER_COLUMNS),
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _state_list(total: int) -> list[str]:
    """`total` states in STATE_MIX's proportions, rounded by largest remainder."""
    shares = {state: total * percent / 100 for state, percent in STATE_MIX.items()}
    counts = {state: math.floor(share) for state, share in shares.items()}
    by_remainder = sorted(shares, key=lambda state: shares[state] - counts[state], reverse=True)
    for state in by_remainder[: total - sum(counts.values())]:
        counts[state] += 1
    return [state for state, count in counts.items() for _ in range(count)]


def _base36(number: int) -> str:
    """Five characters of 0-9A-Z: the second part of a Whapi id like "SHAZAM-3HDYQ"."""
    digits = string.digits + string.ascii_uppercase
    text = ""
    for _ in range(5):
        number, digit = divmod(number, 36)
        text = digits[digit] + text
    return text
