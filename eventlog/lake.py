"""Where a lake is and which tail it commits to.

A lake is a directory (``--lake``, else ``LEDGERLAKE_HOME``, else ``./lake``). By default
its tail is ``<lake>/tail.sqlite`` (one machine).
"""

from __future__ import annotations

import os
from pathlib import Path

from eventlog.errors import IntegrityError
from eventlog.parts import list_parts
from eventlog.tails import Tail
from eventlog.tails.sqlite import SqliteTail

TAIL_FILE = "tail.sqlite"


def default_lake(explicit: str | os.PathLike[str] | None, env: dict[str, str]) -> Path:
    """The lake path: explicit argument, else LEDGERLAKE_HOME, else ./lake."""
    if explicit:
        return Path(explicit)
    return Path(env.get("LEDGERLAKE_HOME") or "lake")


def has_tail(root: Path) -> bool:
    """Whether a lake directory names a tail (a lake exists there)."""
    return (root / TAIL_FILE).exists()


def open_tail(root: Path, *, read_only: bool, check: bool) -> Tail:
    """Open the tail of the lake at ``root``.

    With ``check``, a missing SQLite tail next to part files is refused: it may have held
    acknowledged events, and is never taken for a fresh one.
    """
    path = root / TAIL_FILE
    if check and not path.exists() and list_parts(root / "events"):
        raise IntegrityError(
            f"{path} is missing but {root / 'events'} holds part files; the tail may "
            "have held acknowledged events: restore it from a backup, or run "
            "'ledgerlake repair' to rebuild it from the parts"
        )
    return SqliteTail(path, read_only=read_only)
