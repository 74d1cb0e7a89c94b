"""Whole ``ledgerlake`` processes on a demo-sized lake, and the parts a generated log leaves.

* start-up: the median wall time of ``ledgerlake state``, ``sql`` and ``read --stream``
  as whole processes (interpreter start, imports, the answer), interleaved with the
  reference ``python -c "import duckdb, pyarrow"`` so both see the same machine load,
  and their CPU time (user + system), which other work on the machine disturbs less;
* parts per million events of the generated lake, as the generator left it and after
  ``ledgerlake compact`` (which the demo and the nightly job run).

The lake is the demo's (400 orders over 45 days, seed 7), made with the CLI itself:
``generate``, ``project``, ``compact``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Result, median

AREA = "command line"
TARGET_S = 0.4
REFERENCE = [sys.executable, "-c", "import duckdb, pyarrow"]


def _cli(lake: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "--lake", str(lake), *args]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def _timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    _run(command)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def _parts(lake: Path) -> tuple[int, int]:
    info = json.loads(_run(_cli(lake, "info", "--json")))
    return int(info["parts"]), int(info["head"])


def _compile_bytecode() -> None:
    """Write the packages' bytecode, as an installed package (or any first run) has it.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some sandboxes and CI images) an editable
    install never caches it, and every process compiles ``eventlog``, ``projections`` and
    ``pipelines`` from source again: about 30 ms no user pays.
    """
    root = Path(__file__).resolve().parent.parent
    packages = [str(root / name) for name in ("eventlog", "projections", "pipelines")]
    _run([sys.executable, "-m", "compileall", "-q", *packages])


def run(workdir: Path, quick: bool) -> list[Result]:
    """Make the demo lake with the CLI, then time the three commands beside the reference."""
    _compile_bytecode()
    lake = workdir / "lake"
    _run(_cli(lake, "generate", "--orders", "400", "--days", "45", "--seed", "7"))
    generated, events = _parts(lake)
    _run(_cli(lake, "project"))
    _run(_cli(lake, "compact"))
    compacted, _ = _parts(lake)
    order = _run(_cli(lake, "sql", "SELECT min(order_id) FROM analytics.orders", "--csv"))
    order_id = order.splitlines()[1].strip()
    commands = {
        "state": _cli(lake, "state", order_id),
        "sql": _cli(lake, "sql", "SELECT status, count(*) FROM analytics.orders GROUP BY 1"),
        "read --stream": _cli(lake, "read", "--stream", order_id),
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "reference"]}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    for _ in range(5 if quick else 15):
        for name, command in [*commands.items(), ("reference", REFERENCE)]:
            wall, used = _timed(command)
            times[name].append(wall)
            cpu[name].append(used)
    reference = median(times["reference"])
    results = [
        Result(
            AREA,
            f"ledgerlake {name} (whole process, median)",
            median(times[name]),
            "s",
            'python -c "import duckdb, pyarrow"',
            reference,
            f"<= {TARGET_S} s",
            median(times[name]) <= TARGET_S,
        )
        for name in commands
    ]
    results += [
        Result(
            AREA,
            f"ledgerlake {name} (CPU user+system, median)",
            median(cpu[name]),
            "s",
            'python -c "import duckdb, pyarrow"',
            median(cpu["reference"]),
        )
        for name in commands
    ]
    per_million = 1_000_000 / events
    results += [
        Result(
            AREA,
            f"parts per million events (generated, {events:,} events)",
            generated * per_million,
            "parts/M",
        ),
        Result(
            AREA, "parts per million events (after compact)", compacted * per_million, "parts/M"
        ),
    ]
    return results


if __name__ == "__main__":
    out = Path("benchmarks/.work/cli")
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps([r.to_json() for r in run(out, True)], indent=2))
