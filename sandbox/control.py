"""The control API (`/_sandbox/...`, no auth): inspect the sandbox, act as the phone, move the clock,
change the config, inject faults; plus two tiny HTML pages for humans running the demo.

It is a local test tool: `GET /_sandbox/state` shows tokens on purpose.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .config import config_as_dict
from .errors import ApiError
from .records import DEFAULT_PHONE, DEFAULT_USER_NAME
from .routing import Request, Response, Router, html_response, json_response

if TYPE_CHECKING:
    from .server import SandboxServer

router = Router()

_CHANNEL = r"(?P<channel_id>[^/]+)"
_MAX_WAIT_SECONDS = 30.0

# (method, path, what it does): printed by the management command and shown on the index page.
ENDPOINTS = (
    ("GET", "/_sandbox/", "HTML overview of the channels, with scan links"),
    ("GET", "/_sandbox/state", "everything: config, clock, balance, projects, channels (tokens included)"),
    ("POST", "/_sandbox/channels", 'register channels as they are, silently: {"channels": [{"id", "token", ...}]}'),
    ("GET", "/_sandbox/channels/{id}", "one channel with health, settings, QR link and its gate call log"),
    ("POST", "/_sandbox/channels/{id}/scan", 'the phone scans the QR: {"phone", "name"} (both optional)'),
    ("POST", "/_sandbox/channels/{id}/pair", 'the phone enters the pairing code: {"code", "name"?}'),
    ("POST", "/_sandbox/channels/{id}/logout", "the phone logs out: users.delete, then health QR"),
    ("POST", "/_sandbox/channels/{id}/status", 'force a status: {"text": "ERROR"|"SYNC_ERROR"|"STOP"|...|null}'),
    ("GET", "/_sandbox/clock", "the sandbox clock"),
    ("POST", "/_sandbox/clock", 'move the clock forward: {"advance": seconds}'),
    ("GET", "/_sandbox/config", "the run-time config"),
    ("POST", "/_sandbox/config", 'change init_seconds, create_limit, create_window, ...: {"field": value}'),
    ("GET", "/_sandbox/webhooks", "webhook delivery log (?channel_id=..., ?wait=seconds until idle)"),
    ("POST", "/_sandbox/reset", "forget everything: fresh default project, balance, clock"),
    ("GET", "/_sandbox/faults", "armed faults"),
    ("POST", "/_sandbox/faults", 'arm a fault: {"kind": "status"|"delay"|"lost_response"|"webhook_...", ...}'),
    ("DELETE", "/_sandbox/faults", "disarm all faults"),
    ("GET", "/_sandbox/scan/{id}?code=...", "the page a QR code links to: a form that performs the scan"),
)


@router.route("GET", r"/_sandbox/state")
def state(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.snapshot())


@router.route("POST", r"/_sandbox/channels")
def register_channels(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.register_channels(request.json_object().get("channels")))


@router.route("GET", rf"/_sandbox/channels/{_CHANNEL}")
def channel(server: SandboxServer, request: Request, channel_id: str) -> Response:
    return json_response(server.state.channel_view(channel_id))


@router.route("POST", rf"/_sandbox/channels/{_CHANNEL}/scan")
def scan(server: SandboxServer, request: Request, channel_id: str) -> Response:
    body = request.json_object()
    return json_response(
        server.state.scan(
            channel_id,
            phone=body.get("phone", DEFAULT_PHONE),
            name=body.get("name", DEFAULT_USER_NAME),
            code=body.get("code"),
        )
    )


@router.route("POST", rf"/_sandbox/channels/{_CHANNEL}/pair")
def pair(server: SandboxServer, request: Request, channel_id: str) -> Response:
    body = request.json_object()
    return json_response(server.state.pair(channel_id, code=body.get("code"), name=body.get("name", DEFAULT_USER_NAME)))


@router.route("POST", rf"/_sandbox/channels/{_CHANNEL}/logout")
def logout(server: SandboxServer, request: Request, channel_id: str) -> Response:
    return json_response(server.state.phone_logout(channel_id))


@router.route("POST", rf"/_sandbox/channels/{_CHANNEL}/status")
def force_status(server: SandboxServer, request: Request, channel_id: str) -> Response:
    body = request.json_object()
    if "text" not in body:
        raise ApiError(400, 'Expected {"text": <status text or null>}')
    return json_response(server.state.force_status(channel_id, body["text"]))


@router.route("GET", r"/_sandbox/clock")
def clock(server: SandboxServer, request: Request) -> Response:
    return json_response({"now": server.state.now(), "offset": server.state.clock_offset})


@router.route("POST", r"/_sandbox/clock")
def advance_clock(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.advance_clock(request.json_object().get("advance")))


@router.route("GET", r"/_sandbox/config")
def get_config(server: SandboxServer, request: Request) -> Response:
    return json_response(config_as_dict(server.config))


@router.route("POST", r"/_sandbox/config")
def update_config(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.update_config(request.json()))


@router.route("GET", r"/_sandbox/webhooks")
def webhooks(server: SandboxServer, request: Request) -> Response:
    """The delivery log; `?wait=N` first waits up to N seconds (max 30) for deliveries to settle."""
    idle = True
    if request.query.get("wait"):
        try:
            wait = min(_MAX_WAIT_SECONDS, max(0.0, float(request.query["wait"])))
        except ValueError:
            raise ApiError(400, "wait must be a number of seconds") from None
        idle = server.webhooks.wait_idle(wait)
    return json_response({"idle": idle, "deliveries": server.webhooks.log(request.query.get("channel_id"))})


@router.route("POST", r"/_sandbox/reset")
def reset(server: SandboxServer, request: Request) -> Response:
    server.state.reset()
    return json_response({"success": True})


@router.route("GET", r"/_sandbox/faults")
def list_faults(server: SandboxServer, request: Request) -> Response:
    return json_response({"faults": server.state.list_faults()})


@router.route("POST", r"/_sandbox/faults")
def add_fault(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.add_fault(request.json()), status=201)


@router.route("DELETE", r"/_sandbox/faults")
def clear_faults(server: SandboxServer, request: Request) -> Response:
    server.state.clear_faults()
    return json_response({"success": True})


# ---- HTML for humans ----------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.2rem .6rem;text-align:left}}label{{display:block;margin:.5rem 0}}</style>
</head><body><h1>{title}</h1>{content}</body></html>"""


def _page(title: str, content: str, status: int = 200) -> Response:
    return html_response(_PAGE.format(title=html.escape(title), content=content), status)


@router.route("GET", r"/_sandbox/?")
def index(server: SandboxServer, request: Request) -> Response:
    snapshot = server.state.snapshot()
    rows = []
    for item in snapshot["channels"]:
        action = f'<a href="{html.escape(item["qr"]["link"])}">scan</a>' if item["qr"] else ""
        user = item["user"]["name"] + " (" + item["user"]["id"] + ")" if item["user"] else ""
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(value))}</td>"
                for value in (item["id"], item["name"], item["health"]["status"]["text"], user)
            )
            + f"<td>{action}</td></tr>"
        )
    endpoints = "".join(
        f"<tr><td>{method}</td><td><code>{html.escape(path)}</code></td><td>{html.escape(text)}</td></tr>"
        for method, path, text in ENDPOINTS
    )
    content = (
        f"<p>Partner API: <code>{html.escape(server.url)}</code>, balance {snapshot['balance_days']} days.</p>"
        "<table><tr><th>Channel</th><th>Name</th><th>Status</th><th>Linked phone</th><th></th></tr>"
        + "".join(rows)
        + "</table><h2>Control API</h2><table>"
        + endpoints
        + "</table>"
    )
    return _page("Whapi sandbox", content)


def _scan_form(channel_id: str, code: str) -> str:
    return (
        f'<form method="post" action="/_sandbox/scan/{html.escape(channel_id)}">'
        f'<input type="hidden" name="code" value="{html.escape(code)}">'
        f'<label>Phone number <input name="phone" value="{DEFAULT_PHONE}" pattern="[0-9]{{7,15}}"></label>'
        f'<label>Name <input name="name" value="{DEFAULT_USER_NAME}"></label>'
        '<button type="submit">Scan</button></form>'
    )


@router.route("GET", rf"/_sandbox/scan/{_CHANNEL}")
def scan_page(server: SandboxServer, request: Request, channel_id: str) -> Response:
    """Where the QR's link leads: a form standing in for the phone's camera."""
    code = request.query.get("code", "")
    try:
        view = server.state.channel_view(channel_id)
        if not server.state.qr_code_valid(channel_id, code):
            return _page("QR code expired", "<p>Scan the QR code the portal shows now.</p>", 410)
    except ApiError as error:
        return _page("Cannot scan", f"<p>{html.escape(error.message)}</p>", error.status)
    title = f"Link WhatsApp to {view['name']} ({view['id']})"
    return _page(
        title, f"<p>Status: {html.escape(view['health']['status']['text'])}</p>" + _scan_form(channel_id, code)
    )


@router.route("POST", rf"/_sandbox/scan/{_CHANNEL}")
def scan_submit(server: SandboxServer, request: Request, channel_id: str) -> Response:
    form = request.form()
    try:
        result = server.state.scan(
            channel_id,
            phone=form.get("phone", DEFAULT_PHONE).strip(),
            name=form.get("name", DEFAULT_USER_NAME).strip(),
            code=form.get("code", ""),
        )
    except ApiError as error:
        return _page("Scan failed", f"<p>{html.escape(error.message)}</p>", error.status)
    user: dict[str, Any] = result["user"]
    return _page("Linked", f"<p>{html.escape(user['name'])} ({html.escape(user['id'])}) is now linked.</p>")
