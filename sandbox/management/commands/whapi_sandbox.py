"""`manage.py whapi_sandbox`: run the built-in Whapi sandbox in the foreground (used by `make run`)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import SandboxConfig, SandboxServer, SandboxStateError
from sandbox.control import ENDPOINTS

DEFAULT_TOKEN = "sandbox-partner-token"


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    # SIGTERM (docker stop, process managers) ends the sandbox as cleanly as Ctrl-C does.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Run the built-in Whapi sandbox: a local stand-in for Whapi's partner and gate APIs. "
        "Point WHAPI_PARTNER_URL at the printed URL. Ctrl-C stops it."
    )
    # The sandbox needs neither the database nor the portal's checks.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="Address to listen on (default 127.0.0.1). The control API has no auth and shows tokens: "
            "keep it on loopback.",
        )
        parser.add_argument("--port", type=int, default=8765, help="Port (default 8765; 0 picks a free one).")
        parser.add_argument(
            "--partner-token",
            default=os.environ.get("WHAPI_SANDBOX_TOKEN") or DEFAULT_TOKEN,
            help="Partner token the sandbox accepts (default: $WHAPI_SANDBOX_TOKEN, else sandbox-partner-token).",
        )
        parser.add_argument("--init-seconds", type=float, default=90.0, help="Start-up time of a channel (default 90).")
        parser.add_argument(
            "--create-limit", type=int, default=20, help="Channel creations allowed per window (default 20)."
        )
        parser.add_argument(
            "--create-window", type=float, default=1800.0, help="Creation-limit window in seconds (default 1800)."
        )
        parser.add_argument(
            "--gate-delay-ms",
            type=float,
            default=0.0,
            help="Every gate API call waits this many milliseconds before it is answered, like a remote "
            "gate would (default 0; changeable at run time as gate_delay_seconds in /_sandbox/config).",
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="JSON file to keep the state in across restarts (e.g. var/sandbox.json); memory only if absent.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = SandboxConfig(
                partner_token=options["partner_token"],
                init_seconds=options["init_seconds"],
                create_limit=options["create_limit"],
                create_window=options["create_window"],
                gate_delay_seconds=options["gate_delay_ms"] / 1000,
                state_file=options["state_file"],
            )
        except ValueError as exc:
            raise CommandError(f"Invalid option: {exc}") from exc
        try:
            server = SandboxServer(config, host=options["host"], port=options["port"])
        except SandboxStateError as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{options['port']}: {exc}") from exc

        self._configure_logging(options["verbosity"])
        self._print_banner(server, config)
        # Also SIGINT: a process started in the background by a shell without job control inherits
        # SIGINT ignored, and Ctrl-C (or `kill -INT`) must still stop it.
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Whapi sandbox stopped.")

    def _configure_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("sandbox")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
        # -v 2 shows every request (paths only: tokens never reach the log) and webhook retries.
        logger.setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)

    def _print_banner(self, server: SandboxServer, config: SandboxConfig) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Whapi sandbox listening on {server.url}"))
        write(f"  partner API : {server.url}   (set WHAPI_PARTNER_URL={server.url})")
        write(f"  gate API    : {server.url}/gate/")
        write(f"  channel init: {config.init_seconds:g} s")
        write(f"  create limit: {config.create_limit} channels per {config.create_window:g} s")
        if config.gate_delay_seconds:
            write(f"  gate delay  : {config.gate_delay_seconds * 1000:g} ms per call")
        write(f"  state file  : {config.state_file or '(none, in memory)'}")
        write("  control API (no auth):")
        for method, path, text in ENDPOINTS:
            write(f"    {method:6} {server.url}{path}  {text}")
        write("Quit with CONTROL-C.")
        self.stdout.flush()
