"""The report: a plain-text table of every figure with its target and PASS/FAIL, var/bench/summary.json
(the figures) and var/bench.json (the figures with every benchmark's details)."""

from __future__ import annotations

from typing import Any

from benchmarks import Figure, Result


def _value(figure: Figure) -> str:
    if figure.value is None:
        return "-"
    if isinstance(figure.value, float):
        text = f"{figure.value:,.1f}" if abs(figure.value) >= 100 else f"{figure.value:.2f}"
    else:
        text = f"{figure.value:,}"
    return f"{text} {figure.unit}".rstrip()


def _verdict(figure: Figure) -> str:
    return {True: "PASS", False: "FAIL", None: ""}[figure.passed]


def table(results: dict[str, Result]) -> str:
    rows = [("Benchmark", "Figure", "Value", "Target", "Result", "Note")]
    for name, result in results.items():
        for figure in result.figures:
            rows.append((name, figure.name, _value(figure), figure.target or "-", _verdict(figure), figure.note))
        if result.error:
            rows.append((name, "error", "-", "-", "FAIL", result.error.splitlines()[0][:100]))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(results: dict[str, Result]) -> str:
    lines = ["| Benchmark | Figure | Value | Target | Result | Note |", "|---|---|---|---|---|---|"]
    for name, result in results.items():
        for figure in result.figures:
            cells = (name, figure.name, _value(figure), figure.target or "-", _verdict(figure), figure.note)
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
        if result.error:
            lines.append(f"| {name} | error | - | - | FAIL | {result.error.splitlines()[0]} |")
    return "\n".join(lines)


def warnings(results: dict[str, Result]) -> list[str]:
    return [f"{name}: {warning}" for name, result in results.items() for warning in result.warnings]


def as_json(results: dict[str, Result]) -> dict[str, Any]:
    return {
        name: {
            "passed": result.passed,
            "error": result.error or None,
            "figures": [figure.as_dict() for figure in result.figures],
            "warnings": result.warnings,
            "details": result.details,
        }
        for name, result in results.items()
    }


def summary(report: dict[str, Any], results: dict[str, Result]) -> dict[str, Any]:
    """var/bench/summary.json: each figure's value, unit, target and pass (null: no target), by benchmark."""
    figures = []
    for name, result in results.items():
        for figure in result.figures:
            figures.append(
                {
                    "benchmark": name,
                    "figure": figure.name,
                    "value": figure.value,
                    "unit": figure.unit,
                    "target": figure.target or None,
                    "pass": figure.passed,
                    "note": figure.note,
                }
            )
        if result.error:
            figures.append(
                {
                    "benchmark": name,
                    "figure": "error",
                    "value": None,
                    "unit": "",
                    "target": None,
                    "pass": False,
                    "note": result.error,
                }
            )
    return {
        "passed": report.get("passed"),
        "started_at": report.get("started_at"),
        "command": report.get("command"),
        "total_s": report.get("total_s"),
        "code": report.get("machine", {}).get("code"),
        "failed": [f"{item['benchmark']}: {item['figure']}" for item in figures if item["pass"] is False],
        "figures": figures,
    }
