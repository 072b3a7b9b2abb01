"""Logging filters (portal/settings.py LOGGING), kept free of the apps so logging is set up first."""

import logging

RECEIVER_PATH = "/whapi/webhook"


class QuietRefusals(logging.Filter):
    """Drops Django's "Unauthorized: /whapi/webhook" / "Bad Request: …" lines (django.request logs every
    4xx): the receiver counts refusals itself and logs a summary at most once a minute."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "django.request" or getattr(record, "status_code", 500) >= 500:
            return True
        return getattr(getattr(record, "request", None), "path", "") != RECEIVER_PATH
