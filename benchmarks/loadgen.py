"""A small, cheap HTTP/1.1 load generator: N connections, one request in flight on each, for a fixed time.

One thread runs a `selectors` (epoll) loop over non-blocking sockets. Requests are ready-made bytes
(the caller's `next_request(connection_index)`), responses are parsed just far enough to find the
status and the end of the body (Content-Length, or the close of the connection). A connection is
kept alive unless the server answers `Connection: close` (gunicorn's sync workers always do), then it
is re-opened and the connect time counts in that request's latency.

Why not `http.client` in threads: header parsing through `email.parser` and 16 threads handing the
GIL around cost about 2.3 times the CPU per request (measured against /livez: 161 µs against 70 µs),
and on a 2-core machine that CPU is taken from the server being measured. `LoadResult.client_cpu_s`
reports what this loop used, so the report can show the client was not the bottleneck.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

RECV_SIZE = 256 * 1024


@dataclass
class LoadResult:
    connections: int
    duration_s: float  # from the first request to the last response
    sent: int = 0  # requests written to a socket
    completed: int = 0  # complete responses
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)  # seconds since the start, per response
    errors: int = 0  # requests without a complete response (connection reset or closed mid-answer)
    timed_out: int = 0  # still unanswered when the drain time ran out
    connects: int = 0
    client_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def keep_alive(self) -> bool:
        """Whether the server kept connections open (fewer connects than requests)."""
        return self.connects < max(1, self.completed) / 2

    @property
    def client_cpu_share(self) -> float:
        """CPU this loop used, as a share of one core over the run."""
        return self.client_cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[index]

    def per_second(self) -> list[dict]:
        """Answers and p99 latency in each second of the run: shows stalls that one p99 hides."""
        buckets: dict[int, list[float]] = {}
        for at, latency in zip(self.finished_at, self.latencies_ms, strict=True):
            buckets.setdefault(int(at), []).append(latency)
        rows = []
        for second in sorted(buckets):
            ordered = sorted(buckets[second])
            rows.append(
                {
                    "second": second,
                    "answers": len(ordered),
                    "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
                    "max_ms": round(ordered[-1], 1),
                }
            )
        return rows

    def summary(self) -> dict:
        return {
            "connections": self.connections,
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "completed": self.completed,
            "requests_per_s": round(self.rps, 1),
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "timed_out": self.timed_out,
            "connects": self.connects,
            "keep_alive": self.keep_alive,
            "latency_ms": {
                name: None if value is None else round(value, 2)
                for name, value in (
                    ("p50", self.percentile(50)),
                    ("p95", self.percentile(95)),
                    ("p99", self.percentile(99)),
                    ("max", max(self.latencies_ms) if self.latencies_ms else None),
                )
            },
            "client_cpu_s": round(self.client_cpu_s, 3),
            "client_cpu_share_of_one_core": round(self.client_cpu_share, 3),
            "per_second": self.per_second(),
        }


class _Connection:
    __slots__ = ("body_len", "buf", "close_after", "header_end", "index", "pending", "sent_at", "sock", "status")

    def __init__(self, index: int) -> None:
        self.index = index
        self.sock: socket.socket | None = None
        self.reset()

    def reset(self) -> None:
        self.buf = bytearray()
        self.pending = False
        self.sent_at = 0.0
        self.header_end = -1
        self.body_len = -1
        self.status = 0
        self.close_after = False


def run_load(
    address: tuple[str, int],
    next_request: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    drain_timeout: float = 15.0,
    requests: int | None = None,
) -> LoadResult:
    """Keep `connections` requests in flight for `duration` seconds, then wait for the last answers.

    With `requests`, stop sending once that many are sent (a storm of a fixed size): `duration` is then
    the longest it may take."""
    selector = selectors.DefaultSelector()
    result = LoadResult(connections=connections, duration_s=0.0)
    conns = [_Connection(index) for index in range(connections)]
    cpu_start = time.process_time()
    clock = time.perf_counter

    def open_socket(conn: _Connection) -> None:
        # No create_connection(): its getaddrinfo() per connect costs more than the connect itself.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(address)  # loopback: completes at once, even before the server accepts
        sock.setblocking(False)
        conn.sock = sock
        result.connects += 1
        selector.register(sock, selectors.EVENT_READ, conn)

    def close_socket(conn: _Connection) -> None:
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    def more() -> bool:
        return clock() < deadline and (requests is None or result.sent < requests)

    def send(conn: _Connection) -> None:
        request = next_request(conn.index)
        for attempt in range(3):
            started = clock()
            try:
                if conn.sock is None:
                    open_socket(conn)
                conn.reset()
                conn.sent_at = started
                sent = conn.sock.send(request)
                if sent < len(request):  # a full socket buffer: finish the write blocking (rare, small bodies)
                    conn.sock.setblocking(True)
                    conn.sock.sendall(request[sent:])
                    conn.sock.setblocking(False)
            except OSError:
                # The server closed a kept-alive connection as we wrote: try the same request on a new one.
                close_socket(conn)
                if attempt == 2:
                    raise
                continue
            conn.pending = True
            result.sent += 1
            return

    def complete(conn: _Connection, now: float) -> None:
        result.completed += 1
        result.statuses[conn.status] += 1
        result.latencies_ms.append((now - conn.sent_at) * 1000)
        result.finished_at.append(now - start)
        conn.pending = False

    start = clock()
    deadline = start + duration
    in_flight = 0
    for conn in conns:
        if requests is not None and result.sent >= requests:
            break
        send(conn)
        in_flight += 1
    hard_stop = deadline + drain_timeout
    last_response = start

    while in_flight:
        events = selector.select(timeout=0.5)
        now = clock()
        if now >= hard_stop:
            break
        for key, _mask in events:
            conn: _Connection = key.data
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server
                if conn.pending and conn.header_end >= 0 and conn.body_len < 0:
                    complete(conn, now)  # a body delimited by the close
                    last_response = now
                elif conn.pending:
                    result.errors += 1
                    conn.pending = False
                close_socket(conn)
                if more():
                    send(conn)
                else:
                    in_flight -= 1
                continue
            buf = conn.buf
            buf += data
            if conn.header_end < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                conn.header_end = end + 4
                head = bytes(buf[:end]).lower()
                conn.status = int(head[9:12])
                found = head.find(b"\r\ncontent-length:")
                if found >= 0:
                    line_end = head.find(b"\r\n", found + 2)
                    conn.body_len = int(head[found + 17 : line_end if line_end >= 0 else len(head)].strip())
                conn.close_after = b"\r\nconnection: close" in head
            if conn.body_len < 0 or len(buf) < conn.header_end + conn.body_len:
                continue
            complete(conn, now)
            last_response = now
            if conn.close_after:
                close_socket(conn)
            if more():
                send(conn)
            else:
                in_flight -= 1

    for conn in conns:
        if conn.pending:
            result.timed_out += 1
        close_socket(conn)
    selector.close()
    result.duration_s = last_response - start
    result.client_cpu_s = time.process_time() - cpu_start
    return result
