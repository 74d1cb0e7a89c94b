"""What the asset pages of the Dagster UI show: column schemas and sorted previews."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from pipelines.assets import ALL_ASSETS, COLUMN_SCHEMA, PROJECTION_NAMES
from pipelines.definitions import resources_for
from projections import plan, vector_store
from projections.warehouse import connect

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materializations(
    lake: Path, instance: dg.DagsterInstance
) -> dict[str, dg.AssetMaterialization]:
    result = dg.materialize(
        ALL_ASSETS,
        instance=instance,
        resources=resources_for(str(lake), "hashing"),
        run_config=QUIET,
    )
    assert result.success
    return {
        e.materialization.asset_key.to_user_string(): e.materialization
        for e in result.get_asset_materialization_events()
    }


def preview_rows(mat: dg.AssetMaterialization) -> list[list[str]]:
    text = mat.metadata["preview"].value
    lines = text.splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_asset_pages_show_column_schemas_and_sorted_previews(
    small_lake: Path, instance: dg.DagsterInstance
) -> None:
    mats = materializations(small_lake, instance)
    assert set(mats) == {*PROJECTION_NAMES, "training_set"}
    schemas = {name: m.metadata[COLUMN_SCHEMA].value for name, m in mats.items()}
    assert all(schema is not None for schema in schemas.values()), schemas

    con = connect(small_lake, read_only=True)
    try:
        for p in plan.PROJECTIONS:
            described = con.execute(f"DESCRIBE {p.view}").fetchall()
            schema = schemas[p.name]
            assert schema is not None
            assert [c.name for c in schema.columns] == [row[0] for row in described], p.name
            # Sorted by every column in turn: the first column never decreases.
            first = con.execute(f"SELECT * FROM {p.view} ORDER BY ALL LIMIT 5").fetchall()
            assert [r[0] for r in preview_rows(mats[p.name])] == [str(row[0])[:60] for row in first]
    finally:
        con.close()

    orders = schemas["orders"]
    assert orders is not None
    types = {c.name: c.type for c in orders.columns}
    assert types["total_cents"] == "int64" and types["created_at"].startswith("timestamp")

    store = vector_store.VectorStore(small_lake, create=False)
    for name, key in (
        (vector_store.EVENT_NARRATIVES, "position"),
        (vector_store.ORDER_STORIES, "order_id"),
    ):
        table = store.open_table(store.require(name).table)
        schema = schemas[name]
        assert schema is not None
        assert [c.name for c in schema.columns] == table.schema.names
        assert any(c.name == "vector" and "fixed_size_list" in c.type for c in schema.columns)
        keys = sorted(table.to_arrow().column(key).to_pylist())[:5]
        assert [r[0] for r in preview_rows(mats[name])] == [str(k) for k in keys]

    out = small_lake / "training" / "training_set.parquet"
    training = schemas["training_set"]
    assert training is not None
    assert [c.name for c in training.columns] == pq.read_schema(out).names
    rows = preview_rows(mats["training_set"])
    assert rows == sorted(rows, key=lambda r: (r[0], r[1])) and len(rows) == 5
