"""The API's authentication: `Authorization: Bearer <key>` and nothing else.

A session cookie is no way in: the API has no cookie authentication, so a page of another site that
makes the browser post to /api/v1/ (CSRF) gets 401 like any request without a key. ninja's views are
exempt from Django's CSRF check for the same reason.

Each authenticated request counts against its key's rate limit (api.throttle) here, where the key
is known: ninja's own throttles keep their counts in a process's cache, which several web servers
would not share.
"""

from django.http import HttpRequest
from ninja.errors import Throttled
from ninja.security import HttpBearer

from api.keys import api_key_authenticate
from api.models import ApiKey
from api.throttle import api_rate_hit


class ApiKeyBearer(HttpBearer):
    """request.auth = the active ApiKey; None (→ 401) for a missing, malformed, unknown or revoked key."""

    def __call__(self, request: HttpRequest) -> ApiKey | None:
        # ninja's own HttpBearer logs the whole header with DEBUG on when its scheme is not Bearer:
        # that would put a key in the log. This reads the header without logging it.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        """The key, once its request is counted against its rate limit (Throttled → 429 otherwise)."""
        api_key = api_key_authenticate(token)
        if api_key is not None:
            wait = api_rate_hit(api_key)
            if wait:
                raise Throttled(wait=wait)
        return api_key
