"""Dagster resources: the lake, its DuckDB warehouse, its LanceDB vector store, the embedder.

Every field is plain configuration (strings); `definitions.py` fills the lake path and the
embedder kind from ``dg.EnvVar`` so nothing is read from the environment at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from eventlog.log import EventLog
from eventlog.orders.log import open_order_log

if TYPE_CHECKING:
    import duckdb

    from projections.embeddings import Embedder
    from projections.vector_store import VectorStore

EMBEDDER_KINDS = ("sentence-transformers", "hashing")


class LakeResource(dg.ConfigurableResource):  # type: ignore[misc,type-arg]
    """The lake directory: the event log and every projection derived from it live under it."""

    path: str = Field(default="lake", description="Lake directory (LEDGERLAKE_HOME).")

    def root(self) -> Path:
        """The lake directory as a path."""
        return Path(self.path)

    @contextmanager
    def open_log(self) -> Iterator[EventLog]:
        """Open the lake's event log read-only (changes no file); fails when there is no lake."""
        log = open_order_log(self.root(), read_only=True)
        try:
            yield log
        finally:
            log.close()

    @contextmanager
    def open_writer(self) -> Iterator[EventLog]:
        """Open the lake's event log to maintain it (compaction); fails when there is no lake."""
        log = open_order_log(self.root(), create=False, seal_on_close=False)
        try:
            yield log
        finally:
            log.close()


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[misc,type-arg]
    """The DuckDB warehouse of the lake, ``<lake>/warehouse.duckdb`` (analytics, temporal, meta)."""

    lake: LakeResource
    lock_timeout_s: float = Field(
        default=120.0, description="How long to wait for another process's lock on the file."
    )

    def location(self) -> Path:
        """Where the warehouse file lives."""
        from projections.warehouse import warehouse_path

        return warehouse_path(self.lake.root())

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A UTC DuckDB connection to the warehouse, closed afterwards (waits for locks)."""
        from projections.warehouse import connect

        con = connect(self.lake.root(), read_only=read_only, timeout_s=self.lock_timeout_s)
        try:
            yield con
        finally:
            con.close()


class VectorStoreResource(dg.ConfigurableResource):  # type: ignore[misc,type-arg]
    """The LanceDB database of the lake, ``<lake>/vectors`` (event narratives, order stories)."""

    lake: LakeResource

    def location(self) -> Path | str:
        """Where the LanceDB database lives (a directory, or an s3:// URI beside the parts)."""
        from projections.vector_location import vector_location

        location = vector_location(self.lake.root())
        return Path(location.uri) if location.local else location.uri

    def store(self, *, create: bool = True) -> VectorStore:
        """The vector store with its aliases and checkpoints."""
        from projections.vector_store import VectorStore

        return VectorStore(self.lake.root(), create=create)


class EmbedderResource(dg.ConfigurableResource):  # type: ignore[misc,type-arg]
    """The sentence embedder: the real sentence-transformers model, or hashing for fast tests."""

    kind: str = Field(
        default="sentence-transformers",
        description="'sentence-transformers' (the model on local disk) or 'hashing' (fast tests).",
    )
    model_path: str | None = Field(
        default=None, description="Model directory; default the bundled all-MiniLM-L6-v2."
    )
    _embedder: Any = PrivateAttr(default=None)

    def get(self, lake: Path | None = None) -> Embedder:
        """The embedder, loaded once per resource instance.

        Given the lake, the real model runs on ONNX Runtime on a CPU (exported once into
        ``<lake>/models``) and on PyTorch on a GPU.
        """
        if self._embedder is None:
            self._embedder = make_embedder(self.kind, self.model_path, lake=lake)
        return self._embedder  # type: ignore[no-any-return]


def make_embedder(
    kind: str, model_path: str | None = None, *, lake: Path | None = None
) -> Embedder:
    """Build the embedder of the given kind; a clear error for an unknown kind."""
    from projections import embeddings

    if kind == "sentence-transformers" and lake is not None:
        from projections.onnx_embedder import model_cache_dir

        return embeddings.default_embedder(model_path or None, cache_dir=model_cache_dir(lake))
    if kind == "sentence-transformers":
        return embeddings.SentenceTransformerEmbedder(model_path=model_path or None)
    if kind == "hashing":
        return embeddings.HashingEmbedder()
    raise ValueError(f"unknown embedder kind {kind!r}; expected one of {', '.join(EMBEDDER_KINDS)}")
