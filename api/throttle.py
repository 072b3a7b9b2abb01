"""The per-key rate limit: each key may make API_RATE_LIMIT requests per window of
API_RATE_WINDOW_SECONDS; beyond, the API answers 429 with Retry-After (the rest of the window).

The count is a row per key and window (ApiRateWindow) bumped with F() in one UPDATE, so requests at
the same moment on several web servers all count: a request reads the count after its own bump, and
requests at once may both see the other's, which refuses at worst one request too many, never lets
one too many through. Windows are fixed (they start at multiples of their length): a key may send
up to twice the limit across a window's boundary, the simple trade for one row and one UPDATE.
The first request of a window drops the key's older windows, so the table does not grow.
"""

import math
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from api.models import ApiKey, ApiRateWindow


def api_rate_hit(api_key: ApiKey, *, now: datetime | None = None) -> int:
    """Count one request of `api_key`; returns 0 when it is within the limit, else the seconds until
    the window ends (the request is refused)."""
    now = now or timezone.now()
    length = settings.API_RATE_WINDOW_SECONDS
    start_ts = math.floor(now.timestamp() / length) * length
    start = datetime.fromtimestamp(start_ts, tz=UTC)
    window = ApiRateWindow.objects.filter(api_key=api_key, window_start=start)
    if not window.update(hits=F("hits") + 1):
        try:
            with transaction.atomic():
                ApiRateWindow.objects.create(api_key=api_key, window_start=start, hits=1)
        except IntegrityError:  # another request of this key started the window first
            window.update(hits=F("hits") + 1)
        else:
            ApiRateWindow.objects.filter(api_key=api_key, window_start__lt=start).delete()
    hits = window.values_list("hits", flat=True).first() or 0
    if hits <= settings.API_RATE_LIMIT:
        return 0
    return max(1, math.ceil(start_ts + length - now.timestamp()))
