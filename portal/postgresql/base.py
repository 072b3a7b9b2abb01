"""Django's PostgreSQL backend with a health check that needs no round trip while nothing is wrong.

With CONN_HEALTH_CHECKS on, Django checks a reused connection before the first query of each request
by sending `SELECT 1`: one more round trip on every request that touches the database, a tenth of a
webhook callback's CPU time. Here the check is local first: an idle connection whose socket has
nothing to read is usable. A server that closed the connection (a restart, an idle timeout,
`pg_terminate_backend`) has sent its goodbye and end-of-file, so the socket is readable; only then is
`SELECT 1` sent, which fails on a dead connection (Django then opens a new one) and passes on one that
merely got an unsolicited message (a parameter change after a configuration reload).

What this check does not see and `SELECT 1` would: a connection that a firewall or load balancer
dropped silently and resets only when the next packet arrives. The request's first query then fails
(a webhook is answered 503, which Whapi retries) and Django closes the connection at the end of the
request; connections live at most CONN_MAX_AGE (60 s), which keeps this rare. A connection in any
transaction state but idle gets Django's full check.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        pgconn = self.connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        if poller.poll(0):
            return super().is_usable()
        return True
