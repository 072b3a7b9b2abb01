"""The sandbox's HTTP server: stdlib ThreadingHTTPServer, request faults, and the background ticker."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import api, control
from .config import SandboxConfig
from .errors import ApiError
from .faults import FaultBook
from .routing import Request, Response, error_response
from .state import SandboxState
from .webhooks import WebhookDispatcher

logger = logging.getLogger("sandbox")

_MAX_BODY_BYTES = 1024 * 1024
_CONTROL_PREFIX = "/_sandbox"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    """Reads the request, lets `SandboxServer.respond` answer it, writes (or withholds) the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server_version = "WhapiSandbox/1.0"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this long
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY_BYTES:
                    raise _BadRequest(413, "Request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest(400, "Invalid Content-Length") from None
        if size < 0 or size > _MAX_BODY_BYTES:
            raise _BadRequest(413, "Request body too large")
        return self.rfile.read(size)

    def _handle(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = {
            name: values[-1] for name, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()
        }
        try:
            body = self._read_body()
        except (_BadRequest, ValueError) as exc:
            status, message = (exc.status, exc.message) if isinstance(exc, _BadRequest) else (400, "Bad chunked body")
            self.close_connection = True
            self._send(error_response(ApiError(status, message)))
            return
        request = Request(method=self.command, path=parts.path, query=query, headers=self.headers, body=body)
        response = self.server.sandbox.respond(request)
        if response is None:
            # A `lost_response` fault: the work is done, the client gets no answer at all.
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.status != HTTPStatus.NO_CONTENT:
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Never the full request line: `?token=` may carry a partner or channel token.
        logger.info("%s %s -> %s", self.command, urllib.parse.urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http: " + format, *args)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its open connections, so `stop()` can cut idle keep-alives."""

    daemon_threads = True
    block_on_close = False
    # The default listen backlog of 5 makes bursts of parallel clients wait for SYN retries (1 s).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), a DNS lookup the sandbox never needs.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, lost_response tests) is normal here, not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("client connection ended early: %r", error)
        else:
            logger.exception("sandbox request failed")

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: the client closed it already.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """A local stand-in for Whapi's partner API (at `url`) and gate API (at `url + "/gate/"`).

    The socket is bound in the constructor (port 0 picks a free port), so `url` is known at once.
    `start()` serves from daemon threads and returns; `serve_forever()` serves in the calling thread
    until `stop()` or Ctrl-C. `stop()` ends HTTP serving, the ticker and webhook delivery; it is
    idempotent. Raises SandboxStateError if `config.state_file` exists but cannot be loaded.
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.faults = FaultBook()
        self.webhooks = WebhookDispatcher(self.config, self.faults)
        self._httpd = _HTTPServer((host, port), self)
        bound_host, bound_port = self._httpd.server_address[:2]
        # A wildcard bind is reached through loopback; apiUrl must be an address clients can call.
        url_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host  # noqa: S104
        self.host, self.port = str(bound_host), int(bound_port)
        self.url = f"http://{url_host}:{self.port}"
        try:
            self.state = SandboxState(self.config, base_url=self.url, faults=self.faults, webhooks=self.webhooks)
        except Exception:
            self._httpd.server_close()
            raise
        self._stopping = threading.Event()
        self._lifecycle_lock = threading.Lock()
        self._serving = False
        self._closed = False
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def _begin(self) -> None:
        with self._lifecycle_lock:
            if self._serving or self._closed:
                raise RuntimeError("The sandbox server was already started")
            self._serving = True
        ticker = threading.Thread(target=self._tick_loop, name="sandbox-ticker", daemon=True)
        self._threads.append(ticker)
        ticker.start()

    def start(self) -> None:
        """Serve in background daemon threads; returns at once (the socket already listens)."""
        self._begin()
        # A short poll makes stop() quick (it waits for the loop to notice); tests start hundreds of these.
        serving = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="sandbox-http", daemon=True
        )
        self._threads.append(serving)
        serving.start()
        logger.info("Whapi sandbox listening on %s", self.url)

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` (from another thread) or KeyboardInterrupt (re-raised)."""
        self._begin()
        logger.info("Whapi sandbox listening on %s", self.url)
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving, the ticker and webhook delivery; join the threads. Safe to call twice."""
        with self._lifecycle_lock:
            serving, self._serving = self._serving, False
        if serving:
            self._stopping.set()
            self._httpd.shutdown()  # returns once the serve_forever loop has exited
        self._close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def _close(self) -> None:
        with self._lifecycle_lock:
            if self._closed:
                return
            self._closed = True
            self._serving = False
        self._stopping.set()
        self._httpd.close_connections()
        self.webhooks.stop()
        self._httpd.server_close()

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self.config.tick_seconds):
            try:
                self.state.tick()
            except Exception:
                # A bug in one tick must not silence status changes for the rest of the run.
                logger.exception("sandbox tick failed")

    # ---- requests ----------------------------------------------------------------------------------

    def respond(self, request: Request) -> Response | None:
        """Answer one request, applying armed request faults; None means "send nothing" (lost response).

        The control API is never faulted. Gate calls wait `config.gate_delay_seconds` first (a standing
        latency) and are logged per channel with the status answered.
        """
        if request.path == _CONTROL_PREFIX or request.path.startswith(_CONTROL_PREFIX + "/"):
            return control.router.dispatch(self, request)
        fired = self.faults.take_request_faults(request.method, request.path)
        gate_call = None
        if request.path.startswith("/gate/"):
            gate_call = (self.state.now(), self.state.gate_call_context(request.bearer_token()))
        if gate_call is not None and self.config.gate_delay_seconds:
            self._stopping.wait(self.config.gate_delay_seconds)
        if "delay" in fired:
            self._stopping.wait(fired["delay"]["seconds"])
        if "status" in fired:
            fault = fired["status"]
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
            message = fault.get("message") or HTTPStatus(fault["status"]).phrase
            response = error_response(ApiError(fault["status"], message, headers=headers))
        else:
            response = api.router.dispatch(self, request)
        if gate_call is not None and gate_call[1] is not None:
            at, (channel_id, channel_status) = gate_call
            self.state.record_gate_call(
                channel_id,
                at=at,
                method=request.method,
                path=request.path.removeprefix("/gate"),
                status=response.status,
                channel_status=channel_status,
            )
        if "lost_response" in fired:
            logger.info("lost_response fault: %s %s done, answer withheld", request.method, request.path)
            return None
        return response

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Block until no webhook delivery is queued, held or in flight; False on timeout."""
        return self.webhooks.wait_idle(timeout)

    def __repr__(self) -> str:
        return f"<SandboxServer {self.url}>"
