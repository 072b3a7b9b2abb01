"""`WhapiError`, the one exception every Whapi call raises, and its pickling helper."""

from __future__ import annotations

from typing import Any


class WhapiError(Exception):
    """A Whapi call that did not give the expected answer.

    `permanent`: retrying the same request cannot help. `outcome_unknown`: the request may have been
    carried out although no good answer came (so a retried write could act twice). `path` is the API
    path only (no host, no query string) and no attribute ever holds a token.

        what happened                                   status  permanent  outcome_unknown
        4xx with Whapi's JSON error (400 401 403 404     4xx     True       False
          406 409 422 ...), or a 3xx redirect
        408, 425, 429 (retry_after from Retry-After)     4xx     False      False
        4xx whose body is not JSON (a proxy's page)      4xx     False      False
        5xx, JSON or not (retry_after on 503)            5xx     False      True
        2xx that is not JSON or lacks what we need       2xx     False      True
        connect timeout, refused, DNS, TLS, proxy        None    False      False
        read timeout, reset/closed mid-answer            None    False      True
        request we could not build (bad URL, body)       None    True       False
    """

    def __init__(
        self,
        message: str = "",
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        code: int | None = None,
        permanent: bool = False,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.permanent = permanent
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status is not None else ""
        wait = f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"Whapi {self.method} {self.path} failed: {status}{self.message}{wait}"

    def __repr__(self) -> str:
        return (
            f"WhapiError({self.message!r}, method={self.method!r}, path={self.path!r}, status={self.status!r}, "
            f"code={self.code!r}, permanent={self.permanent!r}, outcome_unknown={self.outcome_unknown!r}, "
            f"retry_after={self.retry_after!r})"
        )

    def __reduce__(self):
        # The keyword-only constructor defeats Exception's default pickling (django-q pickles failures).
        return (_rebuild_error, (self.__dict__.copy(),))


def _rebuild_error(state: dict[str, Any]) -> WhapiError:
    return WhapiError(**{key: value for key, value in state.items() if not key.startswith("_")})
