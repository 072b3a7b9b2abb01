"""`make bench`: benchmarks of the portal on PostgreSQL, with real processes over real sockets.

`python -m benchmarks` starts one environment (a fresh database, the Whapi sandbox, gunicorn and the
django-q2 cluster; see `benchmarks.environment`) and runs every registered benchmark against it, in
registration order. A benchmark is a function that takes the started `Environment` and returns a
`Result`: figures with their targets, plus details for `var/bench.json`.

Adding a benchmark: write a module with a function decorated by `@benchmark(...)` and list the module
in `MODULES`. It may add its own command-line flags with `add_arguments`; `--only NAME` runs one.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.environment import Environment

# Modules that register benchmarks, in the order they run: the small-sandbox ones first (provisioning,
# stall), then pages (which grows the fleet from 100 to its full size), then what needs the full fleet.
MODULES = (
    "benchmarks.provisioning",
    "benchmarks.stall",
    "benchmarks.pages",
    "benchmarks.mix",
    "benchmarks.receiver_cpu",
    "benchmarks.storms",
    "benchmarks.coverage",
)


@dataclass
class Figure:
    """One measured figure. `passed` is None for figures reported without a target."""

    name: str
    value: float | int | None
    unit: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    warnings: list[str] = field(default_factory=list)  # printed under the table: how to read the figures

    @property
    def passed(self) -> bool:
        return not self.error and all(figure.passed is not False for figure in self.figures)

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure


@dataclass
class Benchmark:
    name: str
    title: str
    run: Callable[[Environment], Result]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    # Whether the benchmark needs the django-q2 cluster (`--only` of others leaves it out).
    needs_worker: bool = False


REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str,
    title: str,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    needs_worker: bool = False,
) -> Callable[[Callable[[Environment], Result]], Callable[[Environment], Result]]:
    """Register `run(env) -> Result` under `name` (what `--only` takes)."""

    def register(run: Callable[[Environment], Result]) -> Callable[[Environment], Result]:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Benchmark(name, title, run, add_arguments, needs_worker)
        return run

    return register


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value:g}")
    return value


def load() -> dict[str, Benchmark]:
    """Import the benchmark modules (they register themselves) and return the registry."""
    for module in MODULES:
        importlib.import_module(module)
    return REGISTRY
