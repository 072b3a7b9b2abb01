"""`/metrics`: the fleet's figures (`channels_app.fleet`, the operations home's) in Prometheus's text
format, for a scraper that bears `METRICS_TOKEN`.

No token configured: 404, as for any unknown page. A missing or wrong token: 401, whatever the
method. Each scrape computes the figures afresh (a fixed number of indexed queries, see
`fleet.fleet_figures`); times are Unix timestamps (`*_timestamp_seconds`), absent while there is no
such time, as Prometheus's naming conventions ask.
"""

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from channels_app import fleet

PREFIX = "portal_"


def _gauge(name: str, documentation: str, value: float | None) -> Metric:
    """A gauge with one sample, or with none when `value` is None (a time that does not exist yet)."""
    family = GaugeMetricFamily(PREFIX + name, documentation)
    if value is not None:
        family.add_metric([], value)
    return family


def _gauge_by(name: str, documentation: str, label: str, values: dict[str, float]) -> Metric:
    """A gauge with a sample for each value of one label."""
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=[label])
    for label_value, value in values.items():
        family.add_metric([label_value], value)
    return family


def _timestamp(moment) -> float | None:
    return moment.timestamp() if moment else None


class FleetCollector:
    """prometheus-client's custom collector: the figures, read once per scrape."""

    def collect(self) -> Iterator[Metric]:
        figures = fleet.fleet_figures()
        attention, queue, worker = figures.attention, figures.create_queue, figures.worker
        status, callbacks, coverage = queue.budget, figures.callbacks, figures.checks
        yield _gauge_by("channels", "Channels in each state (deleted ones included).", "state", figures.states)
        yield _gauge_by(
            "channels_attention",
            "Channels that need a look, by reason (a channel may count under several): in error, last "
            f"status check failed, waiting for a scan for over {fleet.UNSCANNED_HOURS} h, not assigned to a customer.",
            "reason",
            {
                "error": attention.errors,
                "status_stale": attention.stale,
                "unscanned": attention.unscanned,
                "unassigned": attention.unassigned,
            },
        )
        yield _gauge_by(
            "channels_expiring",
            "Channels (not deleted) whose paid time ends within the given number of days.",
            "within_days",
            {str(days): count for days, count in attention.expiring.items()},
        )
        yield _gauge("create_budget_used", "Channel creations in the budget's current window.", status.used)
        yield _gauge("create_budget_limit", "Channel creations the budget allows per window.", status.budget)
        yield _gauge("create_budget_window_seconds", "Length of the budget's sliding window.", status.window_seconds)
        yield _gauge(
            "create_next_free_slot_timestamp_seconds",
            "When the budget next allows a creation.",
            _timestamp(status.next_free_slot),
        )
        yield _gauge(
            "create_blocked_until_timestamp_seconds",
            "Until when creations are held back after Whapi refused one (429); absent when not held back.",
            _timestamp(status.blocked_until),
        )
        yield _gauge("create_queue_channels", "Channels queued for creation.", status.queued)
        yield _gauge(
            "create_queue_oldest_request_timestamp_seconds",
            "When the channel at the head of the create queue was requested; absent when the queue is empty.",
            _timestamp(queue.oldest_requested_at),
        )
        yield _gauge(
            "create_queue_drained_timestamp_seconds",
            "When the last queued channel is expected to be created; absent when the queue is empty.",
            _timestamp(queue.drained_at),
        )
        yield _gauge(
            "scheduler_last_run_timestamp_seconds",
            "The latest run of a periodic schedule (the worker's scheduler, every minute); absent until one ran.",
            _timestamp(worker.schedules_last_run),
        )
        yield _gauge("tasks_waiting", "Background tasks queued and not yet taken by a worker.", worker.tasks_waiting)
        yield _gauge(
            "tasks_oldest_waiting_timestamp_seconds",
            "When the oldest waiting background task was queued; absent when none waits.",
            _timestamp(worker.oldest_waiting_since),
        )
        yield _gauge("tasks_taken", "Background tasks taken by a worker and not finished.", worker.tasks_taken)
        yield _gauge(
            "callbacks_received_last_hour",
            "Whapi callbacks the webhook received in the last hour.",
            callbacks.lately,
        )
        yield _gauge(
            "callbacks_last_received_timestamp_seconds",
            "When the webhook last received a Whapi callback; absent when the ledger is empty.",
            _timestamp(callbacks.last_received_at),
        )
        yield _gauge(
            "callbacks_to_apply",
            "Stored Whapi callbacks not applied to their channels yet.",
            callbacks.to_apply,
        )
        yield _gauge_by(
            "checks_due",
            "Channels whose health check or settings read-back is due now.",
            "kind",
            {"health": coverage.health_due, "settings": coverage.settings_due},
        )
        yield _gauge_by(
            "checks_overdue_seconds",
            "How late the oldest due check of each kind is (0 when none is due).",
            "kind",
            {
                kind: late.total_seconds() if late else 0.0
                for kind, late in (("health", coverage.health_overdue), ("settings", coverage.settings_overdue))
            },
        )


REGISTRY = CollectorRegistry()
REGISTRY.register(FleetCollector())


def _bears_the_token(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # compare_digest takes as long whatever the token, so its answer times reveal nothing of it.
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are not configured.")
    if not _bears_the_token(request):
        return HttpResponse(
            "A valid bearer token is required.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
