"""The embed, search and export-training commands: output, and exit 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from eventlog.orders.generate import generate
from eventlog.orders.log import open_order_log
from pipelines.cli import app


def run(lake: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--lake", str(lake), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def built(lake: Path) -> Path:
    """A lake with 20 generated orders over 35 days and hashing vectors."""
    with open_order_log(lake) as log:
        generate(log, orders=20, days=35, seed=2)
    code, out, err = run(lake, "embed", "--model", "hashing-32", "--json")
    assert code == 0, err
    reports = json.loads(out)
    assert [r["name"] for r in reports] == ["event_narratives", "order_stories"]
    return lake


def test_search_prints_json_hits(built: Path) -> None:
    code, out, err = run(built, "search", "parcel arrived damaged", "--k", "4", "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 4
    assert set(hits[0]) >= {"score", "order_id", "event_type", "occurred_at", "recorded_at", "text"}
    code, out, _ = run(
        built, "search", "refund", "--type", "RefundIssued", "--level", "events", "--json"
    )
    assert code == 0
    hits = json.loads(out)
    assert hits and {h["event_type"] for h in hits} == {"RefundIssued"}
    code, out, _ = run(built, "search", "refund", "--level", "orders", "--hybrid", "--k", "3")
    assert code == 0 and out.count("\n     ") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", ""], "query is empty"),
        (["search", "x", "--k", "0"], "k must be"),
        (["search", "x", "--type", "Exploded"], "unknown event type"),
        (["search", "x", "--since", "yesterday"], "cannot parse time"),
        (["search", "x", "--known-at", "2026-01-01T00:00:00"], "no timezone"),
        (["search", "x", "--level", "nope"], "level must be"),
        (["export-training", "--out", "x.parquet", "--horizon", "soon"], "cannot parse duration"),
        (
            ["export-training", "--out", "x.parquet", "--cutoffs", "2026-13-01T00:00:00Z"],
            "cannot parse time",
        ),
        (["export-training", "--out", "x.parquet", "--cutoffs", ","], "--cutoffs is empty"),
    ],
)
def test_bad_input_exits_2_with_a_message(lake: Path, args: list[str], message: str) -> None:
    code, _, err = run(lake, *args)
    assert code == 2
    assert message in err


def test_missing_vector_store_exits_2_and_says_how_to_build_it(lake: Path) -> None:
    with open_order_log(lake) as log:
        generate(log, orders=2, days=1, seed=1)
    code, _, err = run(lake, "search", "lamp")
    assert code == 2
    assert "ledgerlake embed" in err


def test_export_training_writes_parquet(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    code, stdout, err = run(
        built,
        "export-training",
        "--out",
        str(out),
        "--horizon",
        "7d",
        "--model",
        "hashing-16",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    table = pq.read_table(out)
    assert table.num_rows == summary["rows"] == 21  # seed 2: 9 orders over the weekly cutoffs
    assert (summary["orders"], summary["positives"]) == (9, 1)
    assert {"order_id", "cutoff", "status", "story", "embedding", "label"} <= set(
        table.column_names
    )
    assert summary["horizon_days"] == 7
    code, _, err = run(
        built,
        "export-training",
        "--out",
        str(tmp_path / "n.parquet"),
        "--model",
        "hashing-16",
        "--cutoffs",
        "2020-01-01T00:00:00Z",
    )
    assert code == 2 and "no order was known" in err
    assert not (tmp_path / "n.parquet").exists()
