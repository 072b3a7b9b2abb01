"""`python -m benchmarks` (`make bench`): start the environment, run the benchmarks, print the report
and write var/bench/summary.json (every figure: value, target, pass) and var/bench.json (the details).
Exits 1 when a target is missed or something failed, 130 on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import Result, load, positive_float, positive_int
from benchmarks.environment import DEFAULT_DATABASE_URL, VAR_DIR, Environment, Options, SetupError, dump_json, log
from benchmarks.report import as_json, markdown_table, summary, table, warnings

# --quick: smaller sizes for iterating on the harness (figures not comparable with a full run).
QUICK = {
    "fleet": 1_000,
    "ledger_small": 10_000,
    "ledger_large": 100_000,
    "duration": 8.0,
    "coverage_health_every": 30,
    "coverage_settings_every": 60,
}


def parser_with(benchmarks) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of the portal on PostgreSQL with real processes (see docs/benchmarks.md).",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(benchmarks),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(benchmarks)}",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--init-delay",
        type=positive_float,
        default=20.0,
        help="the sandbox's channel init seconds, also the portal's WHAPI_INIT_DELAY (20)",
    )
    parser.add_argument(
        "--gate-delay-ms",
        type=float,
        default=200.0,
        help="the sandbox's latency of every gate call, as a remote gate has (200)",
    )
    parser.add_argument(
        "--fleet", type=positive_int, default=10_000, help="channels of the fleet the scale benchmarks share (10,000)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes for iterating: " + str(QUICK))
    parser.add_argument("--workers", type=positive_int, default=4, help="gunicorn worker processes (4)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="threads per gunicorn worker; more than 1 selects gthread (1: sync)",
    )
    parser.add_argument("--json", type=Path, default=VAR_DIR / "bench.json", help="where to write the details")
    parser.add_argument(
        "--summary", type=Path, default=VAR_DIR / "bench" / "summary.json", help="where to write the figures"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards for inspection")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the commands started")
    for item in benchmarks.values():
        if item.add_arguments:
            item.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    benchmarks = load()
    parser = parser_with(benchmarks)
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    if args.list:
        for item in benchmarks.values():
            print(f"{item.name:14} {item.title}")
        return 0
    selected = [item for item in benchmarks.values() if not args.only or item.name in args.only]
    options = Options(
        database_url=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        init_delay=args.init_delay,
        gate_delay_ms=args.gate_delay_ms,
        gunicorn_workers=args.workers,
        gunicorn_threads=args.threads,
        worker=any(item.needs_worker for item in selected),
        keep_db=args.keep_db,
        verbose=args.verbose,
    )
    started_at = datetime.now(UTC)
    started = time.monotonic()
    results: dict[str, Result] = {}
    report = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
        "benchmarks_selected": [item.name for item in selected],
    }
    status = 0
    environment = Environment(options, args=args)
    try:
        log(f"starting the environment ({options.database_url.split('@')[-1]}, init delay {options.init_delay:g} s)")
        with environment as env:
            log(
                f"ready in {env.timings['setup_s']:.1f} s: portal {env.portal_url} "
                f"({env.gunicorn_config['workers']} {env.gunicorn_config['worker_class']} workers), "
                f"sandbox {env.sandbox_url}"
            )
            report["machine"] = env.machine_info()
            report["setup"] = {name: round(value, 2) for name, value in env.timings.items()}
            for item in selected:
                log(f"--- {item.name}: {item.title}")
                try:
                    results[item.name] = item.run(env)
                except SetupError as exc:
                    results[item.name] = Result(error=str(exc))
                except Exception as exc:
                    traceback.print_exc()
                    results[item.name] = Result(error=f"{type(exc).__name__}: {exc}")
    except SetupError as exc:
        print(f"\nbench: the environment could not be started: {exc}", file=sys.stderr)
        report["error"] = str(exc)
        status = 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything started was stopped.", file=sys.stderr)
        report["error"] = "interrupted"
        status = 130
    report["total_s"] = round(time.monotonic() - started, 1)
    report["results"] = as_json(results)
    report["passed"] = status == 0 and bool(results) and all(result.passed for result in results.values())
    dump_json(args.json, report)
    dump_json(args.summary, summary(report, results))

    if results:
        print()
        print(table(results))
        for warning in warnings(results):
            print(f"note: {warning}")
        if args.markdown:
            print()
            print(markdown_table(results))
    verdict = "PASS" if report["passed"] else "FAIL"
    print(f"\n{verdict} in {report['total_s']:.0f} s; figures in {args.summary}, details in {args.json}")
    if status:
        return status
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
