"""Several OS processes append to overlapping streams with expected versions at once."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from eventlog.orders.log import open_order_log
from tests.support.backends import BACKENDS
from tests.support.logs import writer_command

WORKERS = 4
APPENDS = 60
STREAMS = 5


@pytest.fixture(params=sorted(BACKENDS))
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An empty lake of each backend: the writers share nothing but it."""
    path = tmp_path / "lake"
    path.mkdir()
    BACKENDS[request.param](request, path)
    return path


def test_processes_racing_on_shared_streams_lose_and_duplicate_nothing(
    lake: Path, tmp_path: Path
) -> None:
    open_order_log(lake).close()
    outs = [tmp_path / f"worker-{w}.jsonl" for w in range(WORKERS)]
    procs = [
        subprocess.Popen(writer_command("concurrent", lake, w, APPENDS, STREAMS, outs[w]))
        for w in range(WORKERS)
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{out}.ready").exists() for out in outs):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), "a worker died while starting"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    acked: list[dict[str, int | str]] = []
    clashes = 0
    for out in outs:
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        *appends, summary = lines
        assert len(appends) + summary["clashes"] == APPENDS
        acked += appends
        clashes += summary["clashes"]

    log = open_order_log(lake)
    table = log.read_all()
    pos = table.column("position").to_pylist()
    assert pos == list(range(1, len(pos) + 1)), "positions are dense and unique"
    assert len(pos) == sum(int(a["last"]) - int(a["first"]) + 1 for a in acked)
    sids = table.column("stream_id").to_pylist()
    vers = table.column("version").to_pylist()
    for a in acked:
        first, last = int(a["first"]), int(a["last"])
        # the append landed where it was acknowledged, right after the version it read
        assert set(sids[first - 1 : last]) == {a["stream_id"]}
        assert int(a["first_version"]) == int(a["expected"]) + 1
        assert vers[first - 1 : last] == list(
            range(int(a["first_version"]), int(a["first_version"]) + last - first + 1)
        )
    for sid in {str(a["stream_id"]) for a in acked}:
        stream = log.read_stream(sid).column("version").to_pylist()
        assert stream == list(range(1, len(stream) + 1))
    report = log.verify()
    assert report.ok, report.problems
    assert clashes > 0, "the workers raced; some clashes must have been reported"
    log.close()
