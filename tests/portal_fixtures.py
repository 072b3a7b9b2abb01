"""pytest plugin: the portal running for real against the built-in sandbox, for end-to-end and
browser tests.

- `portal`: the live server (real sockets) configured against a fresh in-process sandbox (short
  init delay), with the sandbox's default project mirrored and given to a customer; returns
  (sandbox, project).
- `worker`: plays the django-q2 cluster in the test's thread (`step()`, `run_until(...)`).
- `background_worker`: the same, running by itself in a thread while the test drives a browser.
- `owner`: alice, an owner of the portal's customer, signing in with a password.
- `browser_page`: a Playwright page in Debian's chromium (no browser download). Skipped when
  chromium is missing, except in CI, where that is an error.
"""

import ast
import os
import shutil
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from alerts.sweep import alerts_sweep
from channels_app import checks, mirror, webhooks
from channels_app.models import Customer, Membership, Project
from events.delivery import events_send

INIT_DELAY = 1.5
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


class Worker:
    """Plays the django-q2 cluster: runs enqueued tasks, one-off schedules that came due, and one
    round of the periodic callbacks applier, checks sweep, alerts sweep and events sender (in this
    thread)."""

    def __init__(self, enqueued: list):
        self.enqueued = enqueued

    def step(self) -> None:
        while self.enqueued:
            task, args = self.enqueued.pop(0)
            import_string(f"channels_app.tasks.{task}")(*args)
        for schedule in Schedule.objects.filter(next_run__lte=timezone.now(), schedule_type=Schedule.ONCE):
            args = ast.literal_eval(schedule.args) if schedule.args else ()
            if Schedule.objects.filter(pk=schedule.pk).delete()[0]:
                import_string(schedule.func)(*(args if isinstance(args, tuple) else (args,)))
        webhooks.callbacks_apply(seconds=0)
        checks.checks_sweep(seconds=0, concurrency=1)
        alerts_sweep()
        events_send(seconds=0)

    def run_until(self, condition, timeout: float = 15.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def worker(enqueued):
    return Worker(enqueued)


@pytest.fixture
def background_worker(worker):
    """The worker running in a thread until the test ends (for tests that wait in a browser)."""
    stop = threading.Event()
    errors = []

    def loop():
        try:
            while not stop.is_set():
                worker.step()
                time.sleep(0.1)
        except Exception as exc:  # surfaced at teardown
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield worker
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the worker's step did not end within 30 s"
    if errors:
        raise errors[0]


@pytest.fixture
def portal(live_server, sandbox_factory, settings):
    """The portal against a fresh sandbox; returns (sandbox, project of customer "Acme Corp")."""
    # The live server may take longer than the suite's short webhook timeout to answer on a busy
    # machine; a redelivery would then count twice where a test counts what arrived.
    sandbox = sandbox_factory(init_seconds=INIT_DELAY, create_window=60.0, webhook_timeout=10.0)
    settings.WHAPI_PARTNER_URL = sandbox.url
    settings.WHAPI_PARTNER_TOKEN = sandbox.config.partner_token
    settings.PORTAL_BASE_URL = live_server.url
    settings.WHAPI_INIT_DELAY = INIT_DELAY
    mirror.projects_sync()
    project = Project.objects.get(is_default=True)
    project.customer = Customer.objects.create(name="Acme Corp", channel_quota=100)
    project.save()
    return sandbox, project


@pytest.fixture
def owner(portal):
    """alice, an owner of the portal's customer ("Acme Corp"), who signs in with a password."""
    _, project = portal
    user = get_user_model().objects.create_user("alice", "alice@acme.example", "alice-password")
    Membership.objects.create(customer=project.customer, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is not installed at {CHROMIUM}; .ci/run installs Debian's chromium")
        pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as the pages' actions (set_default_timeout): a page follows the whole
    # pipeline (create, init, configure, a poll), which a busy machine makes slower than 5 s.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """A page in a fresh browser context; the test fails if the page broke the Content-Security-Policy
    (an inline script or style, or a resource from elsewhere, that the browser refused)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield page
    context.close()
    assert refused == [], f"the browser refused under the Content-Security-Policy: {refused}"
