"""The environment every benchmark shares: a fresh PostgreSQL database, the Whapi sandbox, gunicorn
serving the portal and the django-q2 cluster, each a subprocess in its own process group on a free
port; plus Django set up in this process (same settings) for seeding and reading the database.

`Environment` is a context manager: leaving it (normally, on an exception or on Ctrl-C) stops every
process group it started and drops the database unless asked to keep it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
LOG_DIR = VAR_DIR / "bench-logs"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
SANDBOX_TOKEN = "bench-partner-token"
READY_TIMEOUT = 30.0


class SetupError(RuntimeError):
    """The environment could not be started; the message says which part and where its log is."""


@dataclass
class Options:
    """What the environment is started with (filled from the command line)."""

    database_url: str = DEFAULT_DATABASE_URL
    init_delay: float = 20.0
    gate_delay_ms: float = 200.0  # the sandbox's standing latency of every gate call
    gunicorn_workers: int = 4
    gunicorn_threads: int = 1
    worker: bool = True
    keep_db: bool = False
    verbose: bool = False


def portal_variable_names() -> set[str]:
    """Names of the portal's configuration variables: those `.env.example` lists, plus the prefixes."""
    names = {"DATABASE_URL", "PORTAL_BASE_URL", "FIELD_ENCRYPTION_KEYS", "LOG_LEVEL", "EMAIL_URL"}
    with contextlib.suppress(OSError):
        names |= set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))
    return names


def _is_portal_variable(name: str, names: set[str]) -> bool:
    return name in names or name.startswith(("DJANGO_", "WHAPI_", "Q_", "SANDBOX_"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fernet_key() -> str:
    # The same as cryptography's Fernet.generate_key(), without importing it here.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (local URLs we built)
            return 200 <= response.status < 300
    except (OSError, urllib.error.URLError):
        return False


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    log_file: Any

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class Environment:
    options: Options
    args: Any = None  # the parsed command line, for the benchmarks' own flags
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    sandbox_port: int = 0
    portal_port: int = 0
    db_name: str = ""
    db_created: bool = False
    django_ready: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # What one benchmark measured or seeded for the next ones (the /livez baseline, the fleet).
    shared: dict[str, Any] = field(default_factory=dict)

    # ---- addresses ---------------------------------------------------------------------------------
    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def gunicorn_config(self) -> dict[str, Any]:
        threads = self.options.gunicorn_threads
        return {
            "worker_class": "gthread" if threads > 1 else "sync",
            "workers": self.options.gunicorn_workers,
            "threads": threads,
            "keep_alive_s": 2 if threads > 1 else None,
            # gunicorn's heartbeat file: in memory, as its docs advise for containers.
            "worker_tmp_dir": "/dev/shm" if Path("/dev/shm").is_dir() else None,  # noqa: S108
            "access_log": False,
        }

    # ---- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Environment:
        previous = signal.getsignal(signal.SIGTERM)
        self._previous_sigterm = previous
        # A SIGTERM to the harness cleans up like Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.start()
        except BaseException:
            self.stop()
            signal.signal(signal.SIGTERM, previous)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        signal.signal(signal.SIGTERM, self._previous_sigterm)

    def start(self) -> None:
        started = time.monotonic()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for old_log in LOG_DIR.glob("*.log"):
            old_log.unlink()
        self.sandbox_port, self.portal_port = free_port(), free_port()
        while self.portal_port == self.sandbox_port:
            self.portal_port = free_port()
        self.env = self._portal_environment()
        self._recreate_database()
        self._manage("migrate", "--no-input", "-v", "0")
        self.timings["database_s"] = time.monotonic() - started

        self._spawn(
            "sandbox",
            self._manage_command(
                "whapi_sandbox",
                "--port",
                str(self.sandbox_port),
                "--init-seconds",
                f"{self.options.init_delay:g}",
                "--partner-token",
                SANDBOX_TOKEN,
                "--gate-delay-ms",
                f"{self.options.gate_delay_ms:g}",
            ),
        )
        self._spawn("gunicorn", self._gunicorn_command())
        self._wait_http("sandbox", self.sandbox_url + "/_sandbox/state")
        self._wait_http("gunicorn", self.portal_url + "/livez")
        self.setup_django()
        if self.options.worker:
            self._manage("setup_schedules")
            self.start_worker()
        self.timings["setup_s"] = time.monotonic() - started

    # ---- the worker, stopped and started by benchmarks ----------------------------------------------
    def start_worker(self, extra_env: dict[str, str] | None = None) -> float:
        """Start `manage.py worker` (with `extra_env` on top of the portal's environment) and wait until
        it has run a task; returns the seconds that took. The previous worker must be gone."""
        started = time.monotonic()
        self._spawn("qcluster", self._manage_command("worker"), extra_env=extra_env)
        self._wait_worker()
        return time.monotonic() - started

    def kill_worker(self) -> float:
        """SIGKILL the worker's whole process group (cluster, its workers, the pump mid-call), as a
        crash would; returns `time.monotonic()` of the kill."""
        process = self.processes.pop("qcluster")
        killed_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait(timeout=10)
        process.log_file.close()
        return killed_at

    def restart_worker(self, extra_env: dict[str, str] | None = None) -> float:
        """Stop the worker (SIGTERM, as a deploy would) and start it again with `extra_env`."""
        process = self.processes.pop("qcluster")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGTERM)
        try:
            process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.log_file.close()
        return self.start_worker(extra_env)

    def stop(self) -> None:
        """Stop every process group and drop the database; a second Ctrl-C does not cut this short."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self) -> None:
        for process in self.processes.values():
            if process.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=5)
            # Children a process left behind in its group (gunicorn workers, qcluster workers).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.log_file.close()
        self.processes.clear()
        if self.django_ready:
            from django.db import connections

            connections.close_all()
        if self.db_created and not self.options.keep_db:
            with contextlib.suppress(Exception):
                self._admin_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self.db_created = False

    # ---- environment and database ------------------------------------------------------------------
    def _portal_environment(self) -> dict[str, str]:
        # Nothing of the caller's portal configuration leaks in: the variables below are complete.
        names = portal_variable_names()
        env = {name: value for name, value in os.environ.items() if not _is_portal_variable(name, names)}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DJANGO_DEBUG": "off",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "FIELD_ENCRYPTION_KEYS": fernet_key(),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DJANGO_SECURE_SSL_REDIRECT": "off",
                "DJANGO_ENV_FILE": "",
                "DATABASE_URL": self.options.database_url,
                "WHAPI_PARTNER_URL": self.sandbox_url,
                "WHAPI_PARTNER_TOKEN": SANDBOX_TOKEN,
                "PORTAL_BASE_URL": self.portal_url,
                "WHAPI_INIT_DELAY": f"{self.options.init_delay:g}",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _admin_sql(self, statement: str) -> None:
        """Run `statement` (with {} for the database name) on the server's maintenance database."""
        import psycopg
        from psycopg import sql

        parts = urllib.parse.urlsplit(self.options.database_url)
        self.db_name = urllib.parse.unquote(parts.path.lstrip("/"))
        if not self.db_name:
            raise SetupError(f"BENCH_DATABASE_URL {self.options.database_url!r} names no database")
        conninfo = {
            "host": urllib.parse.unquote(parts.hostname or "127.0.0.1"),
            "port": parts.port or 5432,
            "user": urllib.parse.unquote(parts.username or "postgres"),
            "dbname": "postgres",
            "connect_timeout": 5,
        }
        if parts.password:
            conninfo["password"] = urllib.parse.unquote(parts.password)
        with psycopg.connect(**conninfo, autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(self.db_name)))

    def _recreate_database(self) -> None:
        try:
            self._admin_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self._admin_sql("CREATE DATABASE {}")
        except Exception as exc:
            raise SetupError(f"could not re-create the database of {self.options.database_url}: {exc}") from exc
        self.db_created = True

    def setup_django(self) -> None:
        """Configure Django in this process with the portal processes' environment."""
        if self.django_ready:
            return
        names = portal_variable_names()
        for name in list(os.environ):
            if _is_portal_variable(name, names):
                del os.environ[name]
        os.environ.update(self.env)
        if str(BASE_DIR) not in sys.path:
            sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        self.django_ready = True

    # ---- processes ---------------------------------------------------------------------------------
    def _manage_command(self, *args: str) -> list[str]:
        return [sys.executable, str(BASE_DIR / "manage.py"), *args]

    def _manage(self, *args: str, timeout: float = 120) -> str:
        """Run a management command to completion; its output, or SetupError with it."""
        completed = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
            self._manage_command(*args),
            env=self.env,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
        if completed.returncode != 0:
            raise SetupError(
                f"`manage.py {' '.join(args)}` failed ({completed.returncode}):\n{completed.stderr[-3000:]}"
            )
        return completed.stdout

    def manage(self, *args: str, timeout: float = 120) -> str:
        return self._manage(*args, timeout=timeout)

    def _gunicorn_command(self) -> list[str]:
        config = self.gunicorn_config
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.portal_port}",
            "--workers",
            str(config["workers"]),
            "--worker-class",
            config["worker_class"],
            "--threads",
            str(config["threads"]),
            "--backlog",
            "2048",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ]
        if config["worker_tmp_dir"]:
            command += ["--worker-tmp-dir", config["worker_tmp_dir"]]
        return command

    def _spawn(self, name: str, command: list[str], *, extra_env: dict[str, str] | None = None) -> Process:
        log_path = LOG_DIR / f"{name}.log"
        log_file = log_path.open("a")  # a restarted worker keeps the log of the one before
        popen = subprocess.Popen(  # noqa: S603 (our own interpreter)
            command,
            env={**self.env, **(extra_env or {})},
            cwd=BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, untouched by Ctrl-C
        )
        process = Process(name, popen, log_path, log_file)
        self.processes[name] = process
        if self.options.verbose:
            log(f"started {name} (pid {popen.pid}): {' '.join(command[1:])}")
        return process

    def _died(self, name: str) -> SetupError:
        process = self.processes[name]
        return SetupError(
            f"{name} exited with {process.popen.returncode}; last lines of {process.log_path}:\n{process.tail()}"
        )

    def _wait_http(self, name: str, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.processes[name].alive():
                raise self._died(name)
            if http_ok(url):
                return
            time.sleep(0.2)
        process = self.processes[name]
        raise SetupError(
            f"{name} did not answer {url} within {READY_TIMEOUT:g} s; "
            f"last lines of {process.log_path}:\n{process.tail()}"
        )

    def _wait_worker(self) -> None:
        """The cluster is ready when it has run a task: enqueue a harmless one and wait for its result."""
        from django_q.tasks import async_task, fetch

        started = time.monotonic()
        task_id = async_task("math.floor", 1.5, task_name="bench-readiness")
        deadline = started + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.processes["qcluster"].alive():
                raise self._died("qcluster")
            task = fetch(task_id)
            if task is not None:
                if not task.success:
                    raise SetupError(f"the qcluster readiness task failed: {task.result}")
                self.timings["worker_ready_s"] = time.monotonic() - started
                return
            time.sleep(0.2)
        raise SetupError(f"qcluster ran no task within {READY_TIMEOUT:g} s; see {self.processes['qcluster'].log_path}")

    def process_groups(self) -> dict[str, int]:
        """Role -> process-group id of every process started (each leads its own group)."""
        return {name: process.popen.pid for name, process in self.processes.items()}

    def other_db_backends(self) -> set[int]:
        """PostgreSQL backend pids serving other databases (someone else's work on a shared server)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> current_database()"
            )
            return {row[0] for row in cursor.fetchall()}

    def check_alive(self) -> None:
        """Raise SetupError when a process of the environment has died."""
        for name, process in self.processes.items():
            if not process.alive():
                raise self._died(name)

    # ---- machine information -----------------------------------------------------------------------
    def machine_info(self) -> dict[str, Any]:
        import django
        import gunicorn

        info: dict[str, Any] = {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "memory_gb": _memory_gb(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "django": django.get_version(),
            "gunicorn": gunicorn.__version__,
            "gunicorn_config": self.gunicorn_config,
            "database_url": _redact(self.options.database_url),
            "init_delay_s": self.options.init_delay,
            "gate_delay_ms": self.options.gate_delay_ms,
            "code": code_version(),
        }
        if self.django_ready:
            from django.conf import settings
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SELECT version()")
                info["postgresql"] = cursor.fetchone()[0]
                for name in ("synchronous_commit", "shared_buffers", "max_connections"):
                    cursor.execute(f"SHOW {name}")
                    info[f"postgresql_{name}"] = cursor.fetchone()[0]
            info["q_cluster_workers"] = settings.Q_CLUSTER.get("workers")
            info["conn_max_age"] = settings.DATABASES["default"].get("CONN_MAX_AGE")
        return info


def code_version() -> dict[str, Any]:
    """The commit measured, and how many files differed from it (figures of a dirty tree are not the commit's)."""

    def git(*args: str) -> str:
        try:
            completed = subprocess.run(  # noqa: S603
                ["git", *args],  # noqa: S607 (git from PATH, read-only commands)
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return completed.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "modified_files": len(status.splitlines())}


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def dump_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
