"""Where a lake is and which tail it commits to: the lake's config file, ``lake.toml``.

A lake is a directory (``--lake``, else ``LEDGERLAKE_HOME``, else ``./lake``). By default
its tail is ``<lake>/tail.sqlite`` (one machine) and the lake has no config file. A lake
made with ``ledgerlake init --tail postgresql://...`` has ``<lake>/lake.toml``::

    tail = "postgresql://ledgerlake@db.internal:5432/orders"
    schema = "ledgerlake"

and every open of the lake (``EventLog.open``, ``open_read_only``, so every command, the
Dagster definitions and the notebooks) commits to that database. The URL never holds a
password (see ``eventlog.tails.postgres``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from eventlog.errors import IntegrityError, InvalidInputError, StorageError
from eventlog.parts import list_parts
from eventlog.tails import Tail
from eventlog.tails.sqlite import SqliteTail

TAIL_FILE = "tail.sqlite"
CONFIG_FILE = "lake.toml"
DEFAULT_SCHEMA = "ledgerlake"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class LakeConfig:
    """What ``lake.toml`` says: the tail's URL (None: the SQLite tail) and its schema."""

    tail: str | None = None
    schema: str = DEFAULT_SCHEMA


def default_lake(explicit: str | os.PathLike[str] | None, env: dict[str, str]) -> Path:
    """The lake path: explicit argument, else LEDGERLAKE_HOME, else ./lake."""
    if explicit:
        return Path(explicit)
    return Path(env.get("LEDGERLAKE_HOME") or "lake")


def check_schema(name: str) -> str:
    """A schema name: lower-case letters, digits and underscores, at most 63."""
    if not _SCHEMA_NAME.match(name):
        raise InvalidInputError(
            f"schema name {name!r} must be lower-case letters, digits and '_' (at most 63), "
            "starting with a letter or '_'"
        )
    return name


def read_config(root: Path) -> LakeConfig:
    """The lake's config (defaults when it has no ``lake.toml``)."""
    path = root / CONFIG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return LakeConfig()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"tail", "schema"}
    if unknown:
        raise InvalidInputError(f"{path} has unknown keys {sorted(unknown)}; expected tail, schema")
    tail = data.get("tail")
    schema = data.get("schema", DEFAULT_SCHEMA)
    if tail is not None and not isinstance(tail, str):
        raise InvalidInputError(f"{path}: tail must be a string URL")
    if not isinstance(schema, str):
        raise InvalidInputError(f"{path}: schema must be a string")
    if tail is not None:
        from eventlog.tails.postgres_sql import check_url

        check_url(tail)
    return LakeConfig(tail, check_schema(schema))


def write_config(root: Path, config: LakeConfig) -> Path:
    """Write ``lake.toml`` (fsynced); the URL is checked to hold no password first."""
    if config.tail is not None:
        from eventlog.tails.postgres_sql import check_url

        check_url(config.tail)
    check_schema(config.schema)
    lines = ["# The lake's tail: where commits happen (see docs/scale-out.md)."]
    if config.tail is not None:
        lines.append(f"tail = {json.dumps(config.tail)}")
    lines.append(f"schema = {json.dumps(config.schema)}")
    path = root / CONFIG_FILE
    tmp = root / (CONFIG_FILE + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from None
    return path


def has_tail(root: Path) -> bool:
    """Whether a lake directory names a tail (a lake exists there)."""
    return (root / TAIL_FILE).exists() or (root / CONFIG_FILE).exists()


def open_tail(root: Path, *, read_only: bool, check: bool) -> Tail:
    """Open the tail of the lake at ``root``, as its config says.

    With ``check``, a missing SQLite tail next to part files is refused: it may have held
    acknowledged events, and is never taken for a fresh one.
    """
    config = read_config(root)
    if config.tail is not None:
        from eventlog.tails.postgres import PostgresTail

        return PostgresTail(config.tail, config.schema, read_only=read_only)
    path = root / TAIL_FILE
    if check and not path.exists() and list_parts(root / "events"):
        raise IntegrityError(
            f"{path} is missing but {root / 'events'} holds part files; the tail may "
            "have held acknowledged events: restore it from a backup, or run "
            "'ledgerlake repair' to rebuild it from the parts"
        )
    return SqliteTail(path, read_only=read_only)


def init_lake(root: Path, *, tail: str | None = None, schema: str = DEFAULT_SCHEMA) -> Path:
    """Create a lake: its directory, and its tail (``tail.sqlite``, or ``lake.toml`` plus a
    schema in the PostgreSQL database ``tail`` names). Running it again is harmless; a
    lake whose tail is elsewhere is refused (a tail is never switched in place).
    """
    check_schema(schema)
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"the lake path {root} is a file; a lake is a directory")
    wanted = LakeConfig(tail, schema)
    current = read_config(root)
    if (root / CONFIG_FILE).exists() and current != wanted:
        raise InvalidInputError(
            f"{root} already commits to {_where(current)}; a lake's tail is not switched in place"
        )
    if tail is not None and (root / TAIL_FILE).exists():
        raise InvalidInputError(
            f"{root} already commits to its SQLite tail ({TAIL_FILE}); a lake's tail is not "
            "switched in place: make a new lake and append the events to it"
        )
    if list_parts(root / "events") and not has_tail(root):
        raise InvalidInputError(f"{root / 'events'} holds part files but the lake has no tail")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the lake directory {root}: {exc}") from None
    written = False
    if tail is not None and not (root / CONFIG_FILE).exists():
        write_config(root, wanted)
        written = True
    try:
        open_tail(root, read_only=False, check=True).close()
    except BaseException:
        if written:  # nothing half-made: the config goes with the tail that failed
            (root / CONFIG_FILE).unlink(missing_ok=True)
        raise
    try:
        (root / "events").mkdir(exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {root / 'events'}: {exc}") from None
    return root


def _where(config: LakeConfig) -> str:
    if config.tail is None:
        return f"its SQLite tail ({TAIL_FILE})"
    from eventlog.tails.postgres_sql import redacted

    return f"{redacted(config.tail)} (schema {config.schema})"
