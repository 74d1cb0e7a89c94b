"""A projection's definition, and the SQL vocabulary every analytics projection shares.

SQL placeholders: ``@TABLE@`` is the physical table being written (a name the runner
builds from the projection name, never user input); ``$lo``/``$hi`` are bound
positions; ``touched`` is a temporary table of the order ids with events in (lo, hi].
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


def sql_file(name: str) -> str:
    """The text of ``projections/sql/<name>``."""
    return resources.files("projections").joinpath("sql", name).read_text(encoding="utf-8")


FOLD_CTES = sql_file("fold.sql")


def fold_query(source: str, select: str) -> str:
    """``WITH e AS (source), <the fold CTEs> <select>``: compose constant SQL fragments."""
    return "WITH e AS (\n" + source + "\n),\n" + FOLD_CTES + "\n" + select


@dataclass(frozen=True, slots=True)
class Projection:
    """A name (= table, checkpoint key, asset name), a code version and its SQL.

    ``full_sql`` fills an empty table from every event up to ``$hi``; ``incremental_sql``
    brings a filled table from ``$lo`` to ``$hi`` (run in order, in one transaction).
    The source projection (``order_events``) has ``batch_sql`` instead: it inserts the
    Arrow ``batch`` registered by the runner.
    """

    name: str
    schema: str
    code_version: str
    description: str
    ddl: str
    full_sql: str = ""
    incremental_sql: tuple[str, ...] = ()
    batch_sql: str = ""
    depends_on: tuple[str, ...] = ()
    fold_tables: tuple[str, ...] = ()
    """The tables of the fold of the source its SQL reads (the fold of all orders for
    ``full_sql``, of the touched ones for ``incremental_sql``; ``projections.fold.Folded``):
    ``states`` (every state), ``last_states`` (each order's last, with its order-level
    columns), ``folded_lines`` and ``folded_payments`` (the cart lines and payments).
    A run folds once, for what its projections read."""
    reads_previous_states: bool = False
    """True when ``incremental_sql`` reads ``previous_states``: the last state of each
    touched order as of the projection's checkpoint (the runner folds it)."""

    @property
    def folds(self) -> bool:
        """True when the SQL reads the fold of the source."""
        return bool(self.fold_tables)

    @property
    def view(self) -> str:
        """The stable name readers query: ``schema.name``."""
        return f"{self.schema}.{self.name}"

    @property
    def is_source(self) -> bool:
        """True for the projection fed straight from the log."""
        return bool(self.batch_sql)


def insert_into(select: str) -> str:
    """The statement that inserts ``select``'s rows into the table being written."""
    return "INSERT INTO @TABLE@\n" + select


def with_events(source: str, select: str) -> str:
    """``WITH e AS (source) select``: a select over the event rows a source query picks."""
    return "WITH e AS (\n" + source + "\n)\n" + select


# The order histories a derived projection reads: all of them, or the touched orders'.
SOURCE_ALL = "SELECT * FROM analytics.order_events WHERE position <= $hi"
# ``touched_events``: the touched orders' histories up to $hi, built once per catch-up.
SOURCE_TOUCHED = "SELECT * FROM touched_events"
# ... and those histories as they stood at the projection's previous checkpoint ($lo).
SOURCE_PREVIOUS = "SELECT * FROM touched_events WHERE position <= $lo"
DELETE_TOUCHED_ORDERS = "DELETE FROM @TABLE@ WHERE order_id IN (SELECT order_id FROM touched_known)"
