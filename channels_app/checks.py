"""The checks sweep: asking Whapi about every channel whose check is due, at any fleet size.

Each channel carries when its health is next asked (`health_check_due_at`) and when its webhook
settings are next read back (`settings_check_due_at`). Whapi's reports move them (status.py: quiet
for HEALTH_CHECK_EVERY after a report, or CHECK_SOON when a report wants confirming; configure.py:
SETTINGS_CHECK_EVERY after a verified read-back); this module claims what is due and asks.

Claiming is one short transaction: the due rows are locked with SKIP LOCKED, so rows another sweep is
claiming at that moment are passed over, and their due time is pushed on by the retry interval. The
gate calls happen after the commit, outside any lock. A sweep that dies mid-check leaves its claim to
run out, and the channel is due again after the retry interval. So several sweeps, on one worker
cluster or on several machines, share the work without asking about one channel twice at once.

A sweep makes up to CHECKS_CONCURRENCY gate calls at once for SWEEP_SECONDS, in CHECKS_PROCESSES
worker processes (a Python process computes on one core at a time; the checks after a storm need
more), each process as loops of ASKS_PER_LOOP calls (claim a few, ask their gates that many at a
time, write the answers together, again): one database connection per loop, the gate calls in
threads of their own that do not touch the database. The periodic schedule "checks" starts one every
minute (`checks_sweep_start`), so one or two run at any time.
"""

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, Min
from django.utils import timezone

from channels_app import background
from channels_app.configure import SETTINGS_RETRY, channel_settings_verify_many
from channels_app.models import Channel
from channels_app.status import CHECK_COLUMNS, CHECK_RETRY, channel_health_checks
from channels_app.whapi.transport import reusable_session

logger = logging.getLogger(__name__)

# One sweep runs this long. The "checks" schedule starts one every minute, so two overlap for 20 s
# (they share the work through their claims) and there is no gap between them; django-q2's task
# timeout is 120 s, so a gate call that started late (WHAPI_TIMEOUT) still ends in time.
SWEEP_SECONDS = 80.0
# Channels one loop claims at a time, of each kind.
CLAIM_BATCH = 16
# Gate calls one loop makes at once (its claimed health checks, then its claimed settings read-backs).
ASKS_PER_LOOP = 4
# A loop that found nothing due waits this long before it looks again.
IDLE_SECONDS = 2.0

RETRIES = {"health": CHECK_RETRY, "settings": SETTINGS_RETRY}


def checks_claim(limit: int | None = None) -> list[tuple[str, int]]:
    """Claim up to `limit` due channels of each kind, oldest due first; returns (kind, channel id) pairs.

    A claimed channel's due time moves on by its kind's retry interval: the check, when it answers,
    sets the real next one.
    """
    limit = limit or CLAIM_BATCH
    now = timezone.now()
    claimed: list[tuple[str, int]] = []
    with transaction.atomic():
        for kind, column in CHECK_COLUMNS.items():
            ids = list(
                Channel.objects.select_for_update(skip_locked=True)
                .filter(**{f"{column}__lte": now})
                .order_by(column)
                .values_list("pk", flat=True)[:limit]
            )
            if ids:
                Channel.objects.filter(pk__in=ids).update(**{column: now + RETRIES[kind]})
                claimed += [(kind, channel_id) for channel_id in ids]
    return claimed


def _check(claimed: list[tuple[str, int]], sessions: list[requests.Session]) -> None:
    """Make the claimed checks of each kind together: their gates asked len(`sessions`) at a time,
    the answers written by this thread (for health, in one transaction)."""
    for kind, check in (("health", channel_health_checks), ("settings", channel_settings_verify_many)):
        channel_ids = [channel_id for claimed_kind, channel_id in claimed if claimed_kind == kind]
        if not channel_ids:
            continue
        try:
            check(channel_ids, sessions=sessions)
        except Exception:  # the sweep goes on; these claims run out and the channels are asked again
            logger.exception("%s checks of channels %s failed", kind, channel_ids)


def _sweep_loop(deadline: float, asks: int = 1) -> int:
    """Claim and check until `deadline` (time.monotonic()), making up to `asks` gate calls at once; at
    least one round. Returns the checks made.

    Each of the loop's `asks` lanes keeps one session, so its calls to the same gate host reuse a
    connection."""
    done = 0
    with ExitStack() as stack:
        sessions = [stack.enter_context(reusable_session()) for _ in range(asks)]
        while True:
            claimed = checks_claim()
            _check(claimed, sessions)
            done += len(claimed)
            if time.monotonic() >= deadline:
                return done
            if not claimed:
                time.sleep(min(IDLE_SECONDS, max(0.0, deadline - time.monotonic())))


def _sweep_loop_in_thread(deadline: float, asks: int) -> int:
    try:
        return _sweep_loop(deadline, asks)
    finally:
        connections.close_all()  # this thread's own connections


def part_concurrency(part: int) -> int:
    """Gate calls at once in part `part` (0 to CHECKS_PROCESSES - 1) of a sweep: CHECKS_CONCURRENCY
    shared out, the first parts taking what does not divide evenly."""
    share, rest = divmod(settings.CHECKS_CONCURRENCY, settings.CHECKS_PROCESSES)
    return share + (1 if part < rest else 0)


def checks_sweep_start() -> int:
    """Periodic: a sweep, in CHECKS_PROCESSES worker processes. Queues the other processes' parts
    (`tasks.checks_sweep_part`, to whichever workers are free, each told when this sweep ends), then
    runs this process's part; returns the checks this part made. The parts share the due channels
    through their claims."""
    ends_at = int(time.time() + SWEEP_SECONDS)
    for part in range(1, settings.CHECKS_PROCESSES):
        background.enqueue("checks_sweep_part", part, ends_at)
    return checks_sweep(concurrency=part_concurrency(0))


def checks_sweep_part(part: int, ends_at: int) -> int:
    """Part `part` of the sweep that ends at `ends_at` (a Unix time): it runs until then, so a part that
    waited for a free worker does not outlast its sweep; one that starts after it does nothing."""
    seconds = ends_at - time.time()
    if seconds <= 0:
        return 0
    return checks_sweep(seconds=seconds, concurrency=part_concurrency(part))


def checks_sweep(*, seconds: float = SWEEP_SECONDS, concurrency: int | None = None) -> int:
    """Periodic: make the due health checks and settings read-backs for `seconds`, up to
    CHECKS_CONCURRENCY gate calls at once (each bounded by WHAPI_TIMEOUT), in loops of ASKS_PER_LOOP;
    returns how many were made.

    With a concurrency of 1 the loop runs in the calling thread.
    """
    concurrency = concurrency or settings.CHECKS_CONCURRENCY
    deadline = time.monotonic() + seconds
    if concurrency == 1:
        return _sweep_loop(deadline)
    loops = math.ceil(concurrency / ASKS_PER_LOOP)
    asks = [min(ASKS_PER_LOOP, concurrency - index * ASKS_PER_LOOP) for index in range(loops)]
    with ThreadPoolExecutor(max_workers=loops, thread_name_prefix="checks") as pool:
        futures = [pool.submit(_sweep_loop_in_thread, deadline, lanes) for lanes in asks]
    return sum(future.result() for future in futures)


@dataclass(frozen=True)
class Coverage:
    """What staff see of the checks: how many are due now and how late the oldest of each kind is."""

    health_due: int
    health_overdue: timedelta | None
    settings_due: int
    settings_overdue: timedelta | None


def checks_coverage(now: datetime | None = None) -> Coverage:
    now = now or timezone.now()
    figures = {}
    for kind, column in CHECK_COLUMNS.items():
        due = Channel.objects.filter(**{f"{column}__lte": now}).aggregate(count=Count("pk"), oldest=Min(column))
        figures[f"{kind}_due"] = due["count"]
        figures[f"{kind}_overdue"] = now - due["oldest"] if due["oldest"] else None
    return Coverage(**figures)
