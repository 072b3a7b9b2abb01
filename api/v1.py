"""The REST API, version 1: /api/v1/, its OpenAPI document at /api/v1/openapi.json and its docs page
at /api/v1/docs (Swagger UI served from the portal's static files, which the Content-Security-Policy
allows). docs/api.md is the guide.

Every route needs `Authorization: Bearer <key>` (api.auth), counted against the key's rate limit
(api.throttle); tenancy is api.scope; every error is a problem (api.problems).
"""

from django.urls import re_path
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from api import problems
from api.auth import ApiKeyBearer
from api.routes import channels, customers


class PortalApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """ninja's document, with the problems each operation may answer (api.problems.document)."""
        return problems.document(super().get_openapi_schema(*args, **kwargs))

    def get_openapi_operation_id(self, operation) -> str:
        # The view's name (`channel_create`), unique in the API, rather than ninja's module path.
        return operation.view_func.__name__


api = PortalApi(
    title="Whapi Partner Portal API",
    version="1",
    description=(
        "Channels of WhatsApp numbers for the portal's customers: request, connect, follow and manage them. "
        "Authenticate with `Authorization: Bearer <key>`. Errors are RFC 9457 problem details. "
        "The guide with examples: docs/api.md."
    ),
    urls_namespace="api-v1",
    auth=ApiKeyBearer(),
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
problems.install(api)
api.add_router("", customers.router)
api.add_router("", channels.router)


def _urlpatterns() -> list:
    patterns, _, _ = api.urls
    for pattern in patterns:
        pattern.callback = problems.with_problem_405(pattern.callback)
    # Anything else under /api/v1/ is a problem too, not the portal's HTML 404 page.
    patterns.append(re_path(r"^.*$", problems.route_not_found))
    return patterns


urls = (_urlpatterns(), "api-v1", "api-v1")
