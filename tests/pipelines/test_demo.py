"""`ledgerlake demo`: generates a lake, materializes every asset through Dagster, prints a tour."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.demo import run_demo
from pipelines.instance import lake_instance
from tests.support.dagster_ui import ASSETS, LEDGERLAKE, materialized_assets, start_ui
from tests.support.terminal import in_terminal


def test_demo_materializes_every_asset_into_the_lake_instance(tmp_path: Path) -> None:
    import dagster as dg

    lake = tmp_path / "lake"
    console = Console(record=True, width=200)
    result = run_demo(lake, orders=40, days=30, seed=11, embedder="hashing", console=console)
    out = console.export_text()
    # 17 checks: every one the definitions hold, each evaluated once by the run.
    assert result.ok and result.checks_failed == [] and result.checks_passed == 17
    assert set(result.materialized) == ASSETS
    for text in ("analytics.orders", "Time travel", "Semantic search", "ledgerlake", "notebooks"):
        assert text in out
    # the tour ends by telling how to open the search page
    assert out.rindex("serve") > out.rindex("search 'late delivery'")
    assert "http://127.0.0.1:8765/" in out and "search page" in out
    assert "score = cosine similarity of the query and the text" in out
    with lake_instance(lake) as instance:
        for name in ASSETS:
            assert instance.get_latest_materialization_event(dg.AssetKey(name)) is not None
    # the log is compacted, as the nightly job does: one part per recorded day, each with
    # its stream file, and the summary says how many parts per million events
    from eventlog.orders.log import open_order_log
    from eventlog.streamfiles import stream_file_path

    with open_order_log(lake, read_only=True) as log:
        parts = log.parts()
        assert len(parts) == len({p.date for p in parts}) == result.parts
        assert all(stream_file_path(lake, p).exists() for p in parts)
    assert f"in {result.parts} parts, one per recorded day" in out
    assert f"{result.parts * 1_000_000 / result.events:,.0f} parts per million events" in out
    # A second demo on the same lake reuses the log and appends nothing.
    again = run_demo(lake, orders=40, days=30, seed=11, embedder="hashing", console=console)
    assert again.ok and again.events == result.events


def test_demo_in_a_terminal_shows_each_asset_as_it_finishes_and_the_checks(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    shown = in_terminal(
        "--lake", str(lake), "demo", "--orders", "30", "--days", "30", "--embedder", "hashing"
    )
    assert shown.code == 0, shown.terminal[-3000:] + shown.stderr
    lines = shown.terminal.splitlines()
    progress = [line.split()[1:3] for line in lines if line.startswith("  materialized ")]
    assert sorted(name for name, _ in progress) == sorted(ASSETS)
    assert [count for _, count in progress] == [f"({i}/10):" for i in range(1, 11)]
    # The lines come while the run goes, before the summary of the run.
    first_progress = next(i for i, line in enumerate(lines) if line.startswith("  materialized "))
    summary = next(i for i, line in enumerate(lines) if line.startswith("Dagster run "))
    assert first_progress < summary
    assert any(line.strip() == "Checks: 17 of 17 passed" for line in lines)
    rows = [
        line for line in lines if line.startswith("│") and ("passed" in line or "FAILED" in line)
    ]
    assert len(rows) == 17 and all(row.split("│")[3].strip() == "passed" for row in rows)
    # Nothing animates over anything else: no spinner frames, no tqdm bars.
    assert not set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") & set(shown.terminal)
    assert "it/s]" not in shown.terminal + shown.stderr


def test_demo_refuses_a_lake_it_did_not_create(lake: Path, log: object) -> None:
    (lake / "notes.txt").write_text("mine")
    done = subprocess.run(
        [str(LEDGERLAKE), "--lake", str(lake), "demo", "--embedder", "hashing"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "did not create" in done.stderr
    assert (lake / "notes.txt").read_text() == "mine" and not (lake / ".dagster").exists()


def test_demo_rejects_bad_options(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(LEDGERLAKE), "--lake", str(tmp_path / "x"), "demo", "--embedder", "bert"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--embedder" in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_make_demo_then_ui_shows_every_asset_materialized(tmp_path: Path) -> None:
    """As a new user: the demo with the real model, then `ledgerlake ui` over GraphQL."""
    lake = tmp_path / "lake"
    done = subprocess.run(
        [str(LEDGERLAKE), "--lake", str(lake), "demo", "--orders", "60", "--days", "30"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Semantic search" in done.stdout and "demo finished" in done.stdout
    assert "all-MiniLM-L6-v2" in (lake / "vectors" / "aliases.json").read_text()
    ui = start_ui(lake, tmp_path / "ui.log", embedder="sentence-transformers")
    try:
        materialized = materialized_assets(ui)
    finally:
        ui.stop()
    assert {name for name, done in materialized.items() if done} == ASSETS
