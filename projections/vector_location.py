"""Where a lake's LanceDB vector store lives, and its small JSON files (aliases, checkpoints).

By default ``<lake>/vectors`` on this machine's disk. A lake whose parts live in object
storage (``lake.toml``: ``parts = "s3://bucket/prefix"``) keeps its vectors beside them,
under ``s3://bucket/prefix/vectors``, so every machine searches the same tables; LanceDB
reaches them with the same endpoint and credentials as the parts (read when the store is
opened, never stored). A JSON file is replaced atomically in both places: a rename on a
disk, a single PUT (whole or absent) in a bucket.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventlog.lake import read_config


@dataclass(frozen=True, slots=True)
class VectorLocation:
    """The vector store's URI, LanceDB's storage options, and its JSON files."""

    uri: str
    storage_options: dict[str, str] | None = None
    fs: Any = None  # a pyarrow S3 filesystem for object storage; None for a local directory
    base: str = ""  # bucket/prefix/vectors on ``fs``

    @property
    def local(self) -> bool:
        """Whether the store is a directory on this machine."""
        return self.fs is None

    def prepare(self) -> None:
        """Make the directory (a bucket needs nothing)."""
        if self.local:
            Path(self.uri).mkdir(parents=True, exist_ok=True)

    def exists(self, name: str) -> bool:
        """Whether a JSON file of the store exists."""
        if self.local:
            return (Path(self.uri) / name).exists()
        import pyarrow.fs as pafs

        return bool(self.fs.get_file_info(f"{self.base}/{name}").type != pafs.FileType.NotFound)

    def read_json(self, name: str) -> Any:
        """A JSON file's value, None when it does not exist."""
        try:
            if self.local:
                text = (Path(self.uri) / name).read_text(encoding="utf-8")
            else:
                with self.fs.open_input_stream(f"{self.base}/{name}") as fh:
                    text = fh.read().decode("utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text)

    def write_json(self, name: str, value: Any) -> None:
        """Replace a JSON file atomically (rename on a disk, one PUT in a bucket)."""
        text = json.dumps(value, indent=1, sort_keys=True)
        if not self.local:
            with self.fs.open_output_stream(f"{self.base}/{name}") as fh:
                fh.write(text.encode("utf-8"))
            return
        path = Path(self.uri) / name
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        """Delete a JSON file (missing is fine)."""
        if self.local:
            (Path(self.uri) / name).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(f"{self.base}/{name}")


def vector_location(lake: Path, env: dict[str, str] | None = None) -> VectorLocation:
    """The vector store of a lake: beside its parts when they are in object storage."""
    location = read_config(Path(lake)).object_location()
    if location is None:
        return VectorLocation(str(Path(lake) / "vectors"))
    from eventlog.s3 import connection, filesystem, lance_storage_options

    conn = connection(location, dict(os.environ) if env is None else env)
    base = f"{location.base}/vectors"
    return VectorLocation(f"s3://{base}", lance_storage_options(conn), filesystem(conn), base)
