"""`make run`: the portal, its django-q2 worker and (unless a real Whapi is configured) the built-in
Whapi sandbox, started together; Ctrl-C stops all three.

Run as `python -m portal.launcher` from the project folder with the virtualenv's Python.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PORTAL_ADDRESS = "127.0.0.1:8000"
SANDBOX_TOKEN = "sandbox-partner-token"


def dotenv_names(path: Path) -> set[str]:
    """Names assigned a non-empty value in a .env file."""
    names = set()
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#") and value.strip():
                names.add(name.strip().removeprefix("export "))
    return names


def environment() -> tuple[dict[str, str], bool]:
    """The environment the three processes run with, and whether the sandbox is needed."""
    configured = set(os.environ) | dotenv_names(BASE_DIR / ".env")
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "on")
    env.setdefault("PYTHONUNBUFFERED", "1")
    use_sandbox = "WHAPI_PARTNER_URL" not in configured
    if use_sandbox:
        port = env.get("SANDBOX_PORT", "8765")
        init_seconds = env.get("SANDBOX_INIT_SECONDS", "20")
        env["WHAPI_PARTNER_URL"] = f"http://127.0.0.1:{port}"
        env["WHAPI_PARTNER_TOKEN"] = env["WHAPI_SANDBOX_TOKEN"] = SANDBOX_TOKEN
        if "WHAPI_INIT_DELAY" not in configured:
            env["WHAPI_INIT_DELAY"] = init_seconds
    return env, use_sandbox


def manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a fixed local URL)
                return True
        except OSError:
            time.sleep(0.3)
    return False


def _stop(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # `kill`, a closed terminal and Ctrl-C all stop the children too (they run in their own sessions).
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    env, use_sandbox = environment()
    ports = [int(PORTAL_ADDRESS.rsplit(":", 1)[1])] + ([int(env.get("SANDBOX_PORT", "8765"))] if use_sandbox else [])
    for port in ports:
        if port_in_use(port):
            print(
                f"make run: port {port} on 127.0.0.1 is in use; is another `make run` still running?", file=sys.stderr
            )
            return 1
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str, command: list[str]) -> None:
        # Own process groups: Ctrl-C reaches the launcher only, which then stops the children in order.
        processes[name] = subprocess.Popen(command, env=env, cwd=BASE_DIR, start_new_session=True)  # noqa: S603

    try:
        if use_sandbox:
            start(
                "sandbox",
                manage(
                    "whapi_sandbox",
                    "--port",
                    env.get("SANDBOX_PORT", "8765"),
                    "--init-seconds",
                    env.get("SANDBOX_INIT_SECONDS", "20"),
                    "--state-file",
                    str(BASE_DIR / "var" / "sandbox.json"),
                ),
            )
            if (
                not wait_for(env["WHAPI_PARTNER_URL"] + "/_sandbox/state", 20)
                or processes["sandbox"].poll() is not None
            ):
                print("make run: the Whapi sandbox did not start, see above.", file=sys.stderr)
                return 1
        seed = ["seed_demo", "--whapi-project"] if use_sandbox else ["seed_demo"]
        for step in (["migrate", "--no-input", "-v", "0"], ["setup_schedules"], seed):
            if subprocess.call(manage(*step), env=env, cwd=BASE_DIR) != 0:  # noqa: S603 (our own manage.py)
                print(f"make run: `manage.py {' '.join(step)}` failed, see above.", file=sys.stderr)
                return 1
        start("worker", manage("worker"))
        start("web", manage("runserver", PORTAL_ADDRESS, "--noreload"))
        if wait_for(f"http://{PORTAL_ADDRESS}/healthz", 30):
            target = env["WHAPI_PARTNER_URL"] + (" (built-in sandbox)" if use_sandbox else "")
            print(
                f"\n  Customers: http://{PORTAL_ADDRESS}/app/\n  Staff:     http://{PORTAL_ADDRESS}/admin/\n"
                f"  Whapi:     {target}\n  Press Ctrl-C to stop the portal, the worker"
                + (" and the sandbox.\n" if use_sandbox else ".\n"),
                flush=True,
            )
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)
        stopped = [name for name, process in processes.items() if process.poll() is not None]
        print(f"make run: {', '.join(stopped)} stopped; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
