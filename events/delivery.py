"""Sending events to customers' endpoints, on the worker, signed per the Standard Webhooks spec.

Each delivery is a POST of the event's JSON body with the headers `webhook-id` (the event's, the same
for every retry and replay), `webhook-timestamp` (the attempt's, in seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` by the endpoint's secret, made by the
`standardwebhooks` library). A 2xx answer is delivered; anything else, no answer within TIMEOUT, or
a URL the rules no longer allow (`webhook_urls.customer_url_problem`, checked again at every send:
a host name may resolve elsewhere by now) is a failed attempt. Redirects are not followed.

A failed delivery is tried again after each of RETRY_DELAYS in turn (the spec's suggestion: about a
day and a quarter in all), then it is failed for good. An endpoint whose attempts failed
EVENTS_DISABLE_AFTER_FAILURES times in a row is paused for EVENTS_DISABLE_MINUTES (its deliveries
wait, and their attempts do not count meanwhile); its customer's recipients and staff are told
(alerts, "endpoint.disabled"). After the pause one attempt tries it again: another failure pauses
it again, a success ends the streak.

Claiming is one short transaction (SKIP LOCKED, the attempt time pushed on by CLAIM), so two workers
never send one delivery at once; the POSTs happen after the commit, a few at a time in threads, and
each result is written in a transaction of its own.
"""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from standardwebhooks import Webhook

from alerts.models import Event as AlertEvent
from alerts.notify import Message, notify, words
from channels_app import webhook_urls
from events.models import Attempt, Delivery, Endpoint, Event

logger = logging.getLogger(__name__)

Status = Delivery.Status

# Pauses after the 1st, 2nd, … failed attempt (Standard Webhooks' suggested schedule); the attempt
# after the last one is the last: 8 attempts over about 27 hours.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT = (5, 10)  # seconds to connect, to read the answer: 15 s at most, as the spec suggests
CLAIM = timedelta(minutes=2)  # longer than a batch takes (BATCH / SENDERS rounds of TIMEOUT)
BATCH = 20
SENDERS = 10  # POSTs at once
USER_AGENT = "whapi-partner-portal-events/1"
# The sweep's loop: how long one run sends, and how often it looks for due deliveries meanwhile.
SEND_SECONDS = 50.0
IDLE_SECONDS = 1.0


def headers_for(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers (and the content type) for sending `body` at `at`."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


def body_of(event: Event) -> str:
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Result:
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(delivery: Delivery) -> Result:
    """POST one delivery; never raises. The error names what went wrong without the answer's body."""
    endpoint, event = delivery.endpoint, delivery.event
    started = time.monotonic()
    at = timezone.now()

    def done(status_code: int | None, error: str) -> Result:
        return Result(at, status_code, int((time.monotonic() - started) * 1000), error[:300])

    problem = webhook_urls.customer_url_problem(endpoint.url, sender="The portal")
    if problem:
        return done(None, f"URL refused: {problem}")
    body = body_of(event)
    headers = headers_for(secret=endpoint.secret, webhook_id=event.webhook_id, body=body, at=at)
    try:
        with webhook_urls.public_only_session() as session:
            response = session.post(
                endpoint.url, data=body.encode(), headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
    except requests.ReadTimeout:
        return done(None, f"no answer within {sum(TIMEOUT)} s")
    except requests.ConnectionError as exc:  # a connect timeout too
        if webhook_urls.PEER_REFUSED in str(exc):
            return done(None, f"URL refused: {webhook_urls.local_problem('The portal')}")
        return done(None, "could not connect")
    except requests.RequestException as exc:
        return done(None, f"{type(exc).__name__} while sending")
    response.close()  # the body is not read: what the endpoint answers beyond its status is its own
    if 200 <= response.status_code < 300:
        return done(response.status_code, "")
    if 300 <= response.status_code < 400:
        return done(response.status_code, "redirects are not followed: give the final URL")
    return done(response.status_code, f"answered {response.status_code}")


def _claim(limit: int) -> list[Delivery]:
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(status=Status.PENDING, next_attempt_at__lte=now, endpoint__active=True)
            .filter(Q(endpoint__disabled_until__isnull=True) | Q(endpoint__disabled_until__lte=now))
            .order_by("next_attempt_at", "pk")[:limit]
        )
        # An endpoint back from a pause (its streak still at the limit) is tried with one delivery:
        # the others wait for its answer, without spending an attempt on an endpoint still down.
        claimed, probed = [], set()
        for delivery in due:
            if delivery.endpoint.consecutive_failures >= settings.EVENTS_DISABLE_AFTER_FAILURES:
                if delivery.endpoint_id in probed:
                    continue
                probed.add(delivery.endpoint_id)
            claimed.append(delivery.pk)
        Delivery.objects.filter(pk__in=claimed).update(next_attempt_at=now + CLAIM)
    return list(Delivery.objects.filter(pk__in=claimed).select_related("event", "endpoint"))


def _record(delivery: Delivery, result: Result) -> None:
    """Write one attempt's result: the attempt row, the delivery's status and next attempt, and the
    endpoint's streak of failures (pausing it at EVENTS_DISABLE_AFTER_FAILURES)."""
    attempts = delivery.attempts + 1
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(pk=delivery.endpoint_id).first()
        if endpoint is None:
            return  # deleted meanwhile, with its deliveries
        Attempt.objects.create(
            delivery=delivery,
            at=result.at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            succeeded=result.succeeded,
            error=result.error,
        )
        last = {"attempts": attempts, "last_status_code": result.status_code, "last_latency_ms": result.latency_ms}
        if result.succeeded:
            Delivery.objects.filter(pk=delivery.pk).update(
                **last, status=Status.SUCCEEDED, delivered_at=timezone.now(), next_attempt_at=None, last_error=""
            )
            if endpoint.consecutive_failures:
                Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
            return
        gave_up = attempts >= MAX_ATTEMPTS
        Delivery.objects.filter(pk=delivery.pk).update(
            **last,
            status=Status.FAILED if gave_up else Status.PENDING,
            next_attempt_at=None if gave_up else result.at + RETRY_DELAYS[attempts - 1],
            last_error=result.error,
        )
        _count_failure(endpoint)
    logger.info(
        "event delivery %s to endpoint %s failed, attempt %d: %s", delivery.pk, endpoint.pk, attempts, result.error
    )


def _count_failure(endpoint: Endpoint) -> None:
    """One more failure in a row for `endpoint` (locked); pause it when the streak reaches the setting."""
    now = timezone.now()
    failures = endpoint.consecutive_failures + 1
    fields: dict = {"consecutive_failures": failures}
    limit = settings.EVENTS_DISABLE_AFTER_FAILURES
    if failures >= limit and not endpoint.is_paused(now):
        # At the limit, and each time an attempt after a pause fails again (the streak goes on).
        fields["disabled_until"] = now + timedelta(minutes=settings.EVENTS_DISABLE_MINUTES)
    Endpoint.objects.filter(pk=endpoint.pk).update(**fields)
    if failures == limit:
        _tell_disabled(endpoint, failures, fields["disabled_until"])


def _tell_disabled(endpoint: Endpoint, failures: int, until: datetime) -> None:
    customer = endpoint.customer
    notify(
        AlertEvent.ENDPOINT_DISABLED,
        None,
        key=f"endpoint-disabled:{endpoint.pk}:{until.isoformat()}",
        customer=customer,
        message=Message(
            subject=words(lambda: _("Events endpoint paused: %(url)s") % {"url": endpoint.url[:80]}),
            text=words(
                lambda: (
                    _(
                        "The events endpoint %(url)s of %(name)s failed %(failures)d delivery attempts in a row; "
                        "nothing is sent to it until %(until)s UTC, then the portal tries again. Events meanwhile "
                        "wait and are sent then. See the delivery log for the answers it gave; once it is fixed, it "
                        "can be switched back on there at once."
                    )
                    % {
                        "url": endpoint.url,
                        "name": customer.name,
                        "failures": failures,
                        "until": f"{until:%Y-%m-%d %H:%M}",
                    }
                )
            ),
            fix=gettext_lazy("The endpoint's delivery log"),
        ),
        link=settings.PORTAL_BASE_URL + reverse("admin:events_endpoint_change", args=[endpoint.pk]),
        customer_link=settings.PORTAL_BASE_URL
        + reverse("channels_app:events_endpoint", args=[customer.code, endpoint.code]),
    )


def deliveries_send_due(limit: int = BATCH) -> int:
    """Send up to `limit` due deliveries, SENDERS at a time; returns how many were tried."""
    due = _claim(limit)
    if not due:
        return 0
    with ThreadPoolExecutor(max_workers=min(SENDERS, len(due))) as pool:
        results = list(pool.map(post, due))
    for delivery, result in zip(due, results, strict=True):
        _record(delivery, result)
    return len(due)


def events_send(*, seconds: float = SEND_SECONDS, limit: int = BATCH) -> int:
    """Periodic: send due deliveries for `seconds`, looking again every IDLE_SECONDS when none are
    due (so the first retry, 5 s after a failure, is not a minute late); at least one round, and only
    one when no endpoint is switched on. Returns how many were tried."""
    if not Endpoint.objects.filter(active=True).exists():
        return 0
    deadline = time.monotonic() + seconds
    tried = 0
    while True:
        sent = deliveries_send_due(limit)
        tried += sent
        if time.monotonic() >= deadline:
            return tried
        if not sent:
            time.sleep(min(IDLE_SECONDS, max(0.0, deadline - time.monotonic())))
