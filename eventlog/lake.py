"""Where a lake is and which tail it commits to: the lake's config file, ``lake.toml``.

A lake is a directory (``--lake``, else ``LEDGERLAKE_HOME``, else ``./lake``). By default
its tail is ``<lake>/tail.sqlite`` (one machine) and the lake has no config file. A lake
made with ``ledgerlake init --tail postgresql://...`` has ``<lake>/lake.toml``::

    tail = "postgresql://ledgerlake@db.internal:5432/orders"
    schema = "ledgerlake"

and every open of the lake (``EventLog.open``, ``open_read_only``, so every command, the
Dagster definitions and the notebooks) commits to that database. The URL never holds a
password (see ``eventlog.tails.postgres``).

A lake made with ``--parts s3://bucket/prefix`` also says where its parts live (and,
optionally, the endpoint and region of the object store; never its credentials)::

    parts = "s3://lake-bucket/orders"
    parts_endpoint = "https://minio.internal:9000"
    parts_region = "eu-west-1"
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eventlog.errors import IntegrityError, InvalidInputError, StorageError
from eventlog.parts import list_parts
from eventlog.tails import Tail
from eventlog.tails.sqlite import SqliteTail

if TYPE_CHECKING:
    from eventlog.s3 import ObjectLocation
    from eventlog.storage import PartStore

TAIL_FILE = "tail.sqlite"
CONFIG_FILE = "lake.toml"
DEFAULT_SCHEMA = "ledgerlake"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class LakeConfig:
    """What ``lake.toml`` says: the tail's URL (None: the SQLite tail), its schema, and
    where the parts live (None: ``<lake>/events``)."""

    tail: str | None = None
    schema: str = DEFAULT_SCHEMA
    parts: str | None = None
    parts_endpoint: str | None = None
    parts_region: str | None = None

    def object_location(self) -> ObjectLocation | None:
        """The object-storage location of the parts, None for a local directory."""
        if self.parts is None:
            return None
        from eventlog.s3 import ObjectLocation

        return ObjectLocation(self.parts, self.parts_endpoint, self.parts_region)


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
    unknown = set(data) - set(_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{path} has unknown keys {sorted(unknown)}; expected {', '.join(_KEYS)}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise InvalidInputError(f"{path}: {key} must be a string")
    config = LakeConfig(
        data.get("tail"),
        data.get("schema", DEFAULT_SCHEMA),
        data.get("parts"),
        data.get("parts_endpoint"),
        data.get("parts_region"),
    )
    check_config(config)
    return config


_KEYS = ("tail", "schema", "parts", "parts_endpoint", "parts_region")


def check_config(config: LakeConfig) -> None:
    """Refuse a config that holds a password or a malformed URL (exit 2)."""
    if config.tail is not None:
        from eventlog.tails.postgres_sql import check_url

        check_url(config.tail)
    check_schema(config.schema)
    if config.parts is None and (config.parts_endpoint or config.parts_region):
        raise InvalidInputError("parts_endpoint and parts_region need parts = 's3://...'")
    if config.parts is not None:
        from eventlog.s3 import check_endpoint, parse_parts_url

        parse_parts_url(config.parts)
        if config.parts_endpoint:
            check_endpoint(config.parts_endpoint)


def write_config(root: Path, config: LakeConfig) -> Path:
    """Write ``lake.toml`` (fsynced); the URLs are checked to hold no password first."""
    check_config(config)
    lines = ["# The lake's tail and parts: where commits happen (see docs/scale-out.md)."]
    for key in _KEYS:
        value = getattr(config, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
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


def open_parts(root: Path, config: LakeConfig, env: Mapping[str, str] | None = None) -> PartStore:
    """The part storage the config names: ``<lake>/events``, or an object store reached
    with the AWS variables of ``env`` (default: this process's environment, read now)."""
    from eventlog.storage import PartStore

    location = config.object_location()
    if location is None:
        return PartStore(root / "events")
    from eventlog.objectstore import ObjectPartStore
    from eventlog.s3 import connection

    return ObjectPartStore(location, connection(location, os.environ if env is None else env))


def init_lake(
    root: Path,
    *,
    tail: str | None = None,
    schema: str = DEFAULT_SCHEMA,
    parts: str | None = None,
    parts_endpoint: str | None = None,
    parts_region: str | None = None,
) -> Path:
    """Create a lake: its directory, and its tail (``tail.sqlite``, or ``lake.toml`` plus a
    schema in the PostgreSQL database ``tail`` names); with ``parts``, its parts live in
    that bucket (which must exist). Running it again is harmless; a lake whose tail or
    parts are elsewhere is refused (neither is switched in place).
    """
    check_schema(schema)
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"the lake path {root} is a file; a lake is a directory")
    wanted = LakeConfig(tail, schema, parts, parts_endpoint, parts_region)
    check_config(wanted)
    current = read_config(root)
    if (root / CONFIG_FILE).exists() and current != wanted:
        raise InvalidInputError(
            f"{root} already commits to {_where(current)}; a lake's tail is not switched in place"
        )
    configured = (root / CONFIG_FILE).exists()
    if (tail is not None or parts is not None) and (root / TAIL_FILE).exists() and not configured:
        raise InvalidInputError(
            f"{root} already commits to its SQLite tail ({TAIL_FILE}); a lake's tail is not "
            "switched in place: make a new lake and append the events to it"
        )
    if list_parts(root / "events") and not has_tail(root):
        raise InvalidInputError(f"{root / 'events'} holds part files but the lake has no tail")
    if parts is not None:
        from eventlog.objectstore import ObjectPartStore

        store = open_parts(root, wanted)
        assert isinstance(store, ObjectPartStore)
        store.check_bucket()  # an unreachable store or a missing bucket: exit 5, nothing written
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the lake directory {root}: {exc}") from None
    written = False
    if (tail is not None or parts is not None) and not (root / CONFIG_FILE).exists():
        write_config(root, wanted)
        written = True
    try:
        open_tail(root, read_only=False, check=True).close()
    except BaseException:
        if written:  # nothing half-made: the config goes with the tail that failed
            (root / CONFIG_FILE).unlink(missing_ok=True)
        raise
    try:
        if parts is None:
            (root / "events").mkdir(exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {root / 'events'}: {exc}") from None
    return root


def _where(config: LakeConfig) -> str:
    parts = f", parts in {config.parts}" if config.parts else ""
    if config.tail is None:
        return f"its SQLite tail ({TAIL_FILE}){parts}"
    from eventlog.tails.postgres_sql import redacted

    return f"{redacted(config.tail)} (schema {config.schema}){parts}"
