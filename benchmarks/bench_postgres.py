"""The log on a PostgreSQL tail, beside the ``eventsourcing`` library's PostgreSQL recorder.

One throwaway PostgreSQL server (``benchmarks.pg_server``: initdb on loopback, default
durability, ``synchronous_commit`` on) is started for the run and removed after it:

* single command: ``handle`` on the PostgreSQL tail vs an ``eventsourcing`` Application
  with its PostgreSQL recorder doing get, mutate, save on the same server, the same two
  commands interleaved (the shape of ``bench_log``'s SQLite row);
* aggregate command throughput with 1, 2 and 4 writer processes, each with its own lake
  handle on the same lake (shared: the server and the parts directory), each handling
  ``CreateOrder`` then three ``AddItem`` on orders of its own for a fixed time; the
  figure is commands/s of all writers together, and the target is 4 writers >= 1.5x one;
* beside it, the peer's recorder in the same processes (4 vs 1; it serializes writers
  with a table lock), and the floor under both: the processes running only the shape of
  one commit (lock the counters row, read, insert, update, COMMIT), 4 vs 1.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_log import (
    _add,
    _create,
    _peer_classes,
    interleaved_latencies,
    latency_results,
)
from benchmarks.common import Result
from benchmarks.pg_server import PostgresServer, start_server, stop_server
from eventlog.handler import CommandHandler
from eventlog.lake import LakeConfig, write_config
from eventlog.orders import ORDER_DECIDER
from eventlog.orders.log import open_order_log

AREA = "log on PostgreSQL"
WRITERS = (1, 2, 4)


def _lake(server: PostgresServer, path: Path) -> Path:
    """A lake directory whose tail is a fresh schema of the server."""
    path.mkdir(parents=True)
    write_config(path, LakeConfig(server.url(), f"bench_{uuid.uuid4().hex[:8]}"))
    return path


def _peer_app(server: PostgresServer) -> Any:
    return _peer_app_on(str(server.port))


def _peer_app_on(port: str, *, create_tables: bool = True) -> Any:
    """The peer's application on the server; writer processes pass ``create_tables=False``
    (the parent made the tables: concurrent CREATE TABLE IF NOT EXISTS statements race in
    PostgreSQL's catalog and fail with "tuple concurrently updated")."""
    orders_cls, order_cls = _peer_classes()
    env = {
        "CREATE_TABLE": "true" if create_tables else "false",
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "postgres",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": port,
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",  # the throwaway server trusts loopback
    }
    return orders_cls(env=env), order_cls


# ----------------------------------------------------------------- single command
def _single_command(server: PostgresServer, workdir: Path, n: int) -> list[Result]:
    """Ours and the peer's commands interleaved, so both see the same machine load."""
    app, order_cls = _peer_app(server)
    log = open_order_log(_lake(server, workdir / "single"))
    ours, peer = interleaved_latencies(log, app, order_cls, n)
    return latency_results(ours, peer, "eventsourcing PostgreSQL", AREA)


# ----------------------------------------------------------------- writer processes
def _writer(lake: str, worker: int, go: Any, start_at: Any, seconds: float, out: Any) -> None:
    """One writer process: its own lake handle, commands on its own orders until time is up."""
    log = open_order_log(Path(lake), seal_on_close=False)
    handler = CommandHandler(log, ORDER_DECIDER)
    out.put(("ready", worker, 0))
    go.wait()
    deadline = start_at.value + seconds
    done = i = 0
    while True:
        order = worker * 10_000_000 + i
        for command in (_create(order), *(_add(order, k) for k in range(3))):
            handler.handle(command.order_id, command)
            if time.time() >= deadline:
                break
            done += 1
        else:
            i += 1
            continue
        break
    log.close()
    out.put(("done", worker, done))


def _floor_writer(url: str, worker: int, go: Any, start_at: Any, seconds: float, out: Any) -> None:
    """The floor: one commit's shape with no LedgerLake code (lock the counters row, read,
    insert a row, update the counters, COMMIT), pipelined as the tail sends it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        out.put(("ready", worker, 0))
        go.wait()
        deadline = start_at.value + seconds
        done = 0
        while time.time() < deadline:
            with conn.pipeline():
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                conn.execute("SELECT head FROM floor_counters WHERE id = 1 FOR UPDATE")
            conn.execute("SELECT head FROM floor_counters WHERE id = 1").fetchone()
            with conn.pipeline():
                conn.execute("INSERT INTO floor_rows VALUES (%s, %s)", (worker, done))
                conn.execute("UPDATE floor_counters SET head = head + 1 WHERE id = 1")
                conn.execute("COMMIT")
            done += 1
        out.put(("done", worker, done))


def _peer_writer(port: str, worker: int, go: Any, start_at: Any, seconds: float, out: Any) -> None:
    """The peer's writer process: the same commands through its PostgreSQL recorder."""
    app, order_cls = _peer_app_on(port, create_tables=False)
    out.put(("ready", worker, 0))
    go.wait()
    deadline = start_at.value + seconds
    done = 0
    while time.time() < deadline:
        order = order_cls(f"c-{worker}", "Ada Lovelace", "ada@example.com", "EUR", "web")
        app.save(order)
        done += 1
        for k in range(3):
            if time.time() >= deadline:
                break
            loaded = app.repository.get(order.id)
            loaded.add_item(f"sku-{k}", f"Product {k}", 1, 1299)
            app.save(loaded)
            done += 1
    app.close()
    out.put(("done", worker, done))


def _processes(target: Any, arg: str, writers: int, seconds: float) -> float:
    """Operations/s of ``writers`` processes running ``target(arg, ...)`` together."""
    ctx = multiprocessing.get_context("spawn")
    go, start_at, out = ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(arg, w, go, start_at, seconds, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            kind, _w, _n = out.get(timeout=120)
            assert kind == "ready"
        start_at.value = time.time()
        go.set()
        total = sum(out.get(timeout=seconds + 120)[2] for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError(f"a writer process failed: {[p.exitcode for p in procs]}")
    return total / seconds


def _throughput(server: PostgresServer, workdir: Path, writers: int, seconds: float) -> float:
    """Commands/s of ``writers`` processes together on one fresh lake."""
    lake = _lake(server, workdir / f"writers-{writers}")
    open_order_log(lake).close()  # create the schema before the writers race for it
    return _processes(_writer, str(lake), writers, seconds)


def _floor(server: PostgresServer, writers: int, seconds: float) -> float:
    """Commits/s of the floor transaction (``_floor_writer``) in ``writers`` processes."""
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_counters, floor_rows")
        conn.execute("CREATE TABLE floor_counters (id INTEGER PRIMARY KEY, head BIGINT)")
        conn.execute("INSERT INTO floor_counters VALUES (1, 0)")
        conn.execute("CREATE TABLE floor_rows (worker INTEGER, n BIGINT)")
    return _processes(_floor_writer, server.url(), writers, seconds)


def run(workdir: Path, quick: bool) -> list[Result]:
    """Start a throwaway PostgreSQL server, measure, stop it; smaller sizes with ``quick``."""
    seconds = 3.0 if quick else 8.0
    server = start_server()
    try:
        results = _single_command(server, workdir, 400 if quick else 2000)
        rates = {w: _throughput(server, workdir, w, seconds) for w in WRITERS}
        _peer_app(server)[0].close()  # the peer's tables, before its writers start
        peer = {w: _processes(_peer_writer, str(server.port), w, seconds / 2) for w in (1, 4)}
        floor = {w: _floor(server, w, seconds / 2) for w in (1, 4)}
    finally:
        stop_server(server)
    one = rates[1]
    for w in WRITERS:
        results.append(
            Result(
                AREA,
                f"commands/s, {w} writer process{'es' if w > 1 else ''} ({seconds:g} s)",
                rates[w],
                "cmd/s",
                "1 writer process" if w > 1 else None,
                one if w > 1 else None,
                ">= 1.5x one writer" if w == 4 else None,
                rates[w] >= 1.5 * one if w == 4 else None,
            )
        )
    results.append(
        Result(
            AREA,
            "eventsourcing PostgreSQL recorder: commands/s, 4 writer processes",
            peer[4],
            "cmd/s",
            "the same, 1 process",
            peer[1],
        )
    )
    results.append(
        Result(
            AREA,
            "floor: lock-then-commit transactions/s, 4 processes (no LedgerLake code)",
            floor[4],
            "tx/s",
            "the same, 1 process",
            floor[1],
        )
    )
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps([r.to_json() for r in run(Path(scratch), True)], indent=2))
