"""Routes of the two Whapi APIs the sandbox imitates: the partner API (root) and the gate API (`/gate`).

Handlers only translate HTTP to `SandboxState` calls; the rules live in the state. Partner routes
check the partner token first (401 before anything else, as a real API gateway would); gate routes
authenticate by channel token inside the state, which also answers 503 while a channel initializes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .qr import png_data_url, qr_png
from .routing import Request, Response, Router, int_param, json_response

if TYPE_CHECKING:
    from .server import SandboxServer

router = Router()

_ID = r"(?P<{}>[^/]+)"
_CHANNEL = _ID.format("channel_id")
_PROJECT = _ID.format("project_id")


@functools.lru_cache(maxsize=64)
def _cached_png(link: str) -> bytes:
    # Clients poll the QR every few seconds while it only changes every `qr_expire_seconds`.
    return qr_png(link)


def _partner(handler: Any) -> Any:
    """Decorator: 401 unless the partner token is given; the handler's data becomes a JSON answer."""

    @functools.wraps(handler)
    def wrapper(server: SandboxServer, request: Request, **kwargs: str) -> Response:
        if not server.state.check_partner_token(request.bearer_token()):
            raise ApiError(401, "Unauthorized: invalid partner token")
        return json_response(handler(server, request, **kwargs))

    return wrapper


def _page_args(request: Request) -> dict[str, Any]:
    return {
        "count": int_param(request, "count", 100, 1, 500),
        "offset": int_param(request, "offset", 0, 0),
        "uid": request.query.get("uid") or None,
    }


# ---- partner API: projects ----------------------------------------------------------------------


@router.route("GET", r"/projects")
@_partner
def list_projects(server: SandboxServer, request: Request) -> dict[str, Any]:
    return server.state.list_projects(**_page_args(request))


@router.route("PUT", r"/projects")
@_partner
def create_project(server: SandboxServer, request: Request) -> dict[str, Any]:
    return server.state.create_project(request.json())


@router.route("GET", rf"/projects/{_PROJECT}")
@_partner
def get_project(server: SandboxServer, request: Request, project_id: str) -> dict[str, Any]:
    return server.state.get_project(project_id)


@router.route("PATCH", rf"/projects/{_PROJECT}")
@_partner
def update_project(server: SandboxServer, request: Request, project_id: str) -> dict[str, Any]:
    return server.state.update_project(project_id, request.json())


@router.route("DELETE", rf"/projects/{_PROJECT}")
@_partner
def delete_project(server: SandboxServer, request: Request, project_id: str) -> dict[str, Any]:
    return server.state.delete_project(project_id)


# ---- partner API: channels ----------------------------------------------------------------------


@router.route("PUT", r"/channels")
@_partner
def create_channel(server: SandboxServer, request: Request) -> dict[str, Any]:
    return server.state.create_channel(request.json())


@router.route("GET", r"/channels/list")
@_partner
def list_channels(server: SandboxServer, request: Request) -> dict[str, Any]:
    return server.state.list_channels(**_page_args(request))


@router.route("GET", rf"/channels/list/{_PROJECT}")
@_partner
def list_project_channels(server: SandboxServer, request: Request, project_id: str) -> dict[str, Any]:
    return server.state.list_channels(**_page_args(request), project_id=project_id)


@router.route("GET", rf"/channels/{_CHANNEL}")
@_partner
def get_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.get_channel(channel_id)


@router.route("PATCH", rf"/channels/{_CHANNEL}")
@_partner
def update_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.update_channel(channel_id, request.json())


@router.route("DELETE", rf"/channels/{_CHANNEL}")
@_partner
def delete_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.delete_channel(channel_id)


@router.route("POST", rf"/channels/{_CHANNEL}/start")
@_partner
def start_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.start_channel(channel_id)


@router.route("POST", rf"/channels/{_CHANNEL}/stop")
@_partner
def stop_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.stop_channel(channel_id, request.json())


@router.route("POST", rf"/channels/{_CHANNEL}/restart")
@_partner
def restart_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.restart_channel(channel_id)


@router.route("POST", rf"/channels/{_CHANNEL}/extend")
@_partner
def extend_channel(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.extend_channel(channel_id, request.json())


@router.route("GET", r"/partners/(?P<name>[A-Za-z0-9_.-]{1,64})/settings")
@_partner
def get_partner_settings(server: SandboxServer, request: Request, name: str) -> dict[str, Any]:
    return server.state.get_partner_settings()


@router.route("PATCH", r"/partners/(?P<name>[A-Za-z0-9_.-]{1,64})/settings")
@_partner
def patch_partner_settings(server: SandboxServer, request: Request, name: str) -> dict[str, Any]:
    return server.state.patch_partner_settings(request.json())


@router.route("PATCH", rf"/channels/{_CHANNEL}/mode")
@_partner
def set_mode(server: SandboxServer, request: Request, channel_id: str) -> dict[str, Any]:
    return server.state.set_mode(channel_id, request.json())


# ---- gate API -----------------------------------------------------------------------------------


@router.route("GET", r"/gate/health")
def gate_health(server: SandboxServer, request: Request) -> Response:
    # `wakeup`, `platform` and `channel_type` are accepted and ignored: sandbox channels are always web.
    return json_response(server.state.gate_health(request.bearer_token()))


@router.route("GET", r"/gate/settings")
def gate_settings(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.gate_settings(request.bearer_token()))


@router.route("PATCH", r"/gate/settings")
def gate_patch_settings(server: SandboxServer, request: Request) -> Response:
    token = request.bearer_token()
    server.state.gate_settings(token)  # 401/503 take precedence over a malformed body
    return json_response(server.state.gate_patch_settings(token, request.json()))


@router.route("DELETE", r"/gate/settings")
def gate_reset_settings(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.gate_reset_settings(request.bearer_token()))


@router.route("GET", r"/gate/settings/events")
def gate_allowed_events(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.gate_allowed_events(request.bearer_token()))


@router.route("GET", r"/gate/users/login")
def gate_qr(server: SandboxServer, request: Request) -> Response:
    """QR as JSON. Query options (size, colours) are accepted and ignored: one rendering fits tests."""
    qr = server.state.gate_qr(request.bearer_token())
    return json_response({"status": "OK", "base64": png_data_url(_cached_png(qr["link"])), "expire": qr["expire"]})


@router.route("GET", r"/gate/users/login/image")
def gate_qr_image(server: SandboxServer, request: Request) -> Response:
    qr = server.state.gate_qr(request.bearer_token())
    return Response(200, _cached_png(qr["link"]), content_type="image/png")


@router.route("GET", r"/gate/users/login/rowdata")
def gate_qr_rowdata(server: SandboxServer, request: Request) -> Response:
    """The raw QR content, which in the sandbox is the scan link."""
    qr = server.state.gate_qr(request.bearer_token())
    return json_response({"status": "OK", "rowdata": qr["link"], "expire": qr["expire"]})


@router.route("GET", r"/gate/users/login/(?P<phone>[^/]+)")
def gate_pairing_code(server: SandboxServer, request: Request, phone: str) -> Response:
    return json_response(server.state.gate_pairing_code(request.bearer_token(), phone))


@router.route("POST", r"/gate/users/logout")
def gate_logout(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.gate_logout(request.bearer_token()))


@router.route("GET", r"/gate/users/profile")
def gate_profile(server: SandboxServer, request: Request) -> Response:
    return json_response(server.state.gate_profile(request.bearer_token()))


@router.route("GET", r"/gate/limits")
def gate_limits(server: SandboxServer, request: Request) -> Response:
    limits = server.state.gate_limits(request.bearer_token())
    return Response(204) if limits is None else json_response(limits)
