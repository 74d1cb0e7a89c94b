"""A catch-up killed mid-way (SIGKILL) and rerun gives exactly the tables of an unbroken run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from projections.plan import PROJECTIONS
from projections.runner import catch_up
from projections.warehouse import checkpoints, connect
from tests.projections.test_bluegreen import _history
from tests.support.histories import append_commit, open_log

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from projections.runner import catch_up

    def said(name, position):
        print(name, position, flush=True)

    catch_up(Path(sys.argv[1]), batch_size=300, on_commit=said)
    print("done", flush=True)
    """
)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {
        p.name: sorted(con.execute(f"SELECT * FROM {p.view}").fetchall(), key=repr)
        for p in PROJECTIONS
    }


@pytest.mark.parametrize("kill_after", [2, 7])  # inside order_events; before/in the derived commit
def test_killed_catch_up_then_rerun_equals_unbroken_run(
    lake: Path, tmp_path: Path, kill_after: int
) -> None:
    log = open_log(lake)
    append_commit(log, _history(1000))
    log.close()
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(lake)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.split())
        if len(lines) == kill_after:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, lines
    assert ["done"] not in lines

    log = open_log(lake)
    con = connect(log)
    at_kill = {name: cp.position for name, cp in checkpoints(con).items()}
    assert at_kill, "the child committed something before it was killed"
    assert any(pos < log.head() for pos in at_kill.values()) or len(at_kill) < len(PROJECTIONS)
    catch_up(log, con)
    resumed = _tables(con)
    con.close()

    unbroken = duckdb.connect(str(tmp_path / "unbroken.duckdb"))
    catch_up(log, unbroken)
    assert resumed == _tables(unbroken)
    assert len(resumed["order_events"]) == log.head() == 2000
    unbroken.close()
    log.close()
