"""Health coverage: does the periodic sweep keep every channel's status confirmed, and its settings
verified, at 10,000 channels with a gate that takes `--gate-delay-ms` (200) to answer?

The portal asks a channel's health once it has been quiet for HEALTH_CHECK_EVERY (900 s) and
verifies its settings every SETTINGS_CHECK_EVERY (21,600 s); the sweep (`checks_sweep`, every
minute) asks for the channels due. Waiting 900 s to see one interval go by is too long for a
benchmark, so the worker is restarted with the intervals scaled down (`--coverage-health-every`,
90 s: a tenth; `--coverage-settings-every`, 180 s: a 120th). That asks the sweep for 10 and 120
times the real rates (10,000 / 90 s = 111 health checks per second instead of 11; 56 settings
checks per second instead of 0.46), so a pass here holds with room at the real intervals, while a
miss says the sweep cannot do the scaled rates, not necessarily the real ones (the report gives the
rates it did).

The fleet starts as in steady state: each channel last confirmed at a point spread evenly over the
last interval (so its check comes due evenly over the next one), and likewise for its settings.
Then for two health intervals, every 5 s: channels due (due time passed) and confirmed, and the
oldest overdue check (now minus the earliest due time among the channels due), the figure the
admin shows. Targets: the oldest overdue health check stays within HEALTH_CHECK_EVERY, and the oldest
overdue settings check within SETTINGS_CHECK_EVERY.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from benchmarks import Result, benchmark, positive_int
from benchmarks.environment import Environment, log
from benchmarks.fleet import fleet_grow, fleet_reset, present
from benchmarks.mix import wait_for_follow_ups

SAMPLE_EVERY_S = 5.0
SCHEDULER_TICK_S = 6.0  # manage.py worker looks for due schedules every Q_SCHEDULER_SECONDS (5 s)
GOLDEN = 0.6180339887


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("coverage")
    group.add_argument("--coverage-health-every", type=positive_int, default=90, help="HEALTH_CHECK_EVERY (90 s)")
    group.add_argument("--coverage-settings-every", type=positive_int, default=180, help="SETTINGS_CHECK_EVERY (180 s)")


def _spread(fleet_size: int, health_every: int, settings_every: int) -> None:
    """Due times spread evenly (a golden-ratio sequence, so neighbours differ) over the next interval."""
    from django.utils import timezone

    from channels_app.models import Channel

    now = timezone.now()
    channels = list(present().only("pk", "whapi_id"))
    for position, channel in enumerate(channels):
        health = (position * GOLDEN) % 1.0
        settings = (position * GOLDEN * GOLDEN) % 1.0
        channel.state = Channel.State.CONNECTED
        channel.disconnect_reported_at = None
        channel.last_confirmed_at = now - timedelta(seconds=health * health_every)
        channel.health_check_due_at = channel.last_confirmed_at + timedelta(seconds=health_every)
        channel.webhooks_verified_at = now - timedelta(seconds=settings * settings_every)
        channel.settings_check_due_at = channel.webhooks_verified_at + timedelta(seconds=settings_every)
    Channel.objects.bulk_update(
        channels,
        [
            "state",
            "disconnect_reported_at",
            "last_confirmed_at",
            "health_check_due_at",
            "webhooks_verified_at",
            "settings_check_due_at",
        ],
        batch_size=1000,
    )


def sample(started) -> dict:
    """Due and overdue as the admin shows them (`checks.checks_coverage`), and what was done so far."""
    from django.utils import timezone

    from channels_app.checks import checks_coverage

    now = timezone.now()
    coverage = checks_coverage(now)
    fleet = present()
    return {
        "t_s": round((now - started).total_seconds(), 1),
        "health_due": coverage.health_due,
        "health_oldest_overdue_s": round(coverage.health_overdue.total_seconds(), 1)
        if coverage.health_overdue
        else 0.0,
        "confirmed": fleet.filter(last_confirmed_at__gte=started).count(),
        "settings_due": coverage.settings_due,
        "settings_oldest_overdue_s": (
            round(coverage.settings_overdue.total_seconds(), 1) if coverage.settings_overdue else 0.0
        ),
        "verified": fleet.filter(webhooks_verified_at__gte=started).count(),
    }


@benchmark(
    "coverage",
    "Health and settings coverage of the fleet, intervals scaled down",
    add_arguments=add_arguments,
    needs_worker=True,
)
def run(env: Environment) -> Result:
    from django.utils import timezone
    from django_q.models import Schedule

    args = env.args
    result = Result()
    health_every, settings_every = args.coverage_health_every, args.coverage_settings_every
    fleet = fleet_grow(env, args.fleet)
    wait_for_follow_ups(60)
    fleet_reset(env, fleet)  # nothing due for a day: the restarted worker finds nothing until the spread
    count = len(fleet.channels)
    intervals = {"HEALTH_CHECK_EVERY": str(health_every), "SETTINGS_CHECK_EVERY": str(settings_every)}
    restart_s = env.restart_worker(intervals)
    # A restarted worker runs the "checks" schedule when it is next due, up to a minute away; in a
    # steady state a sweep is always running, so start one now (the scheduler looks every 5 s).
    Schedule.objects.filter(name="checks").update(next_run=timezone.now())
    time.sleep(SCHEDULER_TICK_S)
    _spread(count, health_every, settings_every)
    started = timezone.now()
    duration = 2 * health_every
    log(f"coverage: worker restarted with {intervals} ({restart_s:.1f} s); watching for {duration} s")
    samples = []
    while (timezone.now() - started).total_seconds() < duration:
        samples.append(sample(started))
        if len(samples) % 6 == 1:
            log(f"coverage: {samples[-1]}")
        env.check_alive()
        time.sleep(SAMPLE_EVERY_S)
    samples.append(sample(started))
    env.restart_worker()  # back to the real intervals for whatever runs next
    worst_health = max(item["health_oldest_overdue_s"] for item in samples)
    worst_settings = max(item["settings_oldest_overdue_s"] for item in samples)
    last = samples[-1]
    result.add(
        "oldest overdue health check (max)",
        worst_health,
        "s",
        f"<= {health_every} (HEALTH_CHECK_EVERY, scaled)",
        worst_health <= health_every,
        note=f"at the end: {last['health_due']:,} due, oldest {last['health_oldest_overdue_s']} s",
    )
    result.add(
        "oldest overdue settings check (max)",
        worst_settings,
        "s",
        f"<= {settings_every} (SETTINGS_CHECK_EVERY, scaled)",
        worst_settings <= settings_every,
        note=f"at the end: {last['settings_due']:,} due, oldest {last['settings_oldest_overdue_s']} s",
    )
    # Distinct channels confirmed within the first interval, per second: the rate the sweep kept up
    # (later, channels come due a second time and distinct counts no longer add up to checks).
    first = next((item for item in samples if item["t_s"] >= health_every), last)
    result.add(
        "health checks per second (first interval)",
        round(first["confirmed"] / (first["t_s"] or 1.0), 1),
        "/s",
        note=f"{first['confirmed']:,} of {count:,} in {first['t_s']:g} s; the scaled interval asks "
        f"{count / health_every:.0f}/s, the real one {count / 900:.1f}/s",
    )
    result.add(
        "settings verified during the run",
        last["verified"],
        "channels",
        note=f"of {count:,} in {last['t_s']:g} s; the scaled interval asks {count / settings_every:.0f}/s, "
        f"the real one {count / 21600:.2f}/s",
    )
    result.details = {
        "channels": count,
        "gate_delay_ms": env.options.gate_delay_ms,
        "health_check_every_s": health_every,
        "settings_check_every_s": settings_every,
        "duration_s": duration,
        "samples": samples,
    }
    return result
