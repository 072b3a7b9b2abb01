"""Keyset pagination: a page of a list and a cursor to the next one, whatever the list's size.

A page costs one query of `limit + 1` rows on an index (no OFFSET scan, no count of the whole list):
the extra row only says whether there is a next page. The cursor is the last row's sort key,
opaque to clients (base64 of JSON); a cursor that is not one of ours is a 422 on `cursor`.
"""

import base64
import binascii
import json
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from api.problems import field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def _encode(values: list) -> str:
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _not_ours():
    return field_error("cursor", "This cursor is not one this API gave; start again without it.")


def _decode(cursor: str, count: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    # The API's cursors hold strings only (`_encode`); PostgreSQL refuses a NUL in a query (a 500).
    if (
        not isinstance(values, list)
        or len(values) != count
        or not all(isinstance(v, str) and "\x00" not in v for v in values)
    ):
        raise _not_ours()
    return values


def keyset_page(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    order: str,
    tiebreak: str = "pk",
    descending: bool = False,
    cursor: str | None,
    limit: int,
    datetime_key: bool = False,
) -> tuple[list, str | None]:
    """One page of `queryset` sorted by (`order`, `tiebreak`), after `cursor`; returns (rows, the next
    page's URL or None). `tiebreak` is a unique field (a public `code` where the rows have one, so
    that a cursor holds no integer id); `datetime_key`: `order` is a datetime field."""
    direction = "lt" if descending else "gt"
    sign = "-" if descending else ""
    queryset = queryset.order_by(f"{sign}{order}", f"{sign}{tiebreak}")
    if cursor:
        value, last_key = _decode(cursor, 2)
        if datetime_key:
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise _not_ours() from None
        # The key as its column reads it (a UUID, an id): a hand-edited one would fail in the query, a 500.
        field = queryset.model._meta.pk if tiebreak == "pk" else queryset.model._meta.get_field(tiebreak)
        try:
            last_key = field.to_python(last_key)
        except ValidationError:
            raise _not_ours() from None
        after = Q(**{f"{order}__{direction}": value}) | Q(**{order: value, f"{tiebreak}__{direction}": last_key})
        queryset = queryset.filter(after)
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    params = request.GET.copy()
    params["cursor"] = _encode([getattr(last, order), str(getattr(last, tiebreak))])
    return rows, public_url(f"{request.path}?{params.urlencode()}")


def public_url(path: str) -> str:
    """`path` under the portal's public URL (PORTAL_BASE_URL), as the links the API gives are: the
    request's own host and scheme may be a proxy's."""
    return settings.PORTAL_BASE_URL + path
