"""The portal's background worker: django-q2's cluster, plus a scheduler tick every few seconds.

django-q2's own scheduler looks for due schedules only about every 30 seconds, so a channel whose
init delay ran out could wait up to half a minute to be configured. This command starts the same
cluster as `manage.py qcluster` and, in the parent process, looks for due schedules every
`Q_SCHEDULER_SECONDS` (default 5). Both use django-q2's `scheduler()`, which claims due schedules
under row locks, so a schedule never runs twice.

The worker runs at a lower CPU priority than the web servers (`WORKER_NICE`, 10 by default; 0 keeps
the priority it was started with): on a machine both share, a webhook storm is answered first and the
background work (applying the stored callbacks, the checks they ask for) catches up behind it, with
whatever CPU the answers leave. See docs/operations.md, "Priorities".

`--no-scheduler` runs tasks only: no tick here, and none in django-q2's sentinel either (its
`Conf.SCHEDULER`, which `Q_CLUSTER["scheduler"] = False` would turn off for every worker). Several
workers may all schedule safely; the flag is for running the scheduler on one machine only.

Stopping: SIGTERM or SIGINT, to this process or to its whole process group (what systemd and a
terminal send), stops it within STOP_SECONDS. The signal only sets a flag; the cluster is stopped
from the main loop, and a cluster that does not stop in time (its sentinel killed by the group
signal while holding the lock of the event the parent would set) is killed.
"""

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.scheduler import scheduler

logger = logging.getLogger(__name__)

STOP_SECONDS = 8.0  # within the 10 s a service manager is told to allow
POLL_SECONDS = 0.25  # how often the main loop looks at the stop flag and the cluster


class Command(BaseCommand):
    help = "Run the django-q2 cluster with a scheduler tick every Q_SCHEDULER_SECONDS (default 5)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Run tasks only; create no tasks from due schedules (another worker does).",
        )

    def handle(self, *args, no_scheduler: bool = False, **options):
        lower_priority(settings.WORKER_NICE)
        if no_scheduler:
            # The sentinel, forked from this process by cluster.start(), reads it every 30 s.
            Conf.SCHEDULER = False
        stopping = threading.Event()
        cluster = Cluster()  # installs django-q2's handlers, which stop the cluster inside the handler
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        try:
            cluster.start()
        except RuntimeError:
            if not stopping.is_set():
                raise
            # Signalled while starting: the sentinel was stopped with the group.
        try:
            self._run(cluster, stopping)
        finally:
            _stop(cluster)

    def _run(self, cluster: Cluster, stopping: threading.Event) -> None:
        interval = settings.Q_SCHEDULER_SECONDS
        next_tick = time.monotonic()
        while not stopping.is_set() and cluster.sentinel.is_alive():
            if Conf.SCHEDULER and time.monotonic() >= next_tick:
                try:
                    scheduler(broker=cluster.broker)
                except Exception:  # a failed tick must not stop the worker; the next one retries
                    logger.exception("scheduler tick failed")
                finally:
                    close_old_connections()
                next_tick = time.monotonic() + interval
            stopping.wait(POLL_SECONDS)


def lower_priority(niceness: int) -> bool:
    """Make this process, and the cluster's processes it forks, `niceness` steps less important for the
    CPU scheduler than those the web servers run at.

    With autogroups on (most Linux desktops and servers), Linux shares the CPU between sessions first
    and by nice value only within one; `make run` and service managers start the worker in a session
    of its own. So a worker that leads its own session gives its session's autogroup its nice value
    as well (`/proc/self/autogroup`, sched(7)); one that shares a session with the web servers lowers
    only itself, which is enough there. The outcome is logged; returns whether the autogroup was
    lowered too.
    """
    if niceness <= 0:
        return False
    nice = os.nice(niceness)
    if os.getsid(0) != os.getpid() or not os.path.exists("/proc/self/autogroup"):
        logger.info("worker: running at nice %d", nice)
        return False
    for _attempt in range(20):
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(nice))
        except BlockingIOError:  # the kernel takes one autogroup change per 100 ms from unprivileged callers
            time.sleep(0.1)
        except OSError as exc:
            logger.warning("worker: running at nice %d; its session's autogroup could not be lowered: %s", nice, exc)
            return False
        else:
            logger.info("worker: running at nice %d, its session's autogroup too", nice)
            return True
    logger.warning("worker: running at nice %d; its session's autogroup could not be lowered (busy)", nice)
    return False


def _stop(cluster: Cluster) -> None:
    """Stop the cluster within STOP_SECONDS; kill its sentinel if it does not stop by then."""
    sentinel = cluster.sentinel
    if sentinel is None:
        return
    if sentinel.is_alive() and cluster.stop_event is not None:
        # `Cluster.stop` waits for the sentinel without a timeout: give it one.
        stopper = threading.Thread(target=cluster.stop, name="cluster-stop", daemon=True)
        stopper.start()
        deadline = time.monotonic() + STOP_SECONDS
        # A sentinel that dies meanwhile (it got the group's signal too) ends the wait at once.
        while stopper.is_alive() and sentinel.is_alive() and time.monotonic() < deadline:
            stopper.join(POLL_SECONDS)
    if sentinel.is_alive():
        logger.warning("the cluster did not stop within %.0f s; killing it", STOP_SECONDS)
        sentinel.kill()
    sentinel.join(2)  # reap it: no zombie is left behind
