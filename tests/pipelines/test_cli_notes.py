"""An empty result says so on stderr and exits 0; a date alone is read as UTC midnight, and says so."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipelines.test_cli_search import built, run

__all__ = ["built"]  # the fixture, shared with the search command's tests


def test_read_of_an_unknown_stream_says_so(built: Path) -> None:
    code, out, err = run(built, "read", "--stream", "no-such-order")
    assert (code, out) == (0, "")
    assert err == "note: no events: the log has no stream 'no-such-order'\n"
    code, out, _ = run(built, "read", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 1
    stream = json.loads(out)["stream_id"]
    code, out, err = run(built, "read", "--stream", stream, "--after", "1000000")
    assert (code, out) == (0, "")
    assert err.startswith(f"note: no events of stream {stream!r} (version ")
    assert err.endswith(") match --after/--type\n")
    code, out, err = run(built, "read", "--stream", stream)
    assert code == 0 and out and err == ""


def test_search_with_no_result_says_so(built: Path) -> None:
    code, out, err = run(built, "search", "damaged parcel", "--customer", "nobody")
    assert (code, out) == (0, "")
    assert err == "note: no results: nothing matched the query and filters\n"
    code, out, err = run(built, "search", "damaged parcel", "--customer", "nobody", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert "no results" in err


def test_search_since_a_date_is_that_days_start_in_utc(built: Path) -> None:
    code, out, err = run(built, "search", "payment", "--since", "2026-01-20", "--k", "50", "--json")
    assert code == 0
    assert err == (
        "note: --since 2026-01-20 is read as 2026-01-20T00:00:00+00:00 (the start of that day in UTC)\n"
    )
    hits = json.loads(out)
    assert hits and min(h["occurred_at"] for h in hits) >= "2026-01-20T00:00:00+00:00"
    code, out, _ = run(built, "search", "payment", "--until", "2026-01-20", "--k", "50", "--json")
    assert code == 0
    hits = json.loads(out)
    assert hits and max(h["occurred_at"] for h in hits) < "2026-01-20T00:00:00+00:00"


def test_lag_lists_vectors_and_training_beside_the_warehouse(built: Path) -> None:
    from eventlog.orders.log import reading
    from projections.training import LAKE_TRAINING_FILE

    with reading(built) as log:
        n = log.head()
    assert run(built, "project")[0] == 0
    out = built / LAKE_TRAINING_FILE
    code, _, err = run(built, "export-training", "--out", str(out), "--model", "hashing-16")
    assert code == 0, err
    code, text, _ = run(built, "lag")
    assert code == 0
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["warehouse", "order_events"],
        ["warehouse", "orders"],
        ["warehouse", "order_lines"],
        ["warehouse", "payments"],
        ["warehouse", "order_states"],
        ["warehouse", "daily_sales"],
        ["warehouse", "customers"],
        ["vectors", "event_narratives"],
        ["vectors", "order_stories"],
        ["training", "training_set"],
    ]
    assert all(f"at {n:>10} of {n:<10} lag 0 events" in line for line in lines)
    rows = {x["name"]: x for x in json.loads(run(built, "lag", "--json")[1])}
    assert rows["event_narratives"]["where"].startswith("vectors/event_narratives__hashing_32__v")
    assert rows["training_set"]["where"] == str(LAKE_TRAINING_FILE)
    out.unlink()
    rows = {x["name"]: x for x in json.loads(run(built, "lag", "--json")[1])}
    assert (rows["training_set"]["lag_events"], rows["training_set"]["where"]) == (n, None)
    assert "training  training_set" in run(built, "lag")[1]
    assert "(not built yet)" in run(built, "lag")[1].splitlines()[-1]


def test_search_says_which_mode_ran_and_what_its_score_means(built: Path) -> None:
    def first_line(*args: str) -> str:
        code, out, err = run(built, "search", "refund", "--k", "2", *args)
        assert code == 0, err
        return out.splitlines()[0]

    assert first_line().startswith("vector search; score = cosine similarity")
    assert first_line("--level", "orders").startswith("fts search; score = BM25")
    hybrid = first_line("--hybrid")
    assert hybrid.startswith("hybrid search; score = reciprocal-rank fusion")
    assert "1/(60 + rank)" in hybrid and "0.033 = first in both" in hybrid
    assert first_line("--mode", "hybrid") == hybrid
    code, _, err = run(built, "search", "refund", "--mode", "semantic")
    assert code == 2 and "mode must be one of ['vector', 'fts', 'hybrid']" in err
    code, _, err = run(built, "search", "refund", "--mode", "fts", "--hybrid")
    assert code == 2 and "--hybrid contradicts --mode fts" in err
    code, out, _ = run(built, "search", "refund", "--mode", "hybrid", "--k", "3", "--json")
    scores = [h["score"] for h in json.loads(out)]
    assert len(scores) == 3 and all(0 < s <= 2 / 61 for s in scores)
    # Each score is 1/(60 + r) for one list or the sum for both, ranks counted from 1.
    singles = [1 / (60 + r) for r in range(1, 40)]
    sums = singles + [a + b for a in singles for b in singles]
    assert all(any(abs(s - v) < 2e-6 for v in sums) for s in scores), scores
