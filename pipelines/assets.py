"""Dagster assets: the event log (observed) and one asset per projection, named as the projection."""

import time
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from eventlog.orders.events import REGISTRY
from pipelines.instance import VECTOR_POOL, WAREHOUSE_POOL
from pipelines.resources import EmbedderResource, LakeResource, WarehouseResource
from projections import plan, runner, training, vector_store, vectors
from projections.projection import Projection
from projections.report import ProjectionReport

LOG_GROUP = "event_log"
EVENT_LOG = dg.AssetKey("event_log")


@dg.observable_source_asset(
    name="event_log",
    group_name=LOG_GROUP,
    description="The append-only event log of the lake (Parquet parts + SQLite tail); "
    "its data version is the head position.",
)
def event_log(lake: LakeResource) -> dg.ObserveResult:
    """Observe the log: the head position is the data version every projection derives from."""
    with lake.open_log() as log:
        info = log.info()
        last = log.events_at([info.head]) if info.head else []
    metadata: dict[str, Any] = {
        "head": info.head,
        "sealed_head": info.sealed_head,
        "tail_events": info.tail_events,
        "parts": info.parts,
        "streams": info.streams,
        "part_bytes": info.part_bytes,
    }
    if last:
        metadata["head_recorded_at"] = last[0].recorded_at.isoformat()
    return dg.ObserveResult(data_version=dg.DataVersion(str(info.head)), metadata=metadata)


WAREHOUSE_GROUP = "warehouse"
VECTORS_GROUP = "vectors"
TRAINING_GROUP = "training"
PREVIEW_ROWS = 5
COLUMN_SCHEMA = "dagster/column_schema"  # the key the UI reads for an asset's Columns
TRAINING_FILE = training.LAKE_TRAINING_FILE


class ProjectionConfig(dg.Config):  # type: ignore[misc]
    """Run config of a projection asset: catch up (default) or rebuild blue-green from 0."""

    rebuild: bool = Field(
        default=False, description="Rebuild from position 0 beside the live table, then switch."
    )


def _report_metadata(report: ProjectionReport, head: int) -> dict[str, Any]:
    """What every projection materialization records (rows, positions, lag, duration)."""
    return {
        "dagster/row_count": dg.MetadataValue.int(report.rows),
        "rows": report.rows,
        "head_read": head,
        "from_position": report.from_position,
        "to_position": report.to_position,
        "positions_applied": report.events_applied,
        "lag_events": report.lag_events,
        "lag_seconds": dg.MetadataValue.float(float(report.lag_seconds)),
        "duration_s": dg.MetadataValue.float(round(report.duration_s, 4)),
        "rebuilt": report.rebuilt,
        "projection_code_version": report.code_version,
        **{k: v for k, v in report.extra.items() if isinstance(v, str | int | float | bool)},
    }


def preview_markdown(table: pa.Table) -> dg.MetadataValue:
    """A small Markdown table of the first rows (long values shortened)."""
    names = table.column_names
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in table.to_pylist():
        cells = [str(row[n]).replace("|", "/").replace("\n", " ")[:60] for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


PERSONAL_COLUMNS = REGISTRY.personal_fields | {"text", "story"}
"""Columns a preview never shows: personal fields and the texts rendered from them. Dagster
keeps every materialization's metadata in its run storage, out of reach of erasure."""


def without_personal(table: pa.Table) -> pa.Table:
    """A preview table without its personal columns (see PERSONAL_COLUMNS)."""
    return table.drop_columns([c for c in table.column_names if c in PERSONAL_COLUMNS])


def column_schema(schema: pa.Schema) -> dict[str, Any]:
    """Dagster's table-schema metadata (the asset page's Columns) for an Arrow schema."""
    columns = [dg.TableColumn(name=f.name, type=str(f.type)) for f in schema]
    return {COLUMN_SCHEMA: dg.MetadataValue.table_schema(dg.TableSchema(columns=columns))}


def sorted_preview(table: pa.Table, keys: list[str]) -> pa.Table:
    """The first PREVIEW_ROWS rows in ``keys`` order (a stable, readable preview)."""
    return table.sort_by([(k, "ascending") for k in keys]).slice(0, PREVIEW_ROWS)


def lance_preview(dataset: Any, columns: list[str]) -> pa.Table:
    """The rows with the smallest keys (``columns[0]``), reading only the key column in full."""
    key = columns[0]
    smallest = sorted_preview(dataset.to_table(columns=[key]), [key]).column(key).to_pylist()
    if not smallest:
        return dataset.to_table(columns=columns, limit=0)  # type: ignore[no-any-return]
    listed = ", ".join(
        str(v) if isinstance(v, int) else vector_store.sql_string(str(v)) for v in smallest
    )
    rows = dataset.to_table(columns=columns, filter=f"{key} IN ({listed})")
    return sorted_preview(rows, [key])


def warehouse_asset(projection: Projection) -> dg.AssetsDefinition:
    """The asset of one DuckDB projection: catch up (or rebuild) it, record what happened."""

    @dg.asset(
        name=projection.name,
        group_name=WAREHOUSE_GROUP,
        description=f"{projection.view}: {projection.description}",
        code_version=projection.code_version,
        deps=[EVENT_LOG, *projection.depends_on],
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: ProjectionConfig,
        lake: LakeResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult[None]:
        with lake.open_log() as log, warehouse.connect() as con:
            head = log.head()
            run = runner.rebuild if config.rebuild else runner.catch_up
            [report] = [r for r in run(log, con, [projection.name]) if r.name == projection.name]
            preview = con.sql(
                PREVIEW_SQL.format(view=projection.view), params={"n": PREVIEW_ROWS}
            ).to_arrow_table()
        context.log.info(f"{projection.name}: {report.to_json()}")
        metadata = _report_metadata(report, head)
        metadata["preview"] = preview_markdown(without_personal(preview))
        metadata |= column_schema(preview.schema)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


def vector_asset(name: str, description: str) -> dg.AssetsDefinition:
    """The asset of one LanceDB projection: embed what the log gained (or rebuild it)."""

    @dg.asset(
        name=name,
        group_name=VECTORS_GROUP,
        description=description,
        code_version=vector_store.CODE_VERSION,
        deps=[EVENT_LOG],
        pool=VECTOR_POOL,
        kinds={"lancedb"},
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: ProjectionConfig,
        lake: LakeResource,
        embedder: EmbedderResource,
    ) -> dg.MaterializeResult[None]:
        with lake.open_log() as log:
            head = log.head()
            run = vectors.rebuild_vectors if config.rebuild else vectors.catch_up_vectors
            [report] = run(log, None, [name], embedder=embedder.get(lake.root()))
        store = vector_store.VectorStore(lake.root(), create=False)
        table = store.open_table(store.require(name).table)
        columns = PREVIEW_COLUMNS[name]
        preview = lance_preview(table.to_lance(), columns)
        context.log.info(f"{name}: {report.to_json()}")
        metadata = _report_metadata(report, head)
        metadata["preview"] = preview_markdown(without_personal(preview))
        metadata |= column_schema(table.schema)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


@dg.asset(
    name="training_set",
    group_name=TRAINING_GROUP,
    description="Point-in-time training set: one row per (order, weekly cutoff) with the "
    "features known at the cutoff, the story embedding and a cancel/refund label after it.",
    code_version="1",
    deps=[EVENT_LOG],
    kinds={"parquet"},
)
def training_set(
    context: dg.AssetExecutionContext, lake: LakeResource, embedder: EmbedderResource
) -> dg.MaterializeResult[None]:
    """Export the training set to <lake>/training/training_set.parquet (atomic replace)."""
    began = time.perf_counter()
    out = lake.root() / TRAINING_FILE
    with lake.open_log() as log:
        head = log.head()
        summary = training.export_training(
            lake.root(), out, embedder=embedder.get(lake.root()), log=log
        )
    preview = sorted_preview(pq.read_table(out, columns=TRAINING_PREVIEW), TRAINING_PREVIEW[:2])
    context.log.info(f"training_set: {summary.to_json()}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(summary.rows),
            "rows": summary.rows,
            "orders": summary.orders,
            "positives": summary.positives,
            "cutoffs": len(summary.cutoffs),
            "head_read": head,
            "model": summary.model,
            "path": dg.MetadataValue.path(str(out)),
            "duration_s": dg.MetadataValue.float(round(time.perf_counter() - began, 4)),
            "preview": preview_markdown(without_personal(preview)),
            **column_schema(pq.read_schema(out)),
        }
    )


PREVIEW_SQL = "SELECT * FROM {view} ORDER BY ALL LIMIT $n"  # sorted by each column in turn
PREVIEW_COLUMNS = {
    vector_store.EVENT_NARRATIVES: ["position", "order_id", "event_type"],  # no text: personal
    vector_store.ORDER_STORIES: ["order_id", "status", "last_position"],
}
TRAINING_PREVIEW = ["order_id", "cutoff", "label"]
VECTOR_DESCRIPTIONS = {
    vector_store.EVENT_NARRATIVES: "LanceDB event_narratives: one English sentence per event "
    "(customer, products, amounts resolved) with its sentence-transformers vector.",
    vector_store.ORDER_STORIES: "LanceDB order_stories: a short story per order, re-embedded "
    "whenever the order changes.",
}

WAREHOUSE_ASSETS = [warehouse_asset(p) for p in plan.PROJECTIONS]
VECTOR_ASSETS = [vector_asset(n, d) for n, d in VECTOR_DESCRIPTIONS.items()]
ALL_ASSETS: list[dg.AssetsDefinition | dg.SourceAsset] = [
    event_log,
    *WAREHOUSE_ASSETS,
    *VECTOR_ASSETS,
    training_set,
]
PROJECTION_NAMES = [p.name for p in plan.PROJECTIONS] + list(VECTOR_DESCRIPTIONS)
