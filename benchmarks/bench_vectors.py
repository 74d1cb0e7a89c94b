"""Vector projections: embedding throughput end to end, search latency and recall.

* narratives embedded per second by ``catch_up_vectors`` (read log, narrate, encode,
  merge into LanceDB, checkpoint) beside raw ``SentenceTransformer.encode`` on the very
  same texts with the same batch size, in the same run (target ratio >= 0.8);
* search latency p50/p99 and recall@10 of the indexed LanceDB search (the settings of
  ``projections.search``) against exact brute-force cosine search, on synthetic clustered
  384-d unit vectors (100k and 1M rows; 20k when quick). Target: recall@10 >= 0.95 at
  p50 <= 20 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.common import Result, percentile
from eventlog.orders.log import open_order_log

DIM = 384


def _embed_throughput(workdir: Path, quick: bool) -> list[Result]:
    from eventlog.orders.generate import generate
    from projections.embeddings import SentenceTransformerEmbedder
    from projections.vector_store import EVENT_NARRATIVES, VectorStore
    from projections.vectors import catch_up_vectors

    lake = workdir / "lake"
    with open_order_log(lake) as log:
        generate(log, orders=150 if quick else 1_000, days=30, seed=42)
        events = log.head()
    emb = SentenceTransformerEmbedder(batch_size=128)
    emb.encode(["warm up the model"])
    import lancedb  # noqa: F401 - a one-off import (seconds) is not per-event work

    start = time.perf_counter()
    catch_up_vectors(lake, embedder=emb, names=[EVENT_NARRATIVES])
    ours = events / (time.perf_counter() - start)
    store = VectorStore(lake)
    texts = store.open_table(store.require(EVENT_NARRATIVES).table).to_arrow()["text"].to_pylist()
    start = time.perf_counter()
    emb.model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
    raw = len(texts) / (time.perf_counter() - start)
    return [
        Result(
            "vectors",
            f"narratives embedded end to end ({events} events, {emb.device})",
            ours,
            "texts/s",
            "SentenceTransformer.encode, same texts",
            raw,
            ">= 0.8x raw encode",
            ours >= 0.8 * raw,
        )
    ]


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """``n`` unit vectors scattered around random cluster centers."""
    which = rng.integers(0, len(centers), n)
    x = centers[which] + 0.35 * rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _exact_top10(data: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    out = np.zeros((len(queries), 10), dtype=np.int64)
    latencies = []
    for i, q in enumerate(queries):
        start = time.perf_counter()
        scores = data @ q
        top = np.argpartition(-scores, 10)[:10]
        out[i] = top[np.argsort(-scores[top])]
        latencies.append(time.perf_counter() - start)
    return out, latencies


def _search_at(workdir: Path, n: int, queries_n: int) -> list[Result]:
    import lancedb

    from projections.search import EF, NPROBES, REFINE_FACTOR
    from projections.vector_store import ensure_indexes

    rng = np.random.default_rng(n)
    centers = rng.standard_normal((max(100, n // 1_000), DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    db = lancedb.connect(str(workdir / f"search_{n}"))
    tbl = None
    data_parts = []
    for offset in range(0, n, 100_000):
        part = clustered(min(100_000, n - offset), rng, centers)
        data_parts.append(part)
        flat = pa.array(part.reshape(-1))
        batch = pa.table(
            {
                "id": pa.array(np.arange(offset, offset + len(part), dtype=np.int64)),
                "text": pa.array(["x"] * len(part)),
                "vector": pa.FixedSizeListArray.from_arrays(flat, DIM),
            }
        )
        tbl = db.create_table("v", batch) if tbl is None else tbl
        if offset:
            tbl.add(batch)
    assert tbl is not None
    data = np.concatenate(data_parts)
    start = time.perf_counter()
    ensure_indexes(tbl, index_threshold=1)
    build_s = time.perf_counter() - start
    queries = clustered(queries_n, rng, centers)
    exact, exact_lat = _exact_top10(data, queries)
    latencies, recalls = [], []
    for i, q in enumerate(queries):
        start = time.perf_counter()
        got = (
            tbl.search(q, query_type="vector")
            .distance_type("cosine")
            .nprobes(NPROBES)
            .refine_factor(REFINE_FACTOR)
            .ef(EF)
            .limit(10)
            .select(["id"])
            .to_arrow()
        )
        latencies.append(time.perf_counter() - start)
        recalls.append(len(set(got["id"].to_pylist()) & set(exact[i].tolist())) / 10)
    p50, p99 = percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3
    recall = float(np.mean(recalls))
    exact_p50 = percentile(exact_lat, 50) * 1e3
    good = recall >= 0.95 and p50 <= 20
    label = f"{n // 1000}k rows"
    return [
        Result(
            "vectors",
            f"search p50, {label}",
            p50,
            "ms",
            "exact numpy search p50",
            exact_p50,
            "<= 20 ms with recall@10 >= 0.95",
            good,
        ),
        Result("vectors", f"search p99, {label}", p99, "ms", "exact numpy search p50", exact_p50),
        Result(
            "vectors",
            f"search recall@10, {label}",
            recall,
            "fraction",
            "exact search",
            1.0,
            ">= 0.95",
            recall >= 0.95,
        ),
        Result("vectors", f"index build, {label}", build_s, "s"),
    ]


def run(workdir: Path, quick: bool) -> list[Result]:
    """Embedding throughput beside raw encode; search latency and recall beside exact search."""
    results = _embed_throughput(workdir, quick)
    for n in (20_000,) if quick else (100_000, 1_000_000):
        results += _search_at(workdir, n, 50 if quick else 200)
    return results
