"""The tenancy walk: every route of the API (enumerated from its OpenAPI document, so a new route is
walked without touching this file) with another customer's ids (404, the same answer as an id that
exists nowhere), with a channel's key on another channel of the same customer (404), and with a
read-only key on every write (403). None of them reaches Whapi or changes anything."""

import uuid

import pytest

from api.v1 import api as ninja_api
from channels_app.models import AuditLog, Channel, Customer, HandoffLink, Project
from tests.api_support import ApiClient, make_key, problem
from tests.conftest import make_channel

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1"
# GET routes that change nothing but still need a read-write key: a QR code links a phone.
WRITE_GETS = {"/channels/{code}/qr"}


def _schema() -> dict:
    return ninja_api.get_openapi_schema(path_prefix=PREFIX)


def _example(schema: dict, components: dict):
    """The smallest body the schema accepts (the walk is about who may call, not what is sent)."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].split("/")[-1]], components)
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], components)
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(schema["properties"][name], components) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return schema.get("default", 1)
    if "enum" in schema:
        return schema["enum"][0]
    return "x"


def routes() -> list[tuple[str, str, dict | None]]:
    """(method, path under /api/v1 with {code}, an acceptable body or None) for every operation."""
    schema = _schema()
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = None
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]["schema"]
                body = _example(content, components)
            found.append((method.upper(), path.removeprefix(PREFIX), body))
    return found


ROUTES = routes()
CODE_ROUTES = [route for route in ROUTES if "{code}" in route[1]]


def call(client: ApiClient, method: str, path: str, body, code) -> object:
    return client.request(method, f"{PREFIX}{path.replace('{code}', str(code))}", body)


def is_write(method: str, path: str) -> bool:
    return method != "GET" or path in WRITE_GETS


@pytest.fixture
def world(customer, project):
    """Acme (two channels) and Other Inc (one channel), with Acme's keys."""
    mine = make_channel(project, name="Mine", whapi_id="MINE00-00001")
    sibling = make_channel(project, name="Sibling", whapi_id="SIBLNG-00001")
    other = Customer.objects.create(name="Other Inc")
    theirs = make_channel(
        Project.objects.create(whapi_id="OTHERPROJ", name="Theirs", customer=other), name="Theirs", whapi_id="THEIRS-01"
    )
    return {"customer": customer, "mine": mine, "sibling": sibling, "other": other, "theirs": theirs}


def snapshot() -> tuple:
    return (
        list(Channel.objects.order_by("pk").values_list("pk", "state", "name", "customer_webhook_url")),
        HandoffLink.objects.count(),
        AuditLog.objects.exclude(action="api_key.create").count(),
    )


def test_every_route_is_walked():
    """The walk sees the routes the API has (a sanity check of the enumeration itself)."""
    paths = {path for _, path, _ in ROUTES}
    assert {"/customers", "/customers/{code}/channels", "/channels/{code}", "/channels/{code}/qr"} <= paths
    assert len(CODE_ROUTES) >= 15


@pytest.mark.parametrize(("method", "path", "body"), CODE_ROUTES, ids=[f"{m} {p}" for m, p, _ in CODE_ROUTES])
def test_another_customers_ids_are_not_found(world, whapi, method, path, body):
    api = ApiClient(make_key(customer=world["customer"])[1])
    foreign = world["other"].code if path.startswith("/customers/") else world["theirs"].code
    before = snapshot()
    answer = problem(call(api, method, path, body, foreign), 404, "not-found")
    nowhere = problem(call(api, method, path, body, uuid.uuid4()), 404, "not-found")
    assert {**answer, "instance": None} == {**nowhere, "instance": None}
    assert snapshot() == before
    assert not whapi.calls


@pytest.mark.parametrize(("method", "path", "body"), CODE_ROUTES, ids=[f"{m} {p}" for m, p, _ in CODE_ROUTES])
def test_a_channel_key_does_not_reach_its_sibling(world, whapi, method, path, body):
    """A channel's key on another channel of its customer (or on another customer)."""
    api = ApiClient(make_key(channel=world["mine"])[1])
    target = world["other"].code if path.startswith("/customers/") else world["sibling"].code
    before = snapshot()
    answer = problem(call(api, method, path, body, target), 404, "not-found")
    nowhere = problem(call(api, method, path, body, uuid.uuid4()), 404, "not-found")
    assert {**answer, "instance": None} == {**nowhere, "instance": None}
    assert snapshot() == before
    assert not whapi.calls


WRITES = [route for route in CODE_ROUTES if is_write(route[0], route[1])]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_read_only_key_cannot_write(world, whapi, method, path, body):
    api = ApiClient(make_key(customer=world["customer"], can_write=False)[1])
    code = world["customer"].code if path.startswith("/customers/") else world["mine"].code
    before = snapshot()
    problem(call(api, method, path, body, code), 403, "forbidden")
    assert snapshot() == before
    assert not whapi.calls


READS = [route for route in CODE_ROUTES if not is_write(route[0], route[1])]


@pytest.mark.parametrize(("method", "path", "body"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
def test_a_read_only_key_reads(world, whapi, method, path, body):
    api = ApiClient(make_key(customer=world["customer"], can_write=False)[1])
    code = world["customer"].code if path.startswith("/customers/") else world["mine"].code
    assert call(api, method, path, body, code).status_code == 200


def test_a_channel_key_lists_its_channel_only_and_cannot_request_one(world):
    api = ApiClient(make_key(channel=world["mine"])[1])
    customer = world["customer"]
    assert [item["code"] for item in api.get("/api/v1/customers").json()["items"]] == [str(customer.code)]
    listed = api.get(f"/api/v1/customers/{customer.code}/channels").json()["items"]
    assert [item["code"] for item in listed] == [str(world["mine"].code)]
    problem(api.post(f"/api/v1/customers/{customer.code}/channels", {"name": "More"}), 403, "forbidden")
    assert api.get(f"/api/v1/channels/{world['mine'].code}").status_code == 200


def test_a_customer_key_lists_its_customer_only(world):
    api = ApiClient(make_key(customer=world["customer"])[1])
    assert [item["name"] for item in api.get("/api/v1/customers").json()["items"]] == ["Acme Corp"]


def test_a_partner_key_reaches_every_customer(world):
    api = ApiClient(make_key()[1])
    assert [item["name"] for item in api.get("/api/v1/customers").json()["items"]] == ["Acme Corp", "Other Inc"]
    assert api.get(f"/api/v1/channels/{world['theirs'].code}").status_code == 200


def test_a_deleted_channel_and_a_moved_project_are_out_of_reach(world):
    api = ApiClient(make_key(customer=world["customer"])[1])
    Channel.objects.filter(pk=world["mine"].pk).update(state=Channel.State.DELETED)
    problem(api.get(f"/api/v1/channels/{world['mine'].code}"), 404, "not-found")
    Project.objects.filter(pk=world["sibling"].project_id).update(customer=world["other"])
    problem(api.get(f"/api/v1/channels/{world['sibling'].code}"), 404, "not-found")


def test_a_channel_key_of_a_moved_channel_is_out_of_reach(world):
    """The channel's project went to another customer: the key (of the first customer) sees nothing."""
    api = ApiClient(make_key(channel=world["mine"])[1])
    Project.objects.filter(pk=world["mine"].project_id).update(customer=world["other"])
    problem(api.get(f"/api/v1/channels/{world['mine'].code}"), 404, "not-found")
