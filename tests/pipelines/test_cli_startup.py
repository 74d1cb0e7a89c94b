"""The quick commands import only what they need (docs/cli.md, "Start-up").

``state``, ``sql`` and ``read --stream`` run as whole processes on a generated, projected
and compacted lake; each reports the heavy modules it imported. Their speed is measured
by ``python -m benchmarks --only cli``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventlog.orders.log import open_order_log
from pipelines.cli import app

HEAVY = ("torch", "lancedb", "dagster", "sentence_transformers", "polars", "pandas", "sklearn")
REPORTER = """
import atexit, json, runpy, sys
heavy = {heavy!r}
atexit.register(lambda: sys.__stderr__.write(
    "IMPORTED " + json.dumps(sorted(m for m in heavy if m in sys.modules)) + "\\n"))
sys.argv = ["ledgerlake", *{args!r}]
runpy.run_module("pipelines.cli", run_name="__main__")
"""


def imported(args: list[str], heavy: tuple[str, ...]) -> list[str]:
    """The modules of ``heavy`` a whole ``ledgerlake`` process imported (it must succeed)."""
    code = REPORTER.format(heavy=heavy, args=args)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return list(json.loads(line.removeprefix("IMPORTED ")))


@pytest.fixture
def projected(small_lake: Path) -> tuple[Path, str]:
    """The small generated lake, projected and compacted; with one of its order ids."""
    runner = CliRunner()
    for command in (["project"], ["compact"]):
        done = runner.invoke(app, ["--lake", str(small_lake), *command])
        assert done.exit_code == 0, done.output
    with open_order_log(small_lake, read_only=True) as log:
        order_id = log.read_all(columns=["stream_id"]).column("stream_id")[0].as_py()
    return small_lake, str(order_id)


def test_state_sql_and_read_stream_import_no_heavy_module(projected: tuple[Path, str]) -> None:
    lake, order_id = projected
    base = ["--lake", str(lake)]
    assert imported([*base, "state", order_id], (*HEAVY, "pyarrow", "numpy")) == []
    # a query needs DuckDB alone: no Arrow, no log
    sql = [*base, "sql", "SELECT count(*) FROM analytics.orders"]
    assert imported(sql, (*HEAVY, "pyarrow", "numpy")) == []
    # reading a stream needs no DuckDB either
    assert imported([*base, "read", "--stream", order_id], (*HEAVY, "duckdb")) == []


def test_the_reporter_sees_a_heavy_import(projected: tuple[Path, str]) -> None:
    lake, _ = projected
    # 'lag' builds Arrow arrays from Python values, and pyarrow then imports pandas
    assert "pandas" in imported(["--lake", str(lake), "lag"], HEAVY)
