"""The main job (``ledgerlake demo`` / ``make demo``): generate, materialize through Dagster, tour.

The runs go into the lake's own Dagster instance (``<lake>/.dagster``), so ``ledgerlake ui``
afterwards shows every asset materialized and every check evaluated.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventlog.errors import InvalidInputError
from eventlog.orders.log import open_order_log
from pipelines.demo_progress import check_rows, checks_table, run_with_progress

MARKER = ".ledgerlake-demo.json"
SEARCH_QUERY = "the parcel arrived damaged and the customer asked for their money back"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did: whether every step and check passed, and how long each took."""

    ok: bool
    events: int
    materialized: list[str]
    checks_passed: int
    checks_failed: list[str]
    seconds: dict[str, float]
    parts: int = 0


def prepare_lake(lake: Path, params: dict[str, Any]) -> bool:
    """Make ``lake`` a demo lake for ``params``; True when events must be generated.

    A lake the demo made earlier with other parameters is replaced; a lake the demo did
    not make is never touched (InvalidInputError, exit 2).
    """
    marker = lake / MARKER
    if marker.exists():
        if json.loads(marker.read_text()) == params:
            return False
        shutil.rmtree(lake)
    elif lake.exists() and any(lake.iterdir()):
        raise InvalidInputError(
            f"{lake} holds a lake the demo did not create; choose an empty directory with "
            "'ledgerlake --lake PATH demo' (the demo never overwrites your data)"
        )
    lake.mkdir(parents=True, exist_ok=True)
    return True


def generate_history(lake: Path, params: dict[str, Any], console: Console) -> int:
    """Generate the order history with a progress bar; returns the log head."""
    from eventlog.orders.generate import generate

    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"generating {params['orders']} orders", total=1.0)

        def step(fraction: float, events: int) -> None:
            bar.update(task, completed=fraction, description=f"generating: {events} events")

        summary = generate(lake, progress=step, **params)
    (lake / MARKER).write_text(json.dumps(params))
    return summary.head


def compact_log(lake: Path) -> tuple[int, int]:
    """Compact the log as the nightly job does (parts merged by day, stream files written);
    returns (events, live parts)."""
    with open_order_log(lake, seal_on_close=False) as log:
        log.compact()
        return log.head(), len(log.parts())


def materialize_everything(
    lake: Path, embedder: str, console: Console
) -> dg.ExecuteInProcessResult:
    """Run the catch_up job (every asset and check) in-process on the lake's instance."""
    from pipelines.definitions import build_definitions
    from pipelines.instance import lake_instance

    defs = build_definitions(lake=str(lake), embedder_kind=embedder)
    job = defs.resolve_job_def("catch_up")
    graph = defs.resolve_asset_graph()
    keys = job.asset_layer.executable_asset_keys
    total = sum(1 for key in keys if graph.get(key).is_materializable)  # not the observed log
    console.print("materializing every asset through Dagster (job catch_up):")
    with lake_instance(lake) as instance:
        return run_with_progress(job, instance, QUIET_LOGS, console, total)


def summarize_run(
    result: dg.ExecuteInProcessResult, console: Console
) -> tuple[list[str], int, list[str]]:
    """Print the assets and the checks as tables; return (assets, checks passed, checks failed)."""
    table = Table("asset", "rows", "positions applied", "lag (events)", "seconds")
    materialized = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: v.value for k, v in mat.metadata.items()}
        name = mat.asset_key.to_user_string()
        materialized.append(name)
        table.add_row(
            name,
            str(meta.get("rows", "")),
            str(meta.get("positions_applied", "")),
            str(meta.get("lag_events", "")),
            f"{float(str(meta.get('duration_s', 0.0))):.2f}",
        )
    console.print(table)
    checks = check_rows(result)
    console.print(checks_table(checks))
    failed = [f"{asset}:{check}" for asset, check, ok, _ in checks if not ok]
    return materialized, len(checks) - len(failed), failed


def tour(lake: Path, embedder: str, console: Console) -> None:
    """Row counts, one time-travel answer, one semantic search answer, and where to go next."""
    from pipelines.resources import make_embedder
    from projections import search, temporal
    from projections.plan import PROJECTIONS
    from projections.warehouse import connect

    with connect(lake, read_only=True) as con:
        counts = Table("table", "rows", title="The warehouse")
        for p in PROJECTIONS:
            row = con.execute(COUNT_SQL.format(view=p.view)).fetchone()
            counts.add_row(p.view, str(row[0] if row else 0))
        console.print(counts)
        pick = con.execute(TIME_TRAVEL_PICK).fetchone()
        if pick:
            order_id, middle, states = pick
            then = temporal.state_as_of(con, order_id, middle)
            now = temporal.state_as_of(con, order_id, "9999-01-01T00:00:00+00:00")
            console.print(
                f"[bold]Time travel[/bold]: order {order_id} went through {states} states. "
                f"As of {middle.isoformat()} it was [cyan]{then and then['status']}[/cyan] with "
                f"{then and then['item_count']} items; now it is [cyan]{now and now['status']}[/cyan]"
                f" with {now and now['item_count']} items.\n"
                f"  in SQL: {TIME_TRAVEL_HINT.format(at=middle.isoformat())}"
            )
    hits = search.search(lake, SEARCH_QUERY, k=3, embedder=make_embedder(embedder, lake=lake))
    console.print(f"[bold]Semantic search[/bold]: {SEARCH_QUERY!r}")
    console.print(f"  score = {search.SCORE_MEANING['vector']}", highlight=False)
    for hit in hits:
        console.print(f"  {hit.score:.3f}  {hit.order_id}  {hit.text}")
    console.print(
        "\n[bold]Next[/bold]:\n"
        f"  ledgerlake --lake {lake} ui     (or: make ui)  the Dagster UI on http://127.0.0.1:3000:\n"
        "      every asset materialized, every check evaluated; rebuild with the rebuild_all job\n"
        "  make notebooks   (jupyter lab notebooks/)  01 SQL tour, 02 time travel,\n"
        f"      03 semantic search, 04 outcome model (they read LEDGERLAKE_HOME={lake}, else ./lake)\n"
        f"  ledgerlake --lake {lake} search 'late delivery'   semantic search from the shell\n"
        f"  ledgerlake --lake {lake} serve   (or: make serve)  then open http://127.0.0.1:8765/\n"
        "      the search page: type a question, open an order, slide through its history"
    )


def run_demo(
    lake: Path, *, orders: int, days: int, seed: int, embedder: str, console: Console | None = None
) -> DemoResult:
    """Generate a lake, materialize every asset and check through Dagster, print the tour."""
    console = console or Console()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    params = {"orders": orders, "days": days, "seed": seed}
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    console.print(f"[bold]LedgerLake demo[/bold] in {lake} ({orders} orders over {days} days)")
    if prepare_lake(lake, params):
        generate_history(lake, params, console)
    events, parts = compact_log(lake)
    seconds["generate"] = time.perf_counter() - began
    per_million = parts * 1_000_000 / max(events, 1)
    console.print(
        f"event log: {events} events in {parts} parts, one per recorded day "
        f"({per_million:,.0f} parts per million events), compacted ({seconds['generate']:.1f}s)"
    )
    step = time.perf_counter()
    result = materialize_everything(lake, embedder, console)
    seconds["materialize"] = time.perf_counter() - step
    materialized, passed, failed = summarize_run(result, console)
    console.print(
        f"Dagster run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in "
        f"{seconds['materialize']:.1f}s; {passed} checks passed"
        + (f", [red]{len(failed)} failed: {', '.join(failed)}[/red]" if failed else "")
    )
    ok = result.success and not failed
    if ok:
        step = time.perf_counter()
        tour(lake, embedder, console)
        seconds["tour"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - began
    console.print(f"demo {'finished' if ok else 'FAILED'} in {seconds['total']:.1f}s")
    return DemoResult(ok, events, materialized, passed, failed, seconds, parts)


COUNT_SQL = "SELECT count(*) FROM {view}"
TIME_TRAVEL_HINT = "SELECT * FROM temporal.orders_as_of(TIMESTAMPTZ '{at}')"
# An order with several states; the valid_from of its middle state is the time we travel to.
TIME_TRAVEL_PICK = """
SELECT order_id, valid_from, n FROM (
    SELECT order_id, valid_from, count(*) OVER (PARTITION BY order_id) AS n,
           row_number() OVER (PARTITION BY order_id ORDER BY valid_from) AS i
    FROM temporal.order_states
)
WHERE i = n // 2 AND n >= 5
ORDER BY n DESC, order_id
LIMIT 1
"""
