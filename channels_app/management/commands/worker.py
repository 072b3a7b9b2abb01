"""The portal's background worker: django-q2's cluster, plus a scheduler tick every few seconds.

django-q2's own scheduler looks for due schedules only about every 30 seconds, so a channel whose
init delay ran out could wait up to half a minute to be configured. This command starts the same
cluster as `manage.py qcluster` and, in the parent process, looks for due schedules every
`Q_SCHEDULER_SECONDS` (default 5). Both use django-q2's `scheduler()`, which claims due schedules
under row locks, so a schedule never runs twice.
"""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django_q.cluster import Cluster
from django_q.scheduler import scheduler

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the django-q2 cluster with a scheduler tick every Q_SCHEDULER_SECONDS (default 5)."

    def handle(self, *args, **options):
        interval = settings.Q_SCHEDULER_SECONDS
        cluster = Cluster()
        cluster.start()
        # The cluster's signal handlers stop the sentinel on Ctrl-C / SIGTERM, which ends this loop.
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            try:
                scheduler(broker=cluster.broker)
            except Exception:  # a failed tick must not stop the worker; the next one retries
                logger.exception("scheduler tick failed")
            finally:
                close_old_connections()
            cluster.sentinel.join(timeout=interval)
