"""Helpers of the Whapi client tests (tests/test_whapi_*.py): addresses, tokens, failures as requests
raises them. The fixtures are in tests/whapi_fixtures.py (loaded with `pytest_plugins`).

The payloads in tests/fixtures/whapi/ are the examples of docs/whapi.md (doc example of a channel
create, DOC-STATUS health examples, the spec's Settings and ResponseError shapes); the QR fixtures
carry a real 8x8 PNG, once bare and once behind a `data:image/png;base64,` prefix.
"""

import json
from http.client import RemoteDisconnected

import requests
import urllib3.exceptions

PARTNER = "https://manager.whapi.test"  # WHAPI_PARTNER_URL of tests/environment.py
PARTNER_TOKEN = "test-partner-token"
GATE = "https://gate.whapi.test"
GATE_TOKEN = "Zx8Vb2Nm4Lk6Jh0Gf1Ds3Aq5Wr7Ty9Ui"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port."""
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/channels", reason))


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the server closes the connection after getting the request."""
    reason = RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reason))
