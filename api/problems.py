"""Errors of the API as problem details (RFC 9457): `application/problem+json` bodies
`{"type", "title", "status", "detail", "errors"?}` whose `type` is stable (docs/api.md lists them).

Routes raise `ApiProblem`; `install` makes every other way a request can fail answer the same way:
ninja's validation (422 with field errors), a body beyond DATA_UPLOAD_MAX_MEMORY_SIZE (413),
authentication (401), the rate limit (429), Http404, an address under /api/v1/ that no route has
(404), a method a route does not take (405) and any unhandled error (500, with nothing of the error
in the body: it is logged for staff).
"""

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from channels_app.actions import ActionError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:whapi-portal:problem:"

# slug → (status, title). The slugs are part of the API: never rename one.
PROBLEMS: dict[str, tuple[int, str]] = {
    "bad-request": (400, "The request cannot be read (its body is not JSON)."),
    "too-large": (413, "The request's body is too large."),
    "unauthorized": (401, "A valid API key is needed."),
    "forbidden": (403, "The API key does not allow this."),
    "not-found": (404, "Not found."),
    "method-not-allowed": (405, "This address does not take this method."),
    "conflict": (409, "The channel's state does not allow this now."),
    "quota-exceeded": (409, "The customer's channel quota is used up."),
    "idempotency-conflict": (409, "This Idempotency-Key was used for another request."),
    "invalid": (422, "The request has invalid fields."),
    "rate-limited": (429, "Too many requests with this API key."),
    "whapi-error": (502, "Whapi could not carry out the action."),
    "not-ready": (503, "Not ready yet; ask again shortly."),
    "server-error": (500, "Something went wrong on our side."),
}


PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is one of docs/api.md's list.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": [f"{TYPE_PREFIX}not-found"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "422: the fields in error.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
}
# The problems any operation may answer, as the OpenAPI document lists them.
_COMMON = {
    "401": "No valid API key (`WWW-Authenticate: Bearer`)",
    "422": "Invalid fields (`errors`)",
    "429": "The key's rate limit (`Retry-After`)",
}


def document(schema: dict) -> dict:
    """Add the Problem schema and the problems each operation may answer to an OpenAPI document."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            answers = dict(_COMMON)
            if "{code}" in path:
                answers["404"] = "Not found, or outside the key's scope"
            if method in ("post", "put", "patch"):
                answers["413"] = "The body is too large"
            if method != "get" or path.endswith("/qr"):
                answers["403"] = "The key is read-only (or a channel's key requesting a channel)"
            # ninja keys its answers by int, openapi_extra may too: one key per status, as JSON has it.
            responses = {str(status): response for status, response in operation.get("responses", {}).items()}
            operation["responses"] = responses
            for status, description in answers.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45":
                    response.setdefault("content", reference)
    return schema


def problem_type(slug: str) -> str:
    return TYPE_PREFIX + slug


class ApiProblem(Exception):
    """An answer of the API that is a problem: `slug` names its type (PROBLEMS); `errors` are
    `{"field", "message"}` pairs (422); `extra` adds members to the body, `headers` to the answer."""

    def __init__(
        self,
        slug: str,
        detail: str = "",
        *,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
        **extra,
    ):
        if slug not in PROBLEMS:
            raise ValueError(f"unknown problem type {slug!r}")
        super().__init__(detail or PROBLEMS[slug][1])
        self.slug = slug
        self.detail = detail or PROBLEMS[slug][1]
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    @property
    def status(self) -> int:
        return PROBLEMS[self.slug][0]


def not_found() -> ApiProblem:
    """The one answer for anything outside the key's tenant, and for what does not exist."""
    return ApiProblem("not-found", "No such object.")


def field_error(field: str, message: str) -> ApiProblem:
    return ApiProblem("invalid", message, errors=[{"field": field, "message": message}])


def from_action_error(exc: ActionError) -> ApiProblem:
    """An action's refusal: a field error (422), the quota (409), Whapi's refusal (502, saying whether
    it may have happened all the same), or the channel's state (409)."""
    message = str(exc)
    if exc.field:
        return field_error(exc.field, message)
    if exc.reason == "quota":
        return ApiProblem("quota-exceeded", message)
    if exc.reason == "whapi":
        return ApiProblem("whapi-error", message, outcome_unknown=exc.outcome_unknown)
    return ApiProblem("conflict", message)


def problem_response(request: HttpRequest | None, problem: ApiProblem) -> HttpResponse:
    status, title = PROBLEMS[problem.slug]
    body = {"type": problem_type(problem.slug), "title": title, "status": status, "detail": problem.detail}
    if request is not None:
        body["instance"] = request.path
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update(problem.extra)
    response = JsonResponse(body, status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    for name, value in problem.headers.items():
        response[name] = value
    return response


def _field(loc: list) -> str:
    # ninja's locations: ("body", <parameter>, field…), ("query", field), ("path", field), ("header", field).
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts and parts[0] in ("query", "path", "header", "cookie", "form", "file"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problem(exc: ValidationError) -> ApiProblem:
    errors = [{"field": _field(error.get("loc", [])), "message": error.get("msg", "invalid")} for error in exc.errors]
    return ApiProblem("invalid", "The request has invalid fields; see `errors`.", errors=errors)


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` with a problem."""

    def on_problem(request, exc: ApiProblem):
        return problem_response(request, exc)

    def on_validation(request, exc: ValidationError):
        return problem_response(request, validation_problem(exc))

    def on_http_error(request, exc: HttpError):
        if isinstance(exc, AuthenticationError):
            problem = ApiProblem(
                "unauthorized",
                "Send an active API key as `Authorization: Bearer <key>`.",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        elif isinstance(exc, Throttled):
            wait = max(1, int(exc.wait or 1))
            problem = ApiProblem(
                "rate-limited", f"Try again in {wait} s.", headers={"Retry-After": str(wait)}, retry_after=wait
            )
        else:
            slug = next((slug for slug, (status, _) in PROBLEMS.items() if status == exc.status_code), "server-error")
            problem = ApiProblem(slug, str(exc) if slug == "bad-request" else "")
        return problem_response(request, problem)

    def on_too_large(request, exc: RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return problem_response(request, ApiProblem("too-large", f"Send at most {limit} bytes."))

    def on_404(request, exc):
        return problem_response(request, not_found())

    def on_error(request, exc):
        logger.exception("API error on %s %s", request.method, request.path)
        return problem_response(request, ApiProblem("server-error"))

    api.add_exception_handler(ApiProblem, on_problem)
    api.add_exception_handler(ValidationError, on_validation)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(RequestDataTooBig, on_too_large)
    api.add_exception_handler(Http404, on_404)
    api.add_exception_handler(Exception, on_error)


def route_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """An address under /api/v1/ that no route has (instead of the portal's HTML 404 page)."""
    return problem_response(request, ApiProblem("not-found", "No such address in this API."))


def with_problem_405(view: Callable) -> Callable:
    """A ninja path's view whose "method not allowed" is a problem too (ninja answers it in plain text)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            problem = ApiProblem("method-not-allowed", headers={"Allow": response.get("Allow", "")})
            return problem_response(request, problem)
        return response

    return wrapped
