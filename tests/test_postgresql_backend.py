"""The PostgreSQL backend's health check: no query while the connection is fine, a new connection
after the server dropped it. Runs when the suite runs on PostgreSQL (DATABASE_URL)."""

import time

import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only"),
]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_healthy_connection_passes_without_a_query(monkeypatch):
    connection.ensure_connection()

    def no_queries(*args, **kwargs):
        raise AssertionError("the health check sent a query")

    monkeypatch.setattr(connection.connection, "cursor", no_queries)
    assert connection.is_usable() is True


def test_a_connection_the_server_dropped_is_replaced():
    connection.health_check_enabled = True
    old_pid = _backend_pid()
    # Another session ends ours, as a server restart or an idle timeout would.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    finally:
        other.close()
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connection.is_usable() is False
    # The next request's first query gets a fresh connection instead of an error.
    connection.health_check_done = False
    assert _backend_pid() != old_pid


def test_a_closed_connection_is_not_usable():
    connection.ensure_connection()
    connection.connection.close()
    assert connection.is_usable() is False
    connection.close()
