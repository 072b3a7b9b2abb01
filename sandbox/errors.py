"""The one error type of the sandbox: an HTTP answer in Whapi's `ResponseError` shape."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Whapi-style error answer: HTTP `status` with body `{"error": {"code", "message", "details"?}}`.

    Raised by the state model and the route handlers; the HTTP layer turns it into the response.
    `headers` are extra HTTP headers (e.g. `Retry-After` on a 429).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Whapi answers errors with (`ResponseError`)."""
        error: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}
