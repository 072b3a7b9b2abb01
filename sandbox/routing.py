"""Minimal request/response types and a regex router for the sandbox's HTTP layer (no framework)."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any

from .errors import ApiError

logger = logging.getLogger("sandbox")


@dataclass
class Request:
    """An incoming request: `path` without query; `query` keeps the last value of each parameter."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON; None when empty. Raises ApiError(400) when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Invalid JSON body", details=str(exc)) from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is `{}`. Raises ApiError(400) otherwise."""
        data = self.json()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ApiError(400, "The body must be a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """The body as `application/x-www-form-urlencoded` fields (last value wins)."""
        fields = urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    def bearer_token(self) -> str | None:
        """The token of `Authorization: Bearer <token>`, else of the `?token=` parameter (Whapi takes both)."""
        authorization = self.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return self.query.get("token") or None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode())


def error_response(error: ApiError) -> Response:
    return Response(error.status, json.dumps(error.body()).encode(), headers=dict(error.headers))


def html_response(html: str, status: int = 200) -> Response:
    return Response(status, html.encode(), content_type="text/html; charset=utf-8")


def int_param(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    """An integer query parameter within [low, high]; ApiError(400) otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{name} must be between {low} and {high}" if high is not None else f"{name} >= {low}")
    return value


Handler = Callable[..., Response]


class Router:
    """Routes `(method, full-match regex)` to handlers called as `handler(context, request, **groups)`.

    Routes are tried in the order they were added, so specific paths go before `{id}` catch-alls.
    No match answers 404, a path known under another method 405, both in the ResponseError shape.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append((method, re.compile(pattern), handler))
            return handler

        return register

    def dispatch(self, context: Any, request: Request) -> Response:
        """Answer `request`; ApiErrors become their responses, other exceptions a logged 500."""
        path_known = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            path_known = True
            if method != request.method:
                continue
            try:
                return handler(context, request, **match.groupdict())
            except ApiError as error:
                return error_response(error)
            except Exception:
                logger.exception("sandbox handler failed for %s %s", request.method, request.path)
                return error_response(ApiError(500, "Internal sandbox error"))
        if path_known:
            return error_response(ApiError(405, HTTPStatus.METHOD_NOT_ALLOWED.phrase))
        return error_response(ApiError(404, "Not found"))
