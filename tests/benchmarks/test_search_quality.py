"""The labelled search evaluation set, its metrics, and the figures the benchmark committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_search_quality import (
    LEVELS,
    MODES,
    Score,
    evaluate,
    ndcg_at,
    recall_at,
    winners,
)
from benchmarks.search_eval import EVAL_FILE, LAKE, build, load
from projections.search import DEFAULT_MODES

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results.json"


def test_the_evaluation_set_has_forty_labelled_queries_or_more() -> None:
    data = load()
    queries = data["queries"]
    assert len(queries) >= 40
    assert len({q["query"] for q in queries}) == len(queries)
    assert len({q["id"] for q in queries}) == len(queries)
    assert data["lake"] == {**LAKE, "head": 3843}
    assert all(q["relevant_events"] and q["relevant_orders"] for q in queries)
    situations = {q["situation"] for q in queries}
    assert {"damaged", "wrong_size", "late", "payment_failed", "lost", "missing"} <= situations


def test_the_committed_set_is_what_the_seeded_generator_makes(tmp_path: Path) -> None:
    fresh = build(tmp_path / "lake")
    assert fresh == load()
    # The relevant orders are exactly the streams of the relevant events.
    from eventlog.envelope import records_from_batch
    from eventlog.orders.log import reading

    with reading(tmp_path / "lake") as log:
        stream_of = {r.position: r.stream_id for r in records_from_batch(log.read_all())}
    for q in fresh["queries"]:
        assert sorted({stream_of[p] for p in q["relevant_events"]}) == q["relevant_orders"]


def test_recall_and_ndcg_at_10() -> None:
    assert recall_at([True] * 10, 29, 10) == 1.0
    assert recall_at([False, True, False], 2, 10) == 0.5
    assert recall_at([True, True, False, False], 2, 10) == 1.0
    assert recall_at([], 3, 10) == 0.0
    assert ndcg_at([True, False], 1, 10) == 1.0
    assert ndcg_at([False, True], 1, 10) == pytest.approx(1 / 1.5849625007211563)
    assert ndcg_at([False, True, True], 2, 10) == pytest.approx(
        (0.6309297535655 + 0.5) / 1.6309297535655
    )
    assert ndcg_at([False] * 10, 5, 10) == 0.0


def test_the_default_modes_won_in_the_committed_figures() -> None:
    rows = [
        r for r in json.loads(RESULTS.read_text())["results"] if r["module"] == "search_quality"
    ]
    assert {r["name"] for r in rows} == {
        f"{level} {mode} {metric}"
        for level in LEVELS
        for mode in MODES
        for metric in ("recall@10", "nDCG@10")
    }
    value = {r["name"]: r["value"] for r in rows}
    assert all(0.0 <= v <= 1.0 for v in value.values())
    scores = [
        Score(level, mode, value[f"{level} {mode} recall@10"], value[f"{level} {mode} nDCG@10"], 50)
        for level in LEVELS
        for mode in MODES
    ]
    assert winners(scores) == DEFAULT_MODES


def test_evaluate_scores_a_query_made_of_the_refund_reason(tmp_path: Path) -> None:
    from projections.embeddings import HashingEmbedder
    from projections.vectors import catch_up_vectors

    lake = tmp_path / "lake"
    data = build(lake)
    embedder = HashingEmbedder(64)
    catch_up_vectors(lake, embedder=embedder)
    damaged = next(q for q in data["queries"] if q["situation"] == "damaged")
    query = {**damaged, "query": "item arrived damaged"}
    scores = {(s.level, s.mode): s for s in evaluate(lake, [query], 10, embedder)}
    # Every event and story holding these words is relevant: full-text search is perfect.
    assert scores[("events", "fts")].recall == 1.0 and scores[("events", "fts")].ndcg == 1.0
    assert scores[("orders", "fts")].recall == 1.0
    assert set(scores) == {(level, mode) for level in LEVELS for mode in MODES}
    assert EVAL_FILE.exists()
