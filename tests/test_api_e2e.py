"""The whole journey over the API, over real sockets, against the built-in sandbox: request a channel,
follow it until it waits for a scan, fetch its QR code as a PNG, scan it (in the sandbox), and read
the channel connected with its number. This is docs/api.md's walk-through."""

import time

import png
import pytest
import requests

from tests.api_support import make_key
from tests.test_e2e import control

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_journey_create_qr_scan_connected(portal, worker, live_server):
    sandbox, project = portal
    customer = project.customer
    _, key = make_key(customer=customer)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    base = f"{live_server.url}/api/v1"

    created = session.post(
        f"{base}/customers/{customer.code}/channels",
        json={"name": "Support line"},
        headers={"Idempotency-Key": "journey-1"},
        timeout=10,
    )
    assert created.status_code == 202, created.text
    channel = created.json()
    assert channel["state"] == "queued"
    assert channel["queue"]["position"] == 1
    location = created.headers["Location"]
    assert location == f"{base}/channels/{channel['code']}"

    def poll(until: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker.step()
            body = session.get(location, timeout=10).json()
            if body["state"] == until:
                return body
            time.sleep(0.1)
        raise AssertionError(f"the channel never reached {until}: {body}")

    ready = poll("waiting_scan")
    assert ready["can_connect"] is True
    assert ready["whapi_id"]

    qr = session.get(f"{location}/qr", headers={"Accept": "image/png"}, timeout=10)
    assert (qr.status_code, qr.headers["Content-Type"]) == (200, "image/png")
    width, _, _, _ = png.Reader(bytes=qr.content).read()
    assert width > 20

    control(sandbox, "POST", f"/channels/{ready['whapi_id']}/scan", phone="14155550123", name="Alice")
    connected = poll("connected")
    assert connected["number"] == "+14155550123"
    assert connected["can_connect"] is False

    timeline = session.get(f"{location}/timeline", timeout=10).json()["items"]
    assert [item["to_state"] for item in timeline][:2] == ["connected", "waiting_scan"]
    assert timeline[-1]["source"] == "api"  # the request, made with the key
