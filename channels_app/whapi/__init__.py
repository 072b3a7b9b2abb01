"""The Whapi client: the single HTTP seam between the portal and Whapi.Cloud (docs/whapi.md).

Every outbound call to Whapi goes through `PartnerClient` (the partner API, partner token) or
`GateClient` (one channel's gate API, channel token), and every failure is a `WhapiError`.

    errors.py     WhapiError: permanent / retryable / outcome-unknown, and how it pickles
    payloads.py   WhapiProject, WhapiChannel, Health, QrCode and their parsing helpers
    transport.py  BaseClient, the shared transport: timeouts, GET retries, error mapping, logging
    partner.py    PartnerClient, partner_client(), CHANNEL_MODES (docs/whapi.md §1)
    gate.py       GateClient, gate_client(), INTERACTIVE_TIMEOUT (docs/whapi.md §2)

partner.py and gate.py list their endpoints; each method's docstring cites its section.
"""

from channels_app.whapi.errors import WhapiError
from channels_app.whapi.gate import GateClient, gate_client
from channels_app.whapi.partner import CHANNEL_MODES, PartnerClient, partner_client
from channels_app.whapi.payloads import Health, QrCode, WhapiChannel, WhapiProject

__all__ = [
    "CHANNEL_MODES",
    "GateClient",
    "Health",
    "PartnerClient",
    "QrCode",
    "WhapiChannel",
    "WhapiError",
    "WhapiProject",
    "gate_client",
    "partner_client",
]
