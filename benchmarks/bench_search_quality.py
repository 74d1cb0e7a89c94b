"""Search quality, measured: recall@10 and nDCG@10 of vector, full-text and hybrid search.

The queries and their relevant events and orders are the committed evaluation set
(``benchmarks/search_eval.json``, see ``benchmarks/search_eval.py``). The lake is the seeded
one the set was labelled on (checked by its head), embedded with the real all-MiniLM-L6-v2.

- recall@10 = relevant results in the top 10 / min(10, relevant items): 1.0 when the top 10
  is all relevant or holds every relevant item.
- nDCG@10 = DCG of the top 10 (gain 1 for a relevant result at rank r, discounted by
  1/log2(r + 1)) over the DCG of an ideal top 10; rewards relevant results near the top.
Both are averaged over the queries (``--quick`` uses every third query).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import Result
from benchmarks.search_eval import build, load

LEVELS = ("events", "orders")
MODES = ("vector", "fts", "hybrid")


def recall_at(found: Sequence[bool], relevant: int, k: int) -> float:
    """Relevant results among the first ``k`` over the most that could be there."""
    return sum(found[:k]) / min(k, relevant) if relevant else 0.0


def ndcg_at(found: Sequence[bool], relevant: int, k: int) -> float:
    """Normalized discounted cumulative gain of the first ``k`` results (binary relevance)."""
    dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(found[:k]) if hit)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, relevant)))
    return dcg / ideal if ideal else 0.0


@dataclass(frozen=True, slots=True)
class Score:
    """Mean recall@k and nDCG@k of one (level, mode) over the queries."""

    level: str
    mode: str
    recall: float
    ndcg: float
    queries: int


def evaluate(lake: Path, queries: list[dict[str, Any]], k: int, embedder: Any) -> list[Score]:
    """Run every query at both levels in every mode; average the metrics."""
    from projections.search import search

    scores = []
    for level in LEVELS:
        for mode in MODES:
            recalls, ndcgs = [], []
            for q in queries:
                hits = search(lake, q["query"], k=k, level=level, mode=mode, embedder=embedder)
                if level == "events":
                    wanted = set(q["relevant_events"])
                    found = [h.position in wanted for h in hits]
                else:
                    wanted = set(q["relevant_orders"])
                    found = [h.order_id in wanted for h in hits]
                recalls.append(recall_at(found, len(wanted), k))
                ndcgs.append(ndcg_at(found, len(wanted), k))
            n = len(queries)
            scores.append(Score(level, mode, sum(recalls) / n, sum(ndcgs) / n, n))
    return scores


def winners(scores: list[Score]) -> dict[str, str]:
    """Per level, the mode with the best nDCG@10 (ties: the earlier of MODES)."""
    return {
        level: max((s for s in scores if s.level == level), key=lambda s: s.ndcg).mode
        for level in LEVELS
    }


def render(scores: list[Score], console: Console) -> None:
    """The relevance table: one row per mode, recall@10 and nDCG@10 per level."""
    table = Table(title=f"Search quality ({scores[0].queries} labelled queries, k=10)")
    table.add_column("mode")
    for level in LEVELS:
        table.add_column(f"{level} recall@10", justify="right")
        table.add_column(f"{level} nDCG@10", justify="right")
    best = winners(scores)
    for mode in MODES:
        cells = []
        for level in LEVELS:
            s = next(x for x in scores if x.level == level and x.mode == mode)
            mark = "[bold]" if best[level] == mode else ""
            cells += [f"{mark}{s.recall:.3f}", f"{mark}{s.ndcg:.3f}"]
        table.add_row(mode, *cells)
    console.print(table)
    console.print(
        "best nDCG@10: " + ", ".join(f"{level} -> {mode}" for level, mode in best.items())
    )


def run(workdir: Path, quick: bool) -> Iterator[Result]:
    """Build the labelled lake with real embeddings, evaluate, and report the figures."""
    from projections.embeddings import SentenceTransformerEmbedder
    from projections.search import DEFAULT_MODES
    from projections.vectors import catch_up_vectors

    data = load()
    lake = workdir / "lake"
    fresh = build(lake)
    if fresh["lake"] != data["lake"] or fresh["queries"] != data["queries"]:
        raise SystemExit(
            "benchmarks/search_eval.json does not match the lake the generator makes now; "
            "refresh it with 'python -m benchmarks.search_eval'"
        )
    embedder = SentenceTransformerEmbedder()
    catch_up_vectors(lake, embedder=embedder)
    queries = data["queries"][::3] if quick else data["queries"]
    scores = evaluate(lake, queries, int(data["k"]), embedder)
    render(scores, Console(stderr=True))
    met = winners(scores) == DEFAULT_MODES
    for s in scores:
        default = DEFAULT_MODES[s.level] == s.mode
        for metric, value in (("recall@10", s.recall), ("nDCG@10", s.ndcg)):
            yield Result(
                "search quality",
                f"{s.level} {s.mode} {metric}",
                round(value, 4),
                "mean",
                target="the default mode of the level wins" if default else None,
                met=met if default else None,
            )
