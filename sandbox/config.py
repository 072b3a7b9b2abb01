"""Configuration of the sandbox: timings and limits, changeable at run time through the control API."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from .errors import ApiError


@dataclass
class SandboxConfig:
    """Knobs of the sandbox. The defaults mimic real Whapi; tests shorten the timings.

    Times are seconds of the sandbox clock (which `POST /_sandbox/clock` can move forward), except
    `webhook_retry_seconds`, `webhook_timeout`, `reorder_hold_seconds` and `gate_delay_seconds`, which
    are real seconds: webhook delivery and gate answers talk to real sockets.
    """

    #: Bearer token the partner API accepts (any other token answers 401).
    partner_token: str = "sandbox-partner-token"
    #: A new or restarted channel is INIT, then LAUNCH, for this long; gate calls get 503 meanwhile.
    init_seconds: float = 90.0
    #: Share of `init_seconds` spent in INIT before LAUNCH (Whapi: INIT ~40-50 s, LAUNCH seconds).
    launch_fraction: float = 0.8
    #: At most this many channel creations within `create_window` seconds; the next one gets 429.
    create_limit: int = 20
    create_window: float = 1800.0
    #: Webhook retries wait `webhook_retry_seconds * attempt` (linear, like Whapi's backoff).
    webhook_retry_seconds: float = 3.0
    webhook_max_attempts: int = 10
    #: Timeout of every webhook POST.
    webhook_timeout: float = 10.0
    #: A QR code (and the link it encodes) is replaced this often.
    qr_expire_seconds: int = 20
    #: Partner balance in days at the start (and after a reset): `extend` spends it, `DELETE` refunds.
    balance_days: int = 1000
    #: How often the background ticker looks for time-driven status changes (INIT→LAUNCH→QR, expiry).
    tick_seconds: float = 0.25
    #: A `webhook_reorder` fault releases what it holds after this long even if fewer arrived.
    reorder_hold_seconds: float = 5.0
    #: Every gate API call waits this long before it is answered (Whapi's gate is a remote service;
    #: the benchmarks simulate its latency). 0: answer at once. The `delay` fault is the one-shot kind.
    gate_delay_seconds: float = 0.0
    #: JSON file the state is saved to on every change and loaded from at start; None keeps it in memory.
    state_file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        """Raises ValueError when a timing or limit is out of range (same rules as the control API)."""
        try:
            validate_config_changes({name: getattr(self, name) for name in _RUNTIME_FIELDS})
        except ApiError as error:
            raise ValueError(error.message) from None
        if not isinstance(self.partner_token, str) or not self.partner_token:
            raise ValueError("partner_token must be a non-empty string")


# Fields the control API may change at run time, with the type and the lowest value each accepts.
_RUNTIME_FIELDS: dict[str, tuple[type, float]] = {
    "init_seconds": (float, 0),
    "launch_fraction": (float, 0),
    "create_limit": (int, 0),
    "create_window": (float, 0),
    "webhook_retry_seconds": (float, 0),
    "webhook_max_attempts": (int, 1),
    "webhook_timeout": (float, 0.1),
    "qr_expire_seconds": (int, 1),
    "balance_days": (int, 0),
    "tick_seconds": (float, 0.005),
    "reorder_hold_seconds": (float, 0),
    "gate_delay_seconds": (float, 0),
}
# Highest values, where one is needed (a gate call that waits longer than any client would is a mistake).
_HIGHEST = {"gate_delay_seconds": 60.0}


def config_as_dict(config: SandboxConfig) -> dict[str, Any]:
    """The configuration as JSON-able data (the partner token included: this is a local test tool)."""
    data = dataclasses.asdict(config)
    if data["state_file"] is not None:
        data["state_file"] = os.fspath(data["state_file"])
    return data


def validate_config_changes(changes: Any) -> dict[str, Any]:
    """Check a `POST /_sandbox/config` body and return the changes with their proper types.

    Raises ApiError(400) on an unknown field, a wrong type or a value out of range; nothing is applied
    then. `partner_token` and `state_file` are fixed at start.
    """
    if not isinstance(changes, dict) or not changes:
        raise ApiError(400, "Expected a JSON object of config fields", details=", ".join(_RUNTIME_FIELDS))
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in _RUNTIME_FIELDS:
            raise ApiError(400, f"Unknown or fixed config field {name!r}", details=", ".join(_RUNTIME_FIELDS))
        kind, lowest = _RUNTIME_FIELDS[name]
        # bool is an int subclass; `true` is never a sensible timing.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, f"{name} must be a number")
        if kind is int and value != int(value):
            raise ApiError(400, f"{name} must be an integer")
        if value < lowest:
            raise ApiError(400, f"{name} must be at least {lowest}")
        if name in _HIGHEST and value > _HIGHEST[name]:
            raise ApiError(400, f"{name} must be at most {_HIGHEST[name]:g}")
        if name == "launch_fraction" and value > 1:
            raise ApiError(400, "launch_fraction must be between 0 and 1")
        clean[name] = kind(value)
    return clean
