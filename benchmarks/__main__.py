"""``python -m benchmarks [--quick] [--only NAME] [--out PATH]``: run, print a table, write JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import Result, machine_info

HERE = Path(__file__).resolve().parent


def discover(only: str | None) -> list[str]:
    """Names of the benchmark modules (``bench_<name>.py``), optionally just one."""
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    if only is not None:
        if only not in names:
            raise SystemExit(f"no benchmark {only!r}; expected one of: {', '.join(names)}")
        names = [only]
    return names


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def render(results: list[Result], console: Console) -> None:
    """Print the results as one rich table."""
    table = Table(title="LedgerLake benchmarks", show_lines=False)
    for col in (
        "area",
        "figure",
        "value",
        "unit",
        "reference",
        "ref value",
        "ratio",
        "target",
        "met",
    ):
        table.add_column(col, overflow="fold")
    for r in results:
        met = {True: "[green]yes[/]", False: "[red]NO[/]", None: "-"}[r.met]
        table.add_row(
            r.area,
            r.name,
            _fmt(r.value),
            r.unit,
            r.reference_name or "-",
            _fmt(r.reference_value),
            _fmt(r.ratio),
            r.target or "-",
            met,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit 0 even when a target is missed (it is reported)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", help="run one module, e.g. 'log' for bench_log.py")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--workdir", type=Path, default=HERE / ".work")
    parser.add_argument(
        "--projection-events",
        type=int,
        help="log size of the projections benchmark (default 1M, 200k with --quick)",
    )
    args = parser.parse_args(argv)
    sized = args.projection_events is not None and args.projection_events != 1_000_000
    if args.projection_events is not None:  # read by bench_projections.run at run time
        os.environ["LEDGERLAKE_BENCH_PROJECTION_EVENTS"] = str(args.projection_events)
    console = Console(stderr=True)
    results: list[Result] = []
    owners: list[str] = []
    modules: dict[str, Any] = {}
    for name in discover(args.only):
        module = importlib.import_module(f"benchmarks.bench_{name}")
        # another log size of the projections is its own set of rows: each size's figures
        # replace that size's alone in the results file
        key = f"{name}@{args.projection_events}" if name == "projections" and sized else name
        workdir = args.workdir / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        console.print(f"[bold]running bench_{name}[/] (quick={args.quick}) in {workdir}")
        started = time.perf_counter()
        got = list(module.run(workdir, args.quick))
        modules[key] = {"seconds": round(time.perf_counter() - started, 2), "results": len(got)}
        results += got
        owners += [key] * len(got)
        shutil.rmtree(workdir, ignore_errors=True)
    # A pipe or log file gets a wide table instead of one folded to 80 columns.
    render(results, Console() if sys.stdout.isatty() else Console(width=180))
    rows = [{"module": m, **r.to_json()} for m, r in zip(owners, results, strict=True)]
    if args.only is not None and args.out.exists():  # keep the other modules' figures
        old = json.loads(args.out.read_text())
        rows = [r for r in old.get("results", []) if r.get("module") not in (None, *modules)] + rows
        modules = {
            **{k: v for k, v in old.get("modules", {}).items() if k not in modules},
            **modules,
        }
    doc = {"machine": machine_info(), "quick": args.quick, "modules": modules, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
