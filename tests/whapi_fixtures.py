"""Fixtures of the Whapi client tests; a test module loads them with
`pytest_plugins = ["tests.whapi_fixtures"]`."""

import pytest
import responses

from channels_app.whapi import GateClient, PartnerClient
from tests.whapi_support import GATE, GATE_TOKEN


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def partner(sleeps) -> PartnerClient:
    return PartnerClient(sleep=sleeps.append)


@pytest.fixture
def gate(sleeps) -> GateClient:
    return GateClient(f"{GATE}/", GATE_TOKEN, sleep=sleeps.append)
