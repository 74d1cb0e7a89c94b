"""A bounded load test on loopback: 4 clients for a few seconds against `ledgerlake serve`.

Each client mixes searches, state reads and commands; the test prints throughput and
p99 and fails on any error answer or a p99 beyond a generous bound (a shared 2-core CI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import RunningServer, build_served_lake

pytestmark = pytest.mark.slow

CLIENTS = 4
SECONDS = 5.0
MAX_REQUESTS = 4_000  # per client: the test is bounded in count as well as in time
P99_BOUND_S = 2.0
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    lake = build_served_lake(tmp_path_factory.mktemp("load") / "lake")
    ARTIFACTS.mkdir(exist_ok=True)
    running = RunningServer(lake, ARTIFACTS / "serve-load.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _client_loop(url: str, n: int, out: list[tuple[str, float, int]]) -> None:
    order = f"ord-load-{n}"
    create = {
        "command": "CreateOrder",
        "order_id": order,
        "customer_id": f"c-load-{n}",
        "customer_name": "Load Tester",
        "customer_email": "load@example.com",
        "currency": "EUR",
        "channel": "web",
    }
    requests: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("search", "/api/search", {"q": "parcel arrived damaged", "k": 5}, None),
        ("state", f"/api/orders/{order}/state", None, None),
        ("command", "/api/commands", None, None),
    ]
    deadline = time.monotonic() + SECONDS
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/api/commands", json=create).status_code == 201
        i = 0
        while time.monotonic() < deadline and i < MAX_REQUESTS:
            kind, path, params, _ = requests[i % len(requests)]
            note = {
                "command": "AddCustomerNote",
                "order_id": order,
                "author": "support",
                "note": f"note {i}",
            }
            start = time.perf_counter()
            if kind == "command":
                response = client.post(path, json=note)
            else:
                response = client.get(path, params=params)
            out.append((kind, time.perf_counter() - start, response.status_code))
            i += 1


def test_four_clients_on_loopback(server: RunningServer) -> None:
    results: list[list[tuple[str, float, int]]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=_client_loop, args=(server.url, n, results[n]))
        for n in range(CLIENTS)
    ]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    elapsed = time.perf_counter() - began
    samples = [s for r in results for s in r]
    assert all(len(r) > 0 for r in results), "a client made no request"
    bad = [s for s in samples if s[2] >= 300]
    assert not bad, f"{len(bad)} error answers, e.g. {bad[:3]}"
    latencies = sorted(s[1] for s in samples)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    p50 = latencies[len(latencies) // 2]
    throughput = len(samples) / elapsed
    print(
        f"\nload: {CLIENTS} clients x {SECONDS:.0f}s, {len(samples)} requests, "
        f"{throughput:.0f} req/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert p99 < P99_BOUND_S
    notes = httpx.get(f"{server.url}/api/orders/ord-load-0/state").json()["state"]["note_count"]
    assert notes == sum(1 for s in results[0] if s[0] == "command")
