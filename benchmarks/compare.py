"""``python -m benchmarks.compare REV [--only log] [--rounds 3]``: this code beside an older one.

A ratio in ``results.json`` (ours / the peer, ours / pyarrow) moves by ±30% between runs
on a shared machine, so "did this change slow the log down?" cannot be read off two runs
made days apart. This runs the same benchmark module of two versions of the code in one
sitting, alternating (old, new, old, new, …) so that both see the same load, and compares
the median of each row's ratio:

* ``REV`` (a commit, tag or branch) is checked out into a temporary git worktree and its
  own ``benchmarks`` module runs there (each version measures with its own code, against
  the same references: pyarrow, the ``eventsourcing`` peer);
* the working tree's code runs the same module;
* each run is a separate process (``python -m benchmarks --only MODULE --out …``).

It prints one table (row, the old ratio, the new ratio, new/old) and, with ``--out``,
merges rows of module ``compare`` into a results JSON: value = the new median ratio,
reference = the old median ratio, ratio = new / old, target ≥ 0.9 (no more than 10% lost).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import machine_info

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The rows whose ratio is compared: (name prefix, reference prefix) as each version
# reports them. A row missing in either version is skipped and said so.
LOG_ROWS = (
    ("handle latency p50", "eventsourcing p50"),
    ("group commit (handle_many, 500 cmds)", "eventsourcing commands + batched save"),
    ("bulk append_batch", "pyarrow write_table"),
    ("bulk append_batch", "eventsourcing batched save"),
    ("read whole log", "eventsourcing select+decode"),
)


def _run_once(
    tree: Path, module: str, out: Path, quick: bool, workdir: Path
) -> list[dict[str, Any]]:
    """One benchmark run of the code in ``tree``; its rows."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "--only",
        module,
        "--out",
        str(out),
        "--workdir",
        str(workdir),
    ] + (["--quick"] if quick else [])
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    rows: list[dict[str, Any]] = json.loads(out.read_text())["results"]
    return rows


def _ratio(rows: list[dict[str, Any]], name: str, reference: str) -> float | None:
    for r in rows:
        if (
            r["name"].startswith(name)
            and (r.get("reference_name") or "").startswith(reference)
            and r.get("ratio") is not None
        ):
            return float(r["ratio"])
    return None


def compare(rev: str, module: str, rounds: int, quick: bool) -> list[dict[str, Any]]:
    """Alternate runs of ``rev`` and the working tree; one dict per compared row."""
    rows_spec = LOG_ROWS if module == "log" else ()
    if not rows_spec:
        raise SystemExit(f"no rows to compare for module {module!r}; expected 'log'")
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="ll-compare-") as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old_tree), rev],
            check=True,
        )
        try:
            got: dict[str, list[list[dict[str, Any]]]] = {"old": [], "new": []}
            for i in range(rounds):
                for side, tree in (("old", old_tree), ("new", ROOT)):
                    console.print(
                        f"round {i + 1}/{rounds}: {side} ({rev if side == 'old' else 'working tree'})"
                    )
                    out = Path(tmp) / f"{side}-{i}.json"
                    got[side].append(_run_once(tree, module, out, quick, Path(tmp) / "work"))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                check=False,
            )
    out_rows = []
    for name, reference in rows_spec:
        old = [r for rows in got["old"] if (r := _ratio(rows, name, reference)) is not None]
        new = [r for rows in got["new"] if (r := _ratio(rows, name, reference)) is not None]
        if not old or not new:
            console.print(f"[yellow]skipped[/] {name} / {reference}: missing in one version")
            continue
        o, n = statistics.median(old), statistics.median(new)
        out_rows.append(
            {
                "name": name,
                "reference": reference,
                "old": o,
                "new": n,
                "change": n / o,
                "old_runs": old,
                "new_runs": new,
            }
        )
    return out_rows


def main(argv: list[str] | None = None) -> int:
    """Compare, print the table, optionally merge the rows into a results JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("rev", help="the older code: a commit, tag or branch")
    parser.add_argument("--only", default="log", help="the benchmark module (default: log)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each version (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    parser.add_argument("--out", type=Path, help="merge the rows into this results JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    rows = compare(args.rev, args.only, args.rounds, args.quick)
    table = Table(title=f"{args.only}: ratios of {args.rev} and of the working tree, same sitting")
    for col in ("row", "reference", f"{args.rev} (median)", "now (median)", "now / then"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"], r["reference"], f"{r['old']:.3g}", f"{r['new']:.3g}", f"{r['change']:.2f}"
        )
    Console(width=180).print(table)
    if args.out is not None:
        doc = json.loads(args.out.read_text()) if args.out.exists() else {"results": []}
        kept = [r for r in doc.get("results", []) if r.get("module") != "compare"]
        for r in rows:
            change = r["change"]
            kept.append(
                {
                    "module": "compare",
                    "area": f"{args.only} vs {args.rev}",
                    "name": f"{r['name']} / {r['reference']} (median of {args.rounds} runs)",
                    "value": r["new"],
                    "unit": "ratio",
                    "reference_name": f"the same at {args.rev}",
                    "reference_value": r["old"],
                    "target": ">= 0.9x",
                    "met": change >= 0.9,
                    "ratio": change,
                }
            )
        doc["results"] = kept
        doc.setdefault("modules", {})["compare"] = {
            "rev": args.rev,
            "rounds": args.rounds,
            "quick": args.quick,
            "machine": machine_info(),
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
