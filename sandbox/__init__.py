"""The built-in Whapi sandbox: a stand-in for Whapi.Cloud's partner and gate APIs, for development,
tests and benchmarks. It is not part of the product, and imports nothing from it.

It answers the same paths, JSON, auth and status codes as the real APIs (docs/whapi.md), so the
portal talks to it by configuration alone (`WHAPI_PARTNER_URL=<server.url>`). Plain Python, no
Django needed (the Django app only adds `manage.py whapi_sandbox`)::

    from sandbox import SandboxServer, SandboxConfig

    server = SandboxServer(SandboxConfig(init_seconds=1.0), host="127.0.0.1", port=0)
    server.start()
    ...  # partner API at server.url, gate API at server.url + "/gate/", control API at /_sandbox/
    server.stop()

Modules: `state` (the model and every rule), `gate` (its gate calls and the phone's actions),
`records` (the records it keeps, id formats, constants), `api` (partner + gate routes), `control`
(the `/_sandbox/` test API and HTML pages), `webhooks` (delivery), `faults`, `gate_settings`, `qr`,
`config`, `routing`, `server` (HTTP plumbing and lifecycle).
"""

from .config import SandboxConfig
from .errors import ApiError
from .server import SandboxServer
from .state import SandboxState, SandboxStateError

__all__ = ["ApiError", "SandboxConfig", "SandboxServer", "SandboxState", "SandboxStateError"]
