"""``ledgerlake serve`` and ONNX embeddings, each beside its reference in the same run.

* search latency through the server (HTTP on loopback, warm) p50/p99 beside the
  in-process ``search()`` call on the same lake (the demo lake: 400 orders, 45 days,
  real all-MiniLM-L6-v2 vectors). Target: p50 <= 50 ms and <= 2x in-process;
* embedding throughput of the ONNX Runtime embedder beside ``SentenceTransformer.encode``
  (PyTorch, CPU) on the same texts, same batch size. Target >= 1.8x;
* ``ledgerlake search`` as a whole process, cold (a new process each time). Target <= 3 s;
* command throughput through the server (4 clients on loopback) beside ``handle`` called
  in-process in a loop on an open log. Target >= 0.5x.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Result, percentile

QUERIES = [
    "customer complained the parcel arrived damaged",
    "late delivery",
    "refund for a missing item",
    "card declined at checkout",
    "gift wrapping request",
    "wrong size returned",
    "the box was soaked",
    "order cancelled before shipping",
]
CLIENTS = 4


def _ledgerlake() -> str:
    return str(Path(sys.executable).with_name("ledgerlake"))


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "LANCE_LOG": "error", "HF_HUB_OFFLINE": "1", "PYTHONPATH": root}


def _build_lake(lake: Path, quick: bool) -> None:
    from eventlog.generate import generate
    from eventlog.orders.log import open_order_log
    from projections.embeddings import default_embedder
    from projections.onnx_embedder import model_cache_dir
    from projections.vectors import catch_up_vectors

    with open_order_log(lake) as log:
        generate(log, orders=100 if quick else 400, days=45, seed=42)
    catch_up_vectors(lake, embedder=default_embedder(cache_dir=model_cache_dir(lake), device="cpu"))


class _Server:
    def __init__(self, lake: Path) -> None:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        cmd = [_ledgerlake(), "--lake", str(lake), "serve", "--port", str(port)]
        self.proc = subprocess.Popen(
            cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("ledgerlake serve did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _search_latency(lake: Path, server: _Server, rounds: int) -> list[Result]:
    import httpx

    from projections.search import search
    from projections.vector_store import VectorStore

    store = VectorStore(lake, create=False, keep_open=True)
    search(lake, "warm up", k=10, store=store)
    local, remote = [], []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/api/search", params={"q": "warm up"})
        for _ in range(rounds):
            for q in QUERIES:
                start = time.perf_counter()
                search(lake, q, k=10, store=store)
                local.append(time.perf_counter() - start)
                start = time.perf_counter()
                response = client.get("/api/search", params={"q": q, "k": 10})
                remote.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
    p50, p99 = percentile(remote, 50) * 1e3, percentile(remote, 99) * 1e3
    local_p50 = percentile(local, 50) * 1e3
    return [
        Result(
            "serve",
            f"search through the server p50 ({len(remote)} queries, warm)",
            p50,
            "ms",
            "in-process search() p50",
            local_p50,
            "<= 50 ms and <= 2x in-process",
            p50 <= 50 and p50 <= 2 * local_p50,
        ),
        Result(
            "serve",
            "search through the server p99",
            p99,
            "ms",
            "in-process search() p50",
            local_p50,
        ),
    ]


def _embedding(lake: Path, quick: bool) -> list[Result]:
    from projections.embeddings import SentenceTransformerEmbedder
    from projections.onnx_embedder import OnnxEmbedder, model_cache_dir
    from projections.vector_store import EVENT_NARRATIVES, VectorStore

    store = VectorStore(lake, create=False)
    texts = store.open_table(store.require(EVENT_NARRATIVES).table).to_arrow()["text"].to_pylist()
    texts = texts[: 600 if quick else 2_000]
    onnx = OnnxEmbedder(cache_dir=model_cache_dir(lake), batch_size=64)
    torch_model = SentenceTransformerEmbedder(device="cpu", batch_size=64).model
    onnx.encode(texts[:32])
    torch_model.encode(texts[:32], batch_size=64)
    onnx_rates, torch_rates = [], []
    for _ in range(3):  # alternate, so a noisy neighbour hurts both alike; medians below
        start = time.perf_counter()
        onnx.encode(texts)
        onnx_rates.append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        torch_model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        torch_rates.append(len(texts) / (time.perf_counter() - start))
    ours, ref = statistics.median(onnx_rates), statistics.median(torch_rates)
    return [
        Result(
            "serve",
            f"embedding, ONNX Runtime fp32 ({len(texts)} narratives, cpu, median of 3)",
            ours,
            "texts/s",
            "SentenceTransformer.encode (PyTorch), same texts",
            ref,
            ">= 1.8x",
            ours >= 1.8 * ref,
        )
    ]


def _cold_cli(lake: Path) -> list[Result]:
    times = []
    for query in QUERIES[:3]:
        start = time.perf_counter()
        done = subprocess.run(
            [_ledgerlake(), "--lake", str(lake), "search", query, "--k", "5"],
            env=_env(),
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
        assert "Loading weights" not in done.stderr
    value = statistics.median(times)
    return [
        Result(
            "serve",
            "`ledgerlake search` as a whole process, cold (median of 3)",
            value,
            "s",
            "about 11 s before (torch + PyTorch model)",
            11.0,
            "<= 3 s",
            value <= 3.0,
        )
    ]


def _in_process_commands(lake: Path, n: int) -> float:
    from eventlog.handler import CommandHandler
    from eventlog.orders.commands import command_from_json
    from eventlog.orders.decider import ORDER_DECIDER
    from eventlog.orders.log import open_order_log

    now = datetime.now(UTC)
    with open_order_log(lake, seal_on_close=False) as log:
        handler = CommandHandler(log, ORDER_DECIDER)
        order = {"order_id": "ord-bench-local", "customer_id": "c", "customer_name": "B"}
        create = {"command": "CreateOrder", **order, "customer_email": "b@example.com"}
        create |= {"currency": "EUR", "channel": "web"}
        handler.handle("ord-bench-local", command_from_json(create, now=now))
        start = time.perf_counter()
        for i in range(n):
            note = {"command": "AddCustomerNote", "order_id": "ord-bench-local"}
            cmd = command_from_json(note | {"author": "a", "note": f"n{i}"}, now=now)
            handler.handle("ord-bench-local", cmd)
        return n / (time.perf_counter() - start)


def _served_commands(server: _Server, seconds: float) -> float:
    """Commands/s from CLIENTS keep-alive connections (http.client: the client's own cost
    stays small, so the figure is the server's)."""
    import http.client
    import json

    counts = [0] * CLIENTS
    host, port = server.url.removeprefix("http://").split(":")
    headers = {"content-type": "application/json"}

    def client(k: int) -> None:
        order = f"ord-bench-{k}"
        create = {"command": "CreateOrder", "order_id": order, "customer_id": "c"}
        create |= {"customer_name": "B", "customer_email": "b@example.com", "currency": "EUR"}
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def post(body: dict[str, str]) -> int:
            conn.request("POST", "/api/commands", json.dumps(body), headers)
            response = conn.getresponse()
            response.read()
            return response.status

        assert post(create | {"channel": "web"}) == 201
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            note = {"command": "AddCustomerNote", "order_id": order, "author": "a"}
            assert post(note | {"note": f"n{counts[k]}"}) == 201
            counts[k] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def run(workdir: Path, quick: bool) -> list[Result]:
    """Server search latency, ONNX embedding, cold CLI search and command throughput."""
    lake = workdir / "lake"
    _build_lake(lake, quick)
    results = _embedding(lake, quick)
    results += _cold_cli(lake)
    local_rate = _in_process_commands(lake, 300 if quick else 1_000)
    server = _Server(lake)
    try:
        results += _search_latency(lake, server, 3 if quick else 12)
        served_rate = _served_commands(server, 5.0 if quick else 20.0)
    finally:
        server.stop()
    results.append(
        Result(
            "serve",
            f"commands through the server ({CLIENTS} clients on loopback)",
            served_rate,
            "commands/s",
            "handle() in-process, one open log",
            local_rate,
            ">= 0.5x",
            served_rate >= 0.5 * local_rate,
        )
    )
    return results
