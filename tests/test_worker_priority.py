"""`manage.py worker` runs at a lower CPU priority than the web servers (WORKER_NICE), so that on a
machine both share a storm of Whapi's callbacks is answered first and the work it leaves follows.

Checked in child processes: a priority, once lowered, cannot be raised again by the process itself.
"""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

REPORT = """
import os
from channels_app.management.commands.worker import lower_priority
from tests.test_worker_priority import autogroup_nice
lowered = lower_priority({niceness})
print(os.nice(0), autogroup_nice(), lowered)
"""


def autogroup_nice() -> str:
    """This process's autogroup's nice value, or "-" where the kernel shows none: no autogroups, or a
    sandboxed /proc whose file is empty ("/autogroup-85 nice 0" where it is shown)."""
    try:
        shown = Path("/proc/self/autogroup").read_text().split()
    except OSError:
        return "-"
    return shown[-1] if len(shown) == 3 and shown[1] == "nice" else "-"


def priority_after(niceness: int, *, own_session: bool) -> tuple[int, str, bool]:
    """(nice value, its autogroup's nice value or "-", whether lower_priority said it lowered the
    autogroup) of a child that called lower_priority(niceness), started in a session of its own (as
    `make run` and service managers start the worker) or not."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings")
    code = "import django; django.setup()\n" + REPORT.format(niceness=niceness)
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=own_session,
        check=True,
    )
    nice, autogroup, lowered = completed.stdout.split()
    return int(nice), autogroup, lowered == "True"


def test_the_worker_defaults_to_ten_steps_below_the_web_servers():
    from django.conf import settings

    assert settings.WORKER_NICE == 10


def test_a_worker_in_a_session_of_its_own_lowers_itself_and_its_session():
    start = os.nice(0)
    nice, autogroup, lowered = priority_after(7, own_session=True)
    assert nice == min(start + 7, 19)
    # Linux shares the CPU between sessions' autogroups first: the worker's is as low as the worker.
    # (A /proc that shows no autogroup, or a kernel that refuses the change, leaves it as it was: the
    # worker logs that, and the nice value alone orders it within its group.)
    assert lowered == (autogroup == str(nice)) or autogroup == "-"


def test_a_worker_sharing_the_session_lowers_only_itself():
    start = os.nice(0)
    ours = autogroup_nice()
    nice, autogroup, lowered = priority_after(5, own_session=False)
    assert nice == min(start + 5, 19)
    assert not lowered
    if ours != "-":
        # The session's group holds the web servers too (e.g. a terminal running both): left as it was.
        assert autogroup == ours


def test_zero_keeps_the_priority_the_worker_was_started_with():
    start = os.nice(0)
    nice, autogroup, lowered = priority_after(0, own_session=True)
    assert (nice, lowered) == (start, False)
    assert autogroup in ("0", "-")  # a new session's group starts at 0, and is left there
