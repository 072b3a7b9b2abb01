"""The channel-creation budget, shared by every web and worker process through the database.

Whapi refuses (HTTP 429) more than 20 creations in 30 minutes, counting channels made by hand in its
panel too (docs/whapi.md §1.3). We allow ourselves `WHAPI_CREATE_BUDGET` attempts in any sliding `WHAPI_CREATE_WINDOW`
(default 18 per 1800 s). Every attempt is a `CreateAttempt` row; the count and the insert happen
while holding the `CreateBudget` row's lock (`select_for_update` on PostgreSQL; SQLite's immediate
transactions serialise writers), so two processes can never both take the last slot.
"""

import heapq
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from channels_app.models import Channel, CreateAttempt, CreateBudget
from channels_app.status import channel_update


def window() -> timedelta:
    return timedelta(seconds=settings.WHAPI_CREATE_WINDOW)


def _locked_budget() -> CreateBudget:
    """The budget row, locked until the surrounding transaction ends."""
    CreateBudget.objects.get_or_create(pk=1)
    return CreateBudget.objects.select_for_update().get(pk=1)


def _attempt_times(now: datetime) -> list[datetime]:
    return list(CreateAttempt.objects.filter(at__gt=now - window()).order_by("at").values_list("at", flat=True))


def _next_slot(now: datetime, times: list[datetime], blocked_until: datetime | None) -> datetime:
    """When the next attempt may be made, given the attempts `times` inside the current window."""
    slot = now if len(times) < settings.WHAPI_CREATE_BUDGET else times[-settings.WHAPI_CREATE_BUDGET] + window()
    if blocked_until and blocked_until > slot:
        slot = blocked_until
    return slot


# Short, so a pump that dies (its worker killed, the database restarted) holds the queue up for little
# longer than this: the pump schedules a wake-up at the end of its lease before every creation.
# A creation that takes longer than this (Whapi slow to answer) lets a second pump start on the
# next channel meanwhile: the budget still holds (claim_next), only the queue order may interleave.
PUMP_LEASE = timedelta(seconds=20)


@contextmanager
def pump_lease() -> Iterator[str | None]:
    """Hold the right to send creations (yields an owner id), or yield None when another pump has it.

    The lease expires by itself after PUMP_LEASE, so a pump killed mid-run blocks nobody for long;
    a live pump renews it before each creation with `renew_lease`.
    """
    owner = uuid.uuid4().hex
    now = timezone.now()
    CreateBudget.objects.get_or_create(pk=1)
    taken = (
        CreateBudget.objects.filter(pk=1)
        .filter(models.Q(pump_lease_until__isnull=True) | models.Q(pump_lease_until__lt=now))
        .update(pump_lease_until=now + PUMP_LEASE, pump_lease_owner=owner)
    )
    if not taken:
        yield None
        return
    try:
        yield owner
    finally:
        CreateBudget.objects.filter(pk=1, pump_lease_owner=owner).update(pump_lease_until=None, pump_lease_owner="")


def renew_lease(owner: str) -> datetime | None:
    """Extend the pump lease; returns when it now ends, or None when it was lost (expired and taken
    by another pump)."""
    until = timezone.now() + PUMP_LEASE
    renewed = CreateBudget.objects.filter(pk=1, pump_lease_owner=owner).update(pump_lease_until=until)
    return until if renewed else None


def lease_end() -> datetime | None:
    """When the current pump lease ends (None: no pump holds it)."""
    budget = CreateBudget.objects.filter(pk=1).first()
    return budget.pump_lease_until if budget else None


def claimable_now() -> bool:
    """Whether the head of the queue could be created right now (used after a pump lets go)."""
    now = timezone.now()
    head = Channel.objects.filter(state=Channel.State.QUEUED).order_by("requested_at", "id").first()
    if head is None:
        return False
    budget = CreateBudget.objects.filter(pk=1).first()
    slot = _next_slot(now, _attempt_times(now), budget.blocked_until if budget else None)
    return slot <= now and not (head.next_attempt_at and head.next_attempt_at > now)


@dataclass(frozen=True)
class Claim:
    """What `claim_next` decided: a channel to create now, or when to look again."""

    channel: Channel | None
    retry_at: datetime | None


def claim_next() -> Claim:
    """Take the oldest queued channel and one budget slot for it, atomically.

    Returns Claim(channel, None) with the channel moved to CREATING and its attempt recorded;
    Claim(None, when) when the budget (or a Whapi 429) says to wait until `when`;
    Claim(None, None) when nothing is queued.
    """
    with transaction.atomic():
        budget = _locked_budget()
        now = timezone.now()
        channel = (
            Channel.objects.select_for_update()
            .filter(state=Channel.State.QUEUED)
            .order_by("requested_at", "id")
            .first()
        )
        if channel is None:
            return Claim(None, None)
        slot = _next_slot(now, _attempt_times(now), budget.blocked_until)
        if channel.next_attempt_at and channel.next_attempt_at > slot:
            # The head of the line backs off after a failed attempt; the others keep their place behind it.
            slot = channel.next_attempt_at
        if slot > now:
            return Claim(None, slot)
        CreateAttempt.objects.create(at=now, channel=channel)
        attempt = channel.create_attempts + 1
        channel_update(
            channel,
            {"create_attempts": attempt, "next_attempt_at": None},
            state=Channel.State.CREATING,
            detail=f"attempt {attempt}",
        )
        return Claim(channel, None)


def block_until(until: datetime, reason: str) -> None:
    """Hold back every creation until `until` (Whapi answered 429 although our budget allowed it)."""
    with transaction.atomic():
        budget = _locked_budget()
        if not budget.blocked_until or budget.blocked_until < until:
            budget.blocked_until = until
            budget.blocked_reason = reason[:300]
            budget.save(update_fields=["blocked_until", "blocked_reason"])


@dataclass(frozen=True)
class BudgetStatus:
    used: int
    budget: int
    window_seconds: float
    queued: int
    next_free_slot: datetime
    blocked_until: datetime | None


def status() -> BudgetStatus:
    """What staff see: creations used in the current window, queue length, next free slot."""
    now = timezone.now()
    times = _attempt_times(now)
    budget = CreateBudget.objects.filter(pk=1).first()
    blocked = budget.blocked_until if budget and budget.blocked_until and budget.blocked_until > now else None
    return BudgetStatus(
        used=len(times),
        budget=settings.WHAPI_CREATE_BUDGET,
        window_seconds=settings.WHAPI_CREATE_WINDOW,
        queued=Channel.objects.filter(state=Channel.State.QUEUED).count(),
        next_free_slot=_next_slot(now, times, blocked),
        blocked_until=blocked,
    )


def queue_position(channel: Channel) -> int | None:
    """1 for the head of the queue; None when the channel is not queued."""
    if channel.state != Channel.State.QUEUED:
        return None
    ahead = Channel.objects.filter(state=Channel.State.QUEUED).filter(
        models.Q(requested_at__lt=channel.requested_at) | models.Q(requested_at=channel.requested_at, id__lt=channel.id)
    )
    return ahead.count() + 1


def queue_eta(position: int) -> datetime:
    """When the channel at `position` in the queue is expected to be created, if the budget is the only wait.

    Every slot in use frees one window after its attempt; every creation ahead of us takes the next
    free slot and gives it back one window later.
    """
    now = timezone.now()
    times = _attempt_times(now)
    budget = CreateBudget.objects.filter(pk=1).first()
    not_before = max(now, budget.blocked_until) if budget and budget.blocked_until else now
    free_at = [at + window() for at in times[-settings.WHAPI_CREATE_BUDGET :]]
    free_at += [now] * (settings.WHAPI_CREATE_BUDGET - len(free_at))
    heapq.heapify(free_at)
    eta = now
    for _ in range(position):
        eta = max(heapq.heappop(free_at), not_before)
        heapq.heappush(free_at, eta + window())
    return eta
