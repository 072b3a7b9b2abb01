"""Tests of the sandbox's bulk channel registration (`POST /_sandbox/channels`) and its standing gate
latency (`gate_delay_seconds`, `whapi_sandbox --gate-delay-ms`): what the benchmarks use to give
thousands of seeded channels a gate that answers, as slowly as a remote one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from sandbox import SandboxServer

TIMEOUT = 5
REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN_A = "A" * 32
TOKEN_B = "B" * 32


def control(sandbox: SandboxServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox{path}", timeout=TIMEOUT, **kwargs)


def gate(sandbox: SandboxServer, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, f"{sandbox.url}/gate/{path}", headers=headers, timeout=TIMEOUT, **kwargs)


def register(sandbox: SandboxServer, *channels: dict[str, Any]) -> requests.Response:
    return control(sandbox, "POST", "/channels", json={"channels": list(channels)})


def test_registered_channels_answer_on_the_gate_at_once(sandbox):
    response = register(
        sandbox,
        {"id": "BULKAA-00001", "token": TOKEN_A, "user": {"id": "14155550001", "name": "Ann"}},
        {"id": "BULKAA-00002", "token": TOKEN_B, "started_at": 1_713_774_883},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"registered": 2, "channels": 2}
    linked = gate(sandbox, TOKEN_A, "GET", "health").json()
    assert linked["status"]["text"] == "AUTH"
    assert linked["user"]["id"] == "14155550001"
    waiting = gate(sandbox, TOKEN_B, "GET", "health").json()
    assert waiting["status"]["text"] == "QR"
    assert waiting["start_at"] == 1_713_774_883
    # Past start-up already: calls that wait for init answer too.
    assert gate(sandbox, TOKEN_B, "GET", "settings").status_code == 200


def test_registered_settings_are_applied_over_the_defaults(sandbox):
    hook = {"url": "http://127.0.0.1:9/whapi/webhook", "mode": "body", "events": [{"type": "users", "method": "post"}]}
    register(sandbox, {"id": "BULKAA-00001", "token": TOKEN_A, "settings": {"webhooks": [hook]}})
    settings = gate(sandbox, TOKEN_A, "GET", "settings").json()
    assert settings["webhooks"][0]["url"] == hook["url"]
    assert settings["callback_persist"] is False  # a default, untouched


def test_registering_again_replaces_the_channel_without_a_webhook(sandbox):
    hook = {
        "url": "http://127.0.0.1:9/whapi/webhook",
        "mode": "body",
        "events": [{"type": "users", "method": "delete"}],
    }
    user = {"id": "14155550001", "name": "Ann"}
    register(sandbox, {"id": "BULKAA-00001", "token": TOKEN_A, "user": user, "settings": {"webhooks": [hook]}})
    response = register(sandbox, {"id": "BULKAA-00001", "token": TOKEN_B, "settings": {"webhooks": [hook]}})
    assert response.json() == {"registered": 1, "channels": 1}
    assert gate(sandbox, TOKEN_B, "GET", "health").json()["status"]["text"] == "QR"
    assert gate(sandbox, TOKEN_A, "GET", "health").status_code == 401  # the old token is gone
    sandbox.state.tick()
    assert sandbox.wait_for_webhooks(1.0)
    assert control(sandbox, "GET", "/webhooks").json()["deliveries"] == []


def test_registration_checks_every_item_before_applying_any(sandbox):
    register(sandbox, {"id": "BULKAA-00001", "token": TOKEN_A})
    cases = [
        [{"id": "not-an-id", "token": TOKEN_B}],
        [{"id": "BULKAA-00002"}],
        [{"id": "BULKAA-00002", "token": TOKEN_B, "user": {"id": "12ab"}}],
        [{"id": "BULKAA-00002", "token": TOKEN_B, "mode": "gold"}],
        [{"id": "BULKAA-00002", "token": TOKEN_B, "colour": "red"}],
        [{"id": "BULKAA-00002", "token": TOKEN_B, "started_at": "yesterday"}],
        [{"id": "BULKAA-00002", "token": TOKEN_B, "settings": {"webhooks": "nope"}}],
        [{"id": "BULKAA-00002", "token": TOKEN_A}],  # the token of another channel
        [{"id": "BULKAA-00002", "token": TOKEN_B}, {"id": "BULKAA-00002", "token": "C" * 32}],
        [{"id": "BULKAA-00002", "token": TOKEN_B}, "not an object"],
    ]
    for channels in cases:
        response = register(sandbox, *channels)
        assert response.status_code == 400, channels
    assert control(sandbox, "POST", "/channels", json={}).status_code == 400
    assert [item["id"] for item in control(sandbox, "GET", "/state").json()["channels"]] == ["BULKAA-00001"]


def test_gate_calls_wait_for_the_gate_delay(sandbox):
    register(sandbox, {"id": "BULKAA-00001", "token": TOKEN_A})
    assert control(sandbox, "POST", "/config", json={"gate_delay_seconds": 2.0}).status_code == 200
    started = time.monotonic()
    assert gate(sandbox, TOKEN_A, "GET", "health").status_code == 200
    assert time.monotonic() - started >= 2.0
    # The partner and control APIs do not wait.
    started = time.monotonic()
    assert control(sandbox, "GET", "/state").status_code == 200
    assert time.monotonic() - started < 1.0


def test_gate_delay_is_bounded(sandbox):
    assert control(sandbox, "POST", "/config", json={"gate_delay_seconds": 61}).status_code == 400
    assert control(sandbox, "POST", "/config", json={"gate_delay_seconds": -1}).status_code == 400


def test_management_command_takes_the_gate_delay_in_milliseconds():
    command = [sys.executable, "manage.py", "whapi_sandbox", "--port", "0", "--gate-delay-ms", "250"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        banner = ""
        while "CONTROL-C" not in banner:
            line = process.stdout.readline()
            assert line, banner
            banner += line
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner).group(1)
        assert "gate delay  : 250 ms per call" in banner
        assert requests.get(url + "/_sandbox/config", timeout=TIMEOUT).json()["gate_delay_seconds"] == 0.25
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
