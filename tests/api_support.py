"""Helpers of the API tests (tests/test_api_*.py): keys of each scope and a client that sends one."""

from django.test import Client

from api.keys import api_key_create
from api.models import ApiKey
from channels_app.models import AuditLog, Channel, Customer

PROBLEM = "application/problem+json"


def make_key(
    *, customer: Customer | None = None, channel: Channel | None = None, can_write: bool = True, name: str = "crm"
) -> tuple[ApiKey, str]:
    """A key of `channel`, else of `customer`, else a partner key; returns (row, secret)."""
    return api_key_create(
        name=name, customer=customer, channel=channel, can_write=can_write, actor=None, source=AuditLog.Source.STAFF
    )


class ApiClient:
    """Django's test client with `Authorization: Bearer <key>` on every request."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.key = key

    def _headers(self, headers: dict | None) -> dict:
        merged = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        merged.update(headers or {})
        return merged

    def request(self, method: str, path: str, body=None, *, headers: dict | None = None, **params):
        call = getattr(self.client, method.lower())
        if method.upper() in ("GET", "DELETE", "HEAD", "OPTIONS") and body is None:
            return call(path, params or None, headers=self._headers(headers))
        return call(
            path, body if body is not None else {}, content_type="application/json", headers=self._headers(headers)
        )

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body=None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def put(self, path: str, body=None, **kwargs):
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


def problem(response, status: int, slug: str) -> dict:
    """The problem body of `response`, checked to be of `status` and type `slug`."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == PROBLEM, response["Content-Type"]
    body = response.json()
    assert body["type"] == f"urn:whapi-portal:problem:{slug}", body
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body
