"""The erasure cascade against a rebuild: forgetting some customers changes nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from eventlog.orders.log import forget_customer, open_order_log
from projections import plan, runner, vector_store, vectors
from projections.embeddings import HashingEmbedder
from projections.erasure import apply_erasures
from projections.warehouse import connect

EMBEDDER = HashingEmbedder(32)


def build(lake: Path) -> None:
    with open_order_log(lake, read_only=True) as log:
        runner.catch_up(log, None, None)
    vectors.catch_up_vectors(lake, embedder=EMBEDDER)


def snapshot(lake: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every warehouse view and vector table, rows sorted (what a reader can see)."""
    con = connect(lake, read_only=True)
    try:
        out = {
            p.view: sorted(map(tuple, con.execute(f"SELECT * FROM {p.view}").fetchall()), key=repr)
            for p in plan.PROJECTIONS
        }
    finally:
        con.close()
    store = vector_store.VectorStore(lake, create=False)
    for name, key in (
        (vector_store.EVENT_NARRATIVES, "position"),
        (vector_store.ORDER_STORIES, "order_id"),
    ):
        table = store.open_table(store.require(name).table).to_arrow()
        rows = zip(table.column(key).to_pylist(), table.column("text").to_pylist(), strict=True)
        out[name] = sorted(rows, key=repr)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from eventlog.orders.generate import generate

    lake = tmp_path_factory.mktemp("erasure") / "lake"
    generate(lake, orders=40, days=20, seed=11)
    build(lake)
    with open_order_log(lake, read_only=True) as log:
        customers = sorted(
            {
                json.loads(p)["customer_id"]
                for p in log.read_all(event_types=["OrderCreated"]).column("payload").to_pylist()
            }
        )
    return lake, customers


@pytest.mark.slow
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_forgetting_in_any_order_leaves_the_rest_as_a_rebuild_makes_it(
    built: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    template, customers = built
    chosen = data.draw(st.lists(st.sampled_from(customers), min_size=1, max_size=3, unique=True))
    apply_between = data.draw(st.booleans())
    lake = tmp_path_factory.mktemp("case") / "lake"
    shutil.copytree(template, lake)
    with open_order_log(lake) as log:
        for customer in chosen:
            forget_customer(log, customer)
            if apply_between:
                apply_erasures(log, lake, embedder=EMBEDDER)
        apply_erasures(log, lake, embedder=EMBEDDER)
    rebuilt = tmp_path_factory.mktemp("rebuilt") / "lake"
    shutil.copytree(lake, rebuilt)
    (rebuilt / "warehouse.duckdb").unlink()
    shutil.rmtree(rebuilt / "vectors")
    build(rebuilt)
    assert snapshot(lake) == snapshot(rebuilt)
