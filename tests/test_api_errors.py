"""Every error of the API is a problem (RFC 9457, application/problem+json) with a stable type."""

import uuid

import pytest
import responses

from api.problems import PROBLEMS, TYPE_PREFIX
from api.routes import channels as channel_routes
from tests.api_support import PROBLEM, ApiClient, make_key, problem
from tests.conftest import make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(customer):
    return ApiClient(make_key(customer=customer)[1])


def test_401(db):
    body = problem(ApiClient(None).get("/api/v1/customers"), 401, "unauthorized")
    assert body["instance"] == "/api/v1/customers"


def test_403_a_read_only_key_writing(customer, channel):
    api = ApiClient(make_key(customer=customer, can_write=False)[1])
    body = problem(api.patch(f"/api/v1/channels/{channel.code}", {"name": "New"}), 403, "forbidden")
    assert "read-only" in body["detail"]


def test_404_the_same_for_a_missing_id_and_another_customers(api, project, charlie):
    from channels_app.models import Customer, Project

    other = Customer.objects.exclude(pk=project.customer_id).get()
    theirs = make_channel(
        Project.objects.create(whapi_id="OTHERPROJ", name="Theirs", customer=other), whapi_id="THEIRS-00001"
    )
    missing = api.get(f"/api/v1/channels/{uuid.uuid4()}")
    foreign = api.get(f"/api/v1/channels/{theirs.code}")
    body = problem(foreign, 404, "not-found")
    assert {**body, "instance": ""} == {**problem(missing, 404, "not-found"), "instance": ""}


def test_404_for_an_address_no_route_has(api):
    problem(api.get("/api/v1/nothing/here"), 404, "not-found")
    problem(api.get("/api/v1/channels/not-a-uuid"), 404, "not-found")
    problem(api.get("/api/v1/customers/"), 404, "not-found")  # no redirect to another address either


def test_405(api, channel):
    response = api.post(f"/api/v1/channels/{channel.code}/timeline")
    problem(response, 405, "method-not-allowed")
    assert response["Allow"] == "GET"


def test_409_the_state_does_not_allow_it(api, channel):
    body = problem(api.post(f"/api/v1/channels/{channel.code}/restart"), 409, "conflict")
    assert "in error" in body["detail"]


def test_422_names_the_fields(api, customer):
    response = api.post(f"/api/v1/customers/{customer.code}/channels", {"name": "", "project": 7})
    body = problem(response, 422, "invalid")
    assert {error["field"] for error in body["errors"]} == {"name", "project"}
    assert all(error["message"] for error in body["errors"])
    response = api.get(f"/api/v1/customers/{customer.code}/channels", limit=0)
    assert problem(response, 422, "invalid")["errors"][0]["field"] == "limit"


def test_400_for_a_body_that_is_not_json(api, customer):
    response = api.client.post(
        f"/api/v1/customers/{customer.code}/channels",
        b"{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )
    problem(response, 400, "bad-request")


def test_500_says_nothing_of_the_error(api, channel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(channel_routes, "_out", broken)
    response = api.get(f"/api/v1/channels/{channel.code}")
    body = problem(response, 500, "server-error")
    assert "hunter2" not in response.content.decode()
    assert set(body) == {"type", "title", "status", "detail", "instance"}


def test_502_when_whapi_refuses(api, channel, whapi):
    whapi.add(responses.PATCH, f"https://manager.whapi.test/channels/{channel.whapi_id}", status=500, json={})
    body = problem(api.patch(f"/api/v1/channels/{channel.code}", {"name": "New"}), 502, "whapi-error")
    assert body["outcome_unknown"] is True  # a 5xx: Whapi may have renamed it all the same


def test_every_type_is_listed_in_the_docs():
    from pathlib import Path

    guide = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    for slug in PROBLEMS:
        assert f"{TYPE_PREFIX}{slug}" in guide, slug


def test_the_document_lists_the_problems_of_every_operation():
    schema = ApiClient(None).get("/api/v1/openapi.json").json()
    assert schema["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    for path, method, operation in operations:
        responses = operation["responses"]
        assert {"401", "422", "429"} <= set(responses), (method, path)
        assert ("404" in responses) == ("{code}" in path), (method, path)
        assert responses["401"]["content"]["application/problem+json"]
        assert ("413" in responses) == (method in ("post", "put", "patch")), (method, path)
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    assert "channel_create" in ids


def test_problems_are_json(api):
    assert api.get("/api/v1/nope")["Content-Type"] == PROBLEM


def _cursor(values) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b"],
        ["2026-01-01T00:00:00+00:00", "b"],
        ["2026-01-01T00:00:00+00:00", 7],
        ["a\x00", "0b3d6f5e-9a59-4f3c-8d1e-6f9f2b1c7a10"],  # PostgreSQL refuses NUL in a query
    ],
)
def test_422_for_a_cursor_of_the_right_shape_and_the_wrong_values(api, customer, channel, values):
    # A cursor is base64 of JSON: one a client edited by hand has the shape but not the keys' kinds.
    for path in (
        "/api/v1/customers",
        f"/api/v1/customers/{customer.code}/channels",
        f"/api/v1/channels/{channel.code}/timeline",
    ):
        body = problem(api.get(path, cursor=_cursor(values)), 422, "invalid")
        assert body["errors"][0]["field"] == "cursor", path


def test_413_for_a_body_too_large(api, customer, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post(f"/api/v1/customers/{customer.code}/channels", {"name": "x" * 2000})
    body = problem(response, 413, "too-large")
    assert "1000 bytes" in body["detail"]
    assert not project.channels.exists()
