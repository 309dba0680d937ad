"""Command line and orchestration: one subprocess per contender per backend, then the report.

Each contender runs in an interpreter of its own, so that imports, caches, the garbage
collector and the memory peak of one library never leak into another's numbers. The runner
creates each contender's table, starts the processes of a backend, warms them up together (an
untimed pass measures nothing another could disturb), and then has them run their timed passes
one at a time in rounds (A1 B1 C1, B2 C2 A2, ...) so that drifting machine load is shared by
all instead of landing on one. A contender that cannot be imported is reported as
unavailable; one that raises, dies or times out as failed, and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import chart, machine, patterns_report, report, schema
from bench.contenders import BASELINE, BY_NAME, CONTENDERS
from bench.procs import ChildFailed, ContenderProcess
from bench.results import RunResult
from bench.targets import BACKENDS, BackendName, Target
from bench.workloads import QUICK_DIVISOR, Sizes, item_table_for, narrow_table_for

FULL_REPEATS = 3
QUICK_REPEATS = 1


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark activerecord against raw drivers, SQLAlchemy, Peewee and Tortoise.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"divide all sizes by {QUICK_DIVISOR} (and default to {QUICK_REPEATS} repeat)",
    )
    parser.add_argument(
        "--backend",
        type=_csv,
        default=list(BACKENDS),
        help="comma-separated subset of: " + ",".join(BACKENDS),
    )
    parser.add_argument(
        "--contender",
        type=_csv,
        default=[entry.name for entry in CONTENDERS],
        help="comma-separated subset of: "
        + ",".join(entry.name for entry in CONTENDERS)
        + " (the SQLAlchemy Core baseline of each mode is always added)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed repeats, median reported (default {FULL_REPEATS}; {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("docs/benchmarks.md"),
        help="markdown report path",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one contender may take for one pass (default 120; 900 full)",
    )
    args = parser.parse_args(argv)
    for backend in args.backend:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}")
    for name in args.contender:
        if name not in BY_NAME:
            parser.error(f"unknown contender {name!r}")
    if args.repeats is None:
        # A quick run is a smoke run: one repeat keeps the suite under a minute on two
        # cores; pass --repeats for medians.
        args.repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def with_baselines(names: list[str]) -> list[str]:
    """Selected contenders plus the baseline of each selected mode, in registry order."""
    wanted = set(names)
    wanted |= {BASELINE[BY_NAME[name].mode] for name in names}
    return [entry.name for entry in CONTENDERS if entry.name in wanted]


class _Backend:
    """The contenders of one backend, driven in interleaved rounds, a fresh process per round.

    A process's speed on a shared virtual machine varies from one process to the next by more
    than the targets' margins (the same code measured 0.7x and 1.8x Core in two processes, each
    steady within itself), so every round starts new processes: the median over rounds is then a
    median over processes, not over one process's luck.
    """

    def __init__(self, backend: BackendName, names: list[str], timeout: float) -> None:
        self.backend = backend
        self.timeout = timeout
        self.results = {name: RunResult(backend, name, "ok") for name in names}
        self.procs: dict[str, ContenderProcess] = {}
        self.live: list[str] = list(names)
        self.failures: list[str] = []

    def fail(self, name: str, reason: str) -> None:
        result = self.results[name]
        result.status, result.reason = "failed", reason
        if name in self.live:
            self.live.remove(name)
        if name in self.procs:
            self.failures.append(f"--- {self.backend} {name}\n{self.procs[name].traceback()}")

    def start(self, targets: dict[str, Target], sizes: Sizes, workdir: Path, round_no: int) -> None:
        """This round's processes. They start together: their imports overlap, their measurements never do."""
        self.procs = {}
        for name in self.live:
            log = workdir / f"{self.backend}-{name}-{round_no}.log"
            self.procs[name] = ContenderProcess(name, targets[name], sizes, log)
        for name, proc in self.procs.items():
            try:
                hello = proc.hello(self.timeout)
            except ChildFailed as exc:
                self.fail(name, str(exc))
                continue
            if hello["status"] == "unavailable":
                self.results[name].status = "unavailable"
                self.results[name].reason = hello["reason"]
                self.live.remove(name)
                proc.quit()
                continue
            self.results[name].streaming = hello["streaming"]

    def ask(self, name: str, command: str) -> dict[str, Any] | None:
        """One command to one contender; a failure takes it out of the remaining rounds."""
        return self.ask_all(command, [name]).get(name)

    def ask_all(self, command: str, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """One command to every live contender (or to ``names``) at once; the replies of those
        that answered.

        Several at once only for passes whose figures other processes cannot disturb: the
        warm-up measures nothing, and the memory pass's tracemalloc peak counts the process's
        own allocations.
        """
        started = time.perf_counter()
        sent: list[str] = []
        for name in list(self.live) if names is None else names:
            try:
                self.procs[name].send(command)
            except ChildFailed as exc:
                self.fail(name, str(exc))
            else:
                sent.append(name)
        replies: dict[str, dict[str, Any]] = {}
        for name in sent:
            try:
                replies[name] = self.procs[name].reply(self.timeout)
            except ChildFailed as exc:
                self.fail(name, str(exc))
            finally:
                self.results[name].seconds += time.perf_counter() - started
        return replies

    def run(self, targets: dict[str, Target], sizes: Sizes, workdir: Path, repeats: int) -> None:
        """``repeats`` rounds: new processes, warmed up together, then timed one after another
        over one pass each; the memory passes, together, in the last round."""
        for round_no in range(repeats):
            self.start(targets, sizes, workdir, round_no)
            try:
                self.ask_all("warmup")
                # Rotate the order so no contender always runs right after the same neighbour.
                shift = round_no % max(len(self.live), 1)
                for name in self.live[shift:] + self.live[:shift]:
                    self._timed(name)
                if round_no == repeats - 1:
                    for name, reply in self.ask_all("memory").items():
                        self.results[name].heap_mib = reply["heap_mib"]
            finally:
                self.close()
            print(f"  {self.backend}: round {round_no + 1}/{repeats} done", file=sys.stderr)

    def _timed(self, name: str) -> None:
        reply = self.ask(name, "repeat")
        if reply is None:
            return
        result = self.results[name]
        for key, value in reply["timings_us"].items():
            result.timings_us.setdefault(key, []).append(value)
        result.memory_mib.append(reply["rss_mib"])
        if reply.get("mixed"):
            result.mixed.append(reply["mixed"])

    def close(self) -> None:
        for proc in self.procs.values():
            proc.quit()


def _prepare(backend: BackendName, names: list[str], stream_rows: int, workdir: Path) -> dict[str, Target]:
    """Seed bench_stream once, then give every contender a fresh table of its own."""
    template = Target.for_backend(backend, str(workdir / f"{backend}-template.sqlite3"))
    schema.ensure_database(template)
    schema.seed(template, stream_rows)
    targets: dict[str, Target] = {}
    for name in names:
        target = template
        if backend == "sqlite":
            # A file per contender: journal mode and page layout are file state too.
            target = Target.for_backend(backend, str(workdir / f"{name}.sqlite3"))
            shutil.copyfile(template.database, target.database)
        schema.recreate_item(target, item_table_for(name), narrow_table_for(name))
        targets[name] = target
    return targets


def run_backend(
    backend: BackendName,
    names: list[str],
    sizes: Sizes,
    repeats: int,
    timeout: float,
    workdir: Path,
) -> tuple[list[RunResult], list[str]]:
    """All selected contenders on one backend; returns the results and failure logs."""
    started = time.perf_counter()
    try:
        targets = _prepare(backend, names, sizes.stream_rows, workdir)
    except schema.SetupError as exc:  # an unreachable server fails its contenders only
        print(f"  {backend}: setup failed, skipped ({exc})", file=sys.stderr)
        return [RunResult(backend, n, "failed", f"setup: {exc}") for n in names], []
    runner = _Backend(backend, names, timeout)
    try:
        runner.run(targets, sizes, workdir, repeats)
    finally:
        runner.close()
    for result in runner.results.values():
        detail = f" ({result.reason})" if result.reason else ""
        print(
            f"  {backend:<10} {result.contender:<20} {result.status:<12} {result.seconds:6.1f} s{detail}",
            file=sys.stderr,
        )
    print(f"  {backend}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return list(runner.results.values()), runner.failures


def main(argv: list[str] | None = None) -> None:
    """Run the suite and write the markdown report, its chart and the raw JSON."""
    args = parse_args(argv)
    sizes = Sizes().scaled(QUICK_DIVISOR) if args.quick else Sizes()
    timeout = args.timeout or (120.0 if args.quick else 900.0)
    names = with_baselines(args.contender)
    # Other work on the machine skews every number; the report says how busy it was.
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    results: list[RunResult] = []
    servers: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        for backend in args.backend:
            measured, failures = run_backend(backend, names, sizes, args.repeats, timeout, workdir)
            # Asked after the run, which creates the database when it is missing.
            servers[backend] = machine.server_version(Target.for_backend(backend, str(workdir / "probe.sqlite3")))
            print(f"{backend}: {servers[backend]}", file=sys.stderr)
            results.extend(measured)
            for log in failures:
                print(log, file=sys.stderr)
    total = time.perf_counter() - started
    meta = {
        "machine": machine.describe(),
        "servers": servers,
        "sizes": asdict(sizes),
        "quick": args.quick,
        "repeats": args.repeats,
        "seconds": total,
        "load": [load_at_start, os.getloadavg()[0]],
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    png = output.with_suffix(".png")
    # The patterns' figures are measured by `python -m bench.patterns`; their section is kept.
    markdown = patterns_report.with_section(report.render(results, meta, png.name), output)
    output.write_text(markdown, encoding="utf-8")
    chart.plot(results, png)
    output.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=1),
        encoding="utf-8",
    )
    print(markdown)
    print(
        f"wrote {output}, {png}, {output.with_suffix('.json')} in {total:.0f} s",
        file=sys.stderr,
    )
