"""Events end to end over real sockets: a channel made through the pipeline against the built-in
sandbox, scanned, logged out and deleted, while the customer's system (a local HTTP server) receives
every event, each verified with the `standardwebhooks` library; one that answers 500 first gets the
same message again. The URL rules are relaxed for the local receiver only (they refuse 127.0.0.1)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from channels_app import pipeline, webhook_urls
from channels_app.models import Channel
from events import delivery as sender
from events.models import Delivery, Endpoint, EventType

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = "14155550123"


class Receiver:
    """The customer's system: keeps each request (headers, body); answers with `answers` in turn, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/portal/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, secret: str) -> list[dict]:
        return [Webhook(secret).verify(body, headers) for headers, body in self.requests]


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setattr(webhook_urls, "customer_url_problem", lambda url, sender="Whapi": "")
    monkeypatch.setattr(webhook_urls, "peer_allowed", lambda address: True)  # the receiver is on loopback
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def control(sandbox, verb: str, route: str, **body):
    response = requests.request(verb, f"{sandbox.url}/_sandbox{route}", json=body or None, timeout=5)
    response.raise_for_status()


def test_a_channels_life_reaches_the_customers_system_signed(portal, worker, receiver, settings):
    sandbox, project = portal
    settings.ALERT_GRACE_SECONDS = 1.0
    settings.EXPIRY_REMINDER_DAYS = [1]  # the sandbox's trial has days left: no reminder here
    endpoint = Endpoint.objects.create(customer=project.customer, url=receiver.url, event_types=list(EventType.values))
    channel = pipeline.channel_queue(project=project, name="Shop bot", source="customer")[0]
    worker.run_until(lambda: Channel.objects.get(pk=channel.pk).state == "waiting_scan", what="configuration")
    worker.run_until(lambda: len(receiver.requests) >= 2, what="created and ready for the scan")

    control(sandbox, "POST", f"/channels/{Channel.objects.get(pk=channel.pk).whapi_id}/scan", phone=PHONE, name="Alice")
    worker.run_until(lambda: len(receiver.requests) >= 3, what="connected")
    whapi_id = Channel.objects.get(pk=channel.pk).whapi_id
    control(sandbox, "POST", f"/channels/{whapi_id}/logout")
    worker.run_until(lambda: len(receiver.requests) >= 4, timeout=30, what="the confirmed disconnect")

    # Deliveries go a few at a time: the order they arrive in is not the order of the events.
    events = sorted(receiver.verified(endpoint.secret), key=lambda event: event["timestamp"])
    assert [event["type"] for event in events] == [
        "channel.created",
        "channel.ready_for_scan",
        "channel.connected",
        "channel.disconnected",
    ]
    assert {event["data"]["channel_id"] for event in events} == {str(channel.code)}
    assert events[2]["data"]["number"] == f"+{PHONE}"
    assert events[3]["data"]["confirmed"] is True
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 4


def test_a_failed_delivery_arrives_again_with_the_same_id(portal, worker, receiver, monkeypatch):
    _, project = portal
    monkeypatch.setattr(sender, "RETRY_DELAYS", (sender.RETRY_DELAYS[0] * 0,) * 7)
    endpoint = Endpoint.objects.create(customer=project.customer, url=receiver.url, event_types=[EventType.CREATED])
    receiver.answers = [500]
    pipeline.channel_queue(project=project, name="Shop bot", source="customer")
    worker.run_until(lambda: len(receiver.requests) >= 2, what="the retry")
    (first_headers, first_body), (second_headers, second_body) = receiver.requests[:2]
    assert first_headers["webhook-id"] == second_headers["webhook-id"] and first_body == second_body
    assert json.loads(Webhook(endpoint.secret).verify(second_body, second_headers) and second_body)["type"] == (
        "channel.created"
    )
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempts == 2
    assert list(delivery.attempt_log.order_by("at", "pk").values_list("status_code", flat=True)) == [500, 200]
