"""Webhook delivery of the sandbox: Whapi's body-mode envelopes POSTed in the background, with retries.

Contract:
- One delivery = one event for one configured webhook. Deliveries to the same (channel, webhook URL)
  go out strictly in order, one at a time, from a daemon worker thread that exists only while that
  queue has work; the HTTP request that caused the event never waits for them.
- Only HTTP 200 counts as delivered (as at Whapi). Anything else, a timeout or a connection error is
  retried after `webhook_retry_seconds * attempt` real seconds, at most `webhook_max_attempts` attempts
  in all; later deliveries of the same queue wait meanwhile (ordered, like `callback_persist`).
- Every POST has `webhook_timeout`. Proxies from the environment are ignored (`trust_env = False`).
- Modes: `body` POSTs to the URL; `path` POSTs to `<url>/<type>/<method>`; `method` sends the
  event's method as the HTTP verb to `<url>/<type>` (Whapi's docs describe these; details are inferred).
- The channel's `callback_backoff_delay_ms` settings are validated but not used: the sandbox's
  `webhook_retry_seconds` governs, so tests can run with short delays.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import requests

from .config import SandboxConfig
from .faults import FaultBook

logger = logging.getLogger("sandbox")

_LOG_LIMIT = 5000


@dataclass
class Delivery:
    """One event on its way to one webhook, and what became of it."""

    id: int
    channel_id: str
    event: dict[str, str]
    url: str
    http_method: str
    headers: dict[str, str]
    payload: dict[str, Any]
    duplicate: bool = False
    state: str = "queued"  # queued | held | sending | retrying | delivered | failed | cancelled
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def queue_key(self) -> tuple[str, str]:
        return (self.channel_id, self.url)

    def as_log(self) -> dict[str, Any]:
        """The delivery log entry. Header values are left out: they are usually secrets."""
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "event": dict(self.event),
            "url": self.url,
            "http_method": self.http_method,
            "header_names": sorted(self.headers),
            "payload": self.payload,
            "duplicate": self.duplicate,
            "state": self.state,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


@dataclass
class _Hold:
    """Deliveries a `webhook_reorder` fault holds back, to be released in reverse order."""

    target: int
    items: list[Delivery] = field(default_factory=list)
    timer: threading.Timer | None = None


def _target(url: str, mode: str, event_type: str, event_method: str) -> tuple[str, str]:
    """The URL and HTTP verb a webhook in `mode` uses for an event."""
    if mode == "body":
        return url, "POST"
    parts = urllib.parse.urlsplit(url)
    suffix = f"/{event_type}/{event_method}" if mode == "path" else f"/{event_type}"
    url = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))
    return url, "POST" if mode == "path" else event_method.upper()


def _safe_url(url: str) -> str:
    """The URL without query or credentials, for log lines (portals put secrets in webhook queries)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class WebhookDispatcher:
    """Background delivery of webhook events; see the module docstring for the guarantees."""

    def __init__(self, config: SandboxConfig, faults: FaultBook) -> None:
        self._config = config
        self._faults = faults
        self._cond = threading.Condition()
        self._queues: dict[tuple[str, str], collections.deque[Delivery]] = {}
        self._workers: dict[tuple[str, str], threading.Thread] = {}
        self._holds: dict[str, _Hold] = {}
        self._log: collections.deque[Delivery] = collections.deque(maxlen=_LOG_LIMIT)
        self._ids = itertools.count(1)
        self._stopping = threading.Event()

    # ---- producing -------------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        channel_id: str,
        event_type: str,
        event_method: str,
        data_key: str,
        data: dict[str, Any],
        webhooks: list[dict[str, Any]],
    ) -> int:
        """Queue the event for every webhook subscribed to (`event_type`, `event_method`).

        Returns the number of deliveries created (duplicates included). Never blocks on the network.
        """
        payload = {data_key: data, "event": {"type": event_type, "event": event_method}, "channel_id": channel_id}
        created = 0
        with self._cond:
            if self._stopping.is_set():
                return 0
            for hook in webhooks:
                subscribed = any(
                    e.get("type") == event_type and str(e.get("method", "")).lower() == event_method
                    for e in hook.get("events", [])
                )
                if not subscribed:
                    continue
                url, verb = _target(hook["url"], hook.get("mode", "body"), event_type, event_method)
                copies = 2 if self._faults.take_webhook_fault("webhook_duplicate", channel_id) else 1
                for copy_number in range(copies):
                    delivery = Delivery(
                        id=next(self._ids),
                        channel_id=channel_id,
                        event=dict(payload["event"]),
                        url=url,
                        http_method=verb,
                        headers=dict(hook.get("headers") or {}),
                        payload=payload,
                        duplicate=copy_number > 0,
                    )
                    self._log.append(delivery)
                    self._admit(delivery)
                    created += 1
        return created

    def _admit(self, delivery: Delivery) -> None:
        """Hold the delivery for a reorder fault or put it in its queue. Caller holds the lock."""
        hold = self._holds.get(delivery.channel_id)
        if hold is None:
            fault = self._faults.take_whole_webhook_fault("webhook_reorder", delivery.channel_id)
            if fault is not None:
                hold = _Hold(target=fault["count"])
                hold.timer = threading.Timer(
                    self._config.reorder_hold_seconds, self._release_hold, args=(delivery.channel_id, hold)
                )
                hold.timer.daemon = True
                self._holds[delivery.channel_id] = hold
                hold.timer.start()
        if hold is None:
            self._push(delivery)
            return
        delivery.state = "held"
        hold.items.append(delivery)
        if len(hold.items) >= hold.target:
            self._release_hold_locked(delivery.channel_id, hold)

    def _release_hold(self, channel_id: str, hold: _Hold) -> None:
        with self._cond:
            self._release_hold_locked(channel_id, hold)

    def _release_hold_locked(self, channel_id: str, hold: _Hold) -> None:
        if self._holds.get(channel_id) is not hold:
            return  # already released (target reached before the timer fired) or reset
        del self._holds[channel_id]
        if hold.timer is not None:
            hold.timer.cancel()
        for delivery in reversed(hold.items):
            delivery.state = "queued"
            self._push(delivery)
        self._cond.notify_all()

    def _push(self, delivery: Delivery) -> None:
        """Append to the delivery's queue and make sure a worker drains it. Caller holds the lock."""
        if self._stopping.is_set():
            delivery.state = "cancelled"
            return
        key = delivery.queue_key
        self._queues.setdefault(key, collections.deque()).append(delivery)
        if key not in self._workers:
            worker = threading.Thread(target=self._drain, args=(key,), name=f"sandbox-webhook-{key[0]}", daemon=True)
            self._workers[key] = worker
            worker.start()

    # ---- consuming -------------------------------------------------------------------------------

    def _drain(self, key: tuple[str, str]) -> None:
        session = requests.Session()
        # Proxy variables of the environment must not reroute local webhook calls.
        session.trust_env = False
        try:
            while True:
                with self._cond:
                    queue = self._queues.get(key)
                    if self._stopping.is_set() or not queue:
                        for leftover in queue or ():
                            leftover.state = "cancelled"
                        self._queues.pop(key, None)
                        self._workers.pop(key, None)
                        self._cond.notify_all()
                        return
                    delivery = queue.popleft()
                    delivery.state = "sending"
                self._deliver(session, delivery)
        finally:
            session.close()

    def _deliver(self, session: requests.Session, delivery: Delivery) -> None:
        body = json.dumps(delivery.payload).encode()
        headers = {**delivery.headers, "Content-Type": "application/json", "User-Agent": "Whapi-Sandbox/1.0"}
        max_attempts = max(1, self._config.webhook_max_attempts)
        for attempt in range(1, max_attempts + 1):
            status, error = self._attempt(session, delivery, body, headers)
            with self._cond:
                delivery.attempts = attempt
                delivery.status = status
                delivery.error = error
                if status == 200:
                    delivery.state = "delivered"
                elif attempt == max_attempts:
                    delivery.state = "failed"
                else:
                    delivery.state = "retrying"
                if delivery.state != "retrying":
                    delivery.finished_at = time.time()
            if delivery.state == "failed":
                logger.warning(
                    "webhook %s.%s to %s given up after %d attempts (last: %s)",
                    delivery.event["type"],
                    delivery.event["event"],
                    _safe_url(delivery.url),
                    attempt,
                    status or error,
                )
            if delivery.state != "retrying":
                return
            logger.info(
                "webhook %s.%s to %s failed (attempt %d: %s), retrying",
                delivery.event["type"],
                delivery.event["event"],
                _safe_url(delivery.url),
                attempt,
                status or error,
            )
            if self._stopping.wait(self._config.webhook_retry_seconds * attempt):
                with self._cond:
                    delivery.state = "cancelled"
                    delivery.finished_at = time.time()
                return

    def _attempt(
        self, session: requests.Session, delivery: Delivery, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        if self._faults.take_webhook_fault("webhook_fail", delivery.channel_id):
            return None, "injected failure (webhook_fail fault)"
        try:
            response = session.request(
                delivery.http_method,
                delivery.url,
                data=body,
                headers=headers,
                timeout=self._config.webhook_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}"
        response.close()
        return response.status_code, None if response.status_code == 200 else f"HTTP {response.status_code}"

    # ---- inspection and lifecycle ------------------------------------------------------------------

    def log(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log, oldest first (the last 5000 deliveries), optionally of one channel."""
        with self._cond:
            return [d.as_log() for d in self._log if channel_id in (None, d.channel_id)]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is queued, held or being sent; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._workers and not self._holds, timeout)

    def _cancel_holds(self) -> None:
        """Cancel every held delivery and its timer (the caller holds `_cond`)."""
        for hold in self._holds.values():
            if hold.timer is not None:
                hold.timer.cancel()
            for delivery in hold.items:
                delivery.state = "cancelled"
        self._holds.clear()

    def reset(self) -> None:
        """Forget queued and held deliveries and the log (a delivery being sent finishes)."""
        with self._cond:
            self._cancel_holds()
            for queue in self._queues.values():
                for delivery in queue:
                    delivery.state = "cancelled"
                queue.clear()
            self._log.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering: cancel what is queued, wake retry waits, join the workers."""
        self._stopping.set()
        with self._cond:
            self._cancel_holds()
            workers = list(self._workers.values())
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
