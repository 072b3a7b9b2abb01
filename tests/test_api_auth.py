"""The API's keys at the door: `Authorization: Bearer <key>` only (401 otherwise, with
WWW-Authenticate), "last used" written at most once a minute, the per-key rate limit (429 with
Retry-After), and no way in with a session cookie."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.keys import api_key_authenticate, api_key_revoke
from api.models import ApiKey, ApiRateWindow
from api.throttle import api_rate_hit
from channels_app.models import AuditLog
from tests.api_support import ApiClient, make_key, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(customer):
    return make_key(customer=customer)


def customers(client: ApiClient):
    return client.get("/api/v1/customers")


def test_it_works(key, customer):
    response = customers(ApiClient(key[1]))
    assert response.status_code == 200
    assert [item["code"] for item in response.json()["items"]] == [str(customer.code)]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=",
        "Token wpk_0123456789_abc",
        "Bearer wpk_0123456789_notthekey",
        "Bearer not-a-key-at-all",
        "Bearer wpk_short_abc",
    ],
)
def test_it_refuses_a_missing_malformed_or_wrong_key(key, header):
    client = ApiClient(None)
    response = client.get("/api/v1/customers", headers={"Authorization": header} if header is not None else None)
    body = problem(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "wpk_" not in body["detail"]


def test_a_key_never_reaches_the_log(key, settings, caplog):
    """Not even with DEBUG on, where ninja's own bearer class logs a header of another scheme."""
    settings.DEBUG = True
    _, secret = key
    with caplog.at_level("DEBUG"):
        for header in (f"Token {secret}", f"Bearer {secret}x", secret):
            ApiClient(None).get("/api/v1/customers", headers={"Authorization": header})
    assert secret not in caplog.text


def test_a_wrong_secret_with_a_real_prefix_is_refused(key):
    _, secret = key
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    problem(customers(ApiClient(forged)), 401, "unauthorized")


def test_a_revoked_key_is_refused_at_once(key):
    row, secret = key
    assert customers(ApiClient(secret)).status_code == 200
    assert api_key_revoke(row, actor=None, source=AuditLog.Source.STAFF)
    problem(customers(ApiClient(secret)), 401, "unauthorized")


def test_last_used_is_written_at_most_once_a_minute(key):
    row, secret = key
    assert row.last_used_at is None
    customers(ApiClient(secret))
    first = ApiKey.objects.get(pk=row.pk).last_used_at
    assert first is not None
    customers(ApiClient(secret))
    assert ApiKey.objects.get(pk=row.pk).last_used_at == first
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(seconds=61))
    customers(ApiClient(secret))
    assert ApiKey.objects.get(pk=row.pk).last_used_at > first - timedelta(seconds=1)


def test_a_session_is_no_way_in(client, alice, customer):
    """A signed-in customer's cookie does not authenticate the API: a page of another site cannot
    make the browser act through it (CSRF)."""
    client.force_login(alice)
    problem(client.get("/api/v1/customers"), 401, "unauthorized")
    response = client.post(
        f"/api/v1/customers/{customer.code}/channels", {"name": "x"}, content_type="application/json"
    )
    problem(response, 401, "unauthorized")


def test_a_key_needs_no_csrf_token(key, customer, project):
    """The API is exempt from Django's CSRF check: no cookie authenticates it (above)."""
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        f"/api/v1/customers/{customer.code}/channels",
        {"name": "Support line"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key[1]}"},
    )
    assert response.status_code == 202


def test_the_document_and_the_docs_page_need_no_key():
    client = ApiClient(None)
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["ApiKeyBearer"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"/static/ninja/swagger-ui-bundle.js" in docs.content  # served by the portal, not a CDN


# ------------------------------------------------------------------------------------------------
# The rate limit
# ------------------------------------------------------------------------------------------------
def test_the_rate_limit_answers_429_with_retry_after(key, settings):
    settings.API_RATE_LIMIT = 3
    settings.API_RATE_WINDOW_SECONDS = 3600
    client = ApiClient(key[1])
    assert [customers(client).status_code for _ in range(3)] == [200, 200, 200]
    response = customers(client)
    body = problem(response, 429, "rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert body["retry_after"] == int(response["Retry-After"])


def test_the_limit_is_per_key(key, customer, settings):
    settings.API_RATE_LIMIT = 1
    settings.API_RATE_WINDOW_SECONDS = 3600
    _, other = make_key(customer=customer, name="other")
    assert customers(ApiClient(key[1])).status_code == 200
    assert customers(ApiClient(key[1])).status_code == 429
    assert customers(ApiClient(other)).status_code == 200


def test_a_new_window_starts_afresh_and_drops_the_old_one(key, settings):
    settings.API_RATE_LIMIT = 2
    settings.API_RATE_WINDOW_SECONDS = 60
    row, _ = key
    start = timezone.now().replace(second=0, microsecond=0)
    assert [api_rate_hit(row, now=start + timedelta(seconds=s)) for s in (1, 2)] == [0, 0]
    assert api_rate_hit(row, now=start + timedelta(seconds=50)) == 10  # the rest of the window
    assert api_rate_hit(row, now=start + timedelta(seconds=61)) == 0
    assert ApiRateWindow.objects.filter(api_key=row).count() == 1  # the old window is gone


def test_requests_without_a_valid_key_count_for_no_key(key, settings):
    settings.API_RATE_LIMIT = 1
    for _ in range(3):
        customers(ApiClient("wpk_0123456789_wrong"))
    assert not ApiRateWindow.objects.exists()
    assert customers(ApiClient(key[1])).status_code == 200


def test_authenticate_ignores_what_is_not_a_key():
    assert api_key_authenticate("") is None
    assert api_key_authenticate("wpk_") is None
    assert api_key_authenticate("wpk_0123456789") is None
