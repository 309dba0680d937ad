"""The benchmark report's "Patterns throughput" section: rendered from the JSON `bench.patterns`
writes, put in place of an older one, and kept when the suite regenerates the page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import patterns_report


def _data(rate: float) -> dict[str, Any]:
    meta = {
        "machine": {"cpu": "cpu", "cores": 2, "python": "CPython", "platform": "linux", "packages": {"redis": "8"}},
        "servers": {"postgresql": "PostgreSQL 15", "redis": "Redis 7"},
        "quick": False,
        "repeats": 3,
        "seconds": 100.0,
        "load": [1.5, 2.5],
        "command": "python -m bench.patterns ",
        "date": "2026-11-30 12:00 UTC",
    }
    results = [
        {"key": "append-1", "title": "event store", "unit": "events/s", "mode": mode, "pass": "2,000 appends"}
        | {"rates": [rate, rate * 2, rate * 3], "median": rate * 2}
        for mode in ("sync", "async")
    ]
    return {"meta": meta, "results": results}


def test_the_section_renders_the_medians_the_spread_and_the_load() -> None:
    section = patterns_report.render(_data(100.0))
    assert section.startswith(patterns_report.TITLE + "\n")
    assert "| event store | 2,000 appends | events/s | 200 (100-300) | 200 (100-300) |" in section
    assert "1.50 at start, 2.50 at end" in section
    assert "\n## " not in section  # its own headings are one level down: it ends where the next section starts


def test_the_section_is_appended_then_replaced_in_place() -> None:
    page = "# Benchmarks\n\n## Machine\n\ntext\n"
    first = patterns_report.replace_section(page, patterns_report.render(_data(100.0)))
    assert first.startswith(page.rstrip("\n")) and first.count(patterns_report.TITLE) == 1
    middle = first + "\n## Later\n\nmore\n"
    second = patterns_report.replace_section(middle, patterns_report.render(_data(10.0)))
    assert second.count(patterns_report.TITLE) == 1 and "20 (10-30)" in second and "200 (100-300)" not in second
    assert second.endswith("\n## Later\n\nmore\n") and second.startswith(page.rstrip("\n"))


def test_the_suite_keeps_the_section_when_the_json_is_beside_the_report(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    assert patterns_report.with_section("# Benchmarks\n", output) == "# Benchmarks\n"
    patterns_report.json_path(output).write_text(json.dumps(_data(100.0)), encoding="utf-8")
    assert patterns_report.json_path(output).name == "benchmarks-patterns.json"
    assert "200 (100-300)" in patterns_report.with_section("# Benchmarks\n", output)
