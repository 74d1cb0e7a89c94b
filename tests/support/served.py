"""A small lake with hashing vectors and a projected warehouse, for the server tests."""

from __future__ import annotations

import shutil
from pathlib import Path

SERVED = {"orders": 24, "days": 35, "seed": 7}


def build_served_lake(path: Path, *, vectors: bool = True, warehouse: bool = False) -> Path:
    """Generate a lake; embed it with the 32-d hashing embedder; project the warehouse."""
    from eventlog.generate import generate
    from eventlog.log import EventLog
    from projections.embeddings import HashingEmbedder
    from projections.vectors import catch_up_vectors

    with EventLog.open(path) as log:
        generate(log, **SERVED)
    if vectors:
        catch_up_vectors(path, HashingEmbedder(32))
    if warehouse:
        from projections import runner

        with EventLog.open(path, create=False, seal_on_close=False) as log:
            runner.catch_up(log, None, None)
    return path


def copy_lake(template: Path, dest: Path) -> Path:
    """A private copy of a template lake."""
    shutil.copytree(template, dest)
    return dest
