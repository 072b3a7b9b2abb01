"""pytest plugin (registered in tests/conftest.py): the built-in Whapi sandbox, run in-process.

Each server listens on 127.0.0.1 port 0 (a free port, so `pytest -n` workers never collide), serves
from daemon threads and is stopped at teardown. Nothing here needs Django or the database.

- `sandbox_config`: the SandboxConfig the `sandbox` fixture starts with, with short timings
  (`TEST_TIMINGS`). Override the fixture in a module to change them, or use `sandbox_factory`.
- `sandbox`: a started `SandboxServer`; `sandbox.url` is the partner API base URL (what
  WHAPI_PARTNER_URL would be), `sandbox.state` the model, `sandbox.webhooks` the delivery log.
- `sandbox_factory`: `make(config=None, **config_overrides) -> started SandboxServer`, for tests
  that need several servers or a restart on the same state file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import SandboxConfig, SandboxServer

# Fast enough for a test suite, slow enough that "during init" is observable: tests that need to be
# past init move the sandbox clock (`POST /_sandbox/clock`) instead of sleeping.
TEST_TIMINGS: dict[str, Any] = {
    "init_seconds": 0.5,
    "webhook_retry_seconds": 0.05,
    "webhook_max_attempts": 4,
    "webhook_timeout": 2.0,
    "tick_seconds": 0.02,
    "reorder_hold_seconds": 1.0,
}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Configuration of the `sandbox` fixture: defaults with the short `TEST_TIMINGS`."""
    return SandboxConfig(**TEST_TIMINGS)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes on demand; every one of them is stopped at teardown."""
    servers: list[SandboxServer] = []

    def make(config: SandboxConfig | None = None, **overrides: Any) -> SandboxServer:
        base = config or SandboxConfig(**TEST_TIMINGS)
        server = SandboxServer(dataclasses.replace(base, **overrides), host="127.0.0.1", port=0)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxServer], sandbox_config: SandboxConfig) -> SandboxServer:
    """A running sandbox with `sandbox_config`, stopped after the test."""
    return sandbox_factory(sandbox_config)
