"""The analytics.* projections: typed events, orders, lines, payments, daily sales, customers.

Every table is derived from ``analytics.order_events`` (one typed row per order event),
which is derived from the log. The SQL is set-based; the incremental statements
recompute only the orders (and the days and customers those orders touch) that have
events in the new range, reading their whole history from ``analytics.order_events``,
so back-dated events land where their ``occurred_at`` puts them.

SQL placeholders: ``@TABLE@`` is the physical table being written (a name the runner
builds from the projection name, never user input); ``$lo``/``$hi`` are bound
positions; ``touched`` is a temporary table of the order ids with events in (lo, hi].
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlog.orders.events import ORDER_EVENT_TYPES


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
    folds: bool = False
    """True when the SQL reads ``states``: the runner registers ``fold_states`` of the
    source (all orders for ``full_sql``, the touched ones for ``incremental_sql``)."""
    last_states_only: bool = False
    """A folding projection that reads only each order's last state (``is_last``)."""
    reads_previous_states: bool = False
    """True when ``incremental_sql`` reads ``previous_states``: the last state of each
    touched order as of the projection's checkpoint (the runner folds it)."""

    @property
    def view(self) -> str:
        """The stable name readers query: ``schema.name``."""
        return f"{self.schema}.{self.name}"

    @property
    def is_source(self) -> bool:
        """True for the projection fed straight from the log."""
        return bool(self.batch_sql)


# --- the fold, vectorized -------------------------------------------------------------------
# The same definition as sql/fold.sql, computed with numpy over rows sorted by
# (order_id, occurred_at, version): running sums, forward fills and first occurrences
# per order are O(n) array operations, several times faster than DuckDB window
# functions over many small partitions. sql/fold.sql stays the definition used by the
# bitemporal macro and state_as_of(known_at); the property tests hold both to evolve.

FOLD_INPUT = """
SELECT order_id, version, position, event_type, occurred_at, recorded_at, customer_id,
       customer_name, customer_email, currency, channel, sku, product_name, quantity,
       unit_price_cents, amount_cents, city, country, carrier, tracking_number
FROM (@SOURCE@)
"""

# event kind codes: positions in the domain's list of event types
_TYPES = ORDER_EVENT_TYPES
CREATED, ADDED, REMOVED, DISCOUNT, ADDRESS, AUTHORIZED, CAPTURED, FAILED = (
    _TYPES.index(name)
    for name in (
        "OrderCreated",
        "ItemAdded",
        "ItemRemoved",
        "DiscountApplied",
        "ShippingAddressUpdated",
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentFailed",
    )
)
SHIPPED, DELIVERED, CANCELLED, REFUND, NOTE = (
    _TYPES.index(name)
    for name in (
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
        "RefundIssued",
        "CustomerNoteAdded",
    )
)
STATUSES = ("none", "open", "paid", "shipped", "delivered", "cancelled")
_STATUS_OF = {CREATED: 1, SHIPPED: 3, DELIVERED: 4, CANCELLED: 5}  # event kind -> STATUSES


class _Segments:
    """Contiguous runs of equal keys in a sorted array, and per-run array helpers."""

    def __init__(self, starts: np.ndarray) -> None:
        self.n = len(starts)
        self.first = np.flatnonzero(starts)
        self.run = np.cumsum(starts) - 1
        self.first_of_row = self.first[self.run] if self.n else self.first
        self.rows = np.arange(self.n)

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        total = np.cumsum(x)
        return np.asarray(total - (total[self.first] - x[self.first])[self.run])

    def last_index(self, mask: np.ndarray) -> np.ndarray:
        """Index of the latest row <= this one in the run where mask holds, else -1."""
        ff = np.maximum.accumulate(np.where(mask, self.rows, -1))
        return np.asarray(np.where(ff >= self.first_of_row, ff, -1))

    def first_index(self, mask: np.ndarray) -> np.ndarray:
        """Index of the run's first row where mask holds, if it is <= this row, else -1."""
        if not self.n:
            return self.rows
        firsts = np.minimum.reduceat(np.where(mask, self.rows, self.n), self.first)[self.run]
        return np.asarray(np.where(firsts <= self.rows, firsts, -1))

    def cummin(self, x: np.ndarray) -> np.ndarray:
        """Running minimum within each run (via ranks, so no value range can overflow)."""
        values, ranks = np.unique(x, return_inverse=True)
        shifted = ranks.astype(np.int64) - self.run.astype(np.int64) * (len(values) + 1)
        acc = np.minimum.accumulate(shifted) + self.run * (len(values) + 1)
        return np.asarray(values[acc])


def _starts(*keys: np.ndarray) -> np.ndarray:
    n = len(keys[0])
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = np.zeros(n - 1, dtype=bool)
        for key in keys:
            starts[1:] |= key[1:] != key[:-1]
    return starts


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null(0).to_numpy(), dtype=np.int64)


def _micros(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.int64()).to_numpy(), dtype=np.int64)


def _times(values: np.ndarray, index: np.ndarray) -> pa.Array:
    missing = index < 0
    picked = values[np.where(missing, 0, index)] if len(values) else values
    return pa.array(picked, mask=missing, type=pa.int64()).cast(pa.timestamp("us", "UTC"))


def fold_states(events: pa.Table, *, last_only: bool = False) -> pa.Table:
    """The state after each event of each order, folded in (occurred_at, version) order.

    ``events`` come in any order (FOLD_INPUT's columns). The fold sorts row numbers, not
    rows: numeric columns are permuted as numpy arrays, and a string column is only
    taken at the rows the output needs. With ``last_only`` the result holds each order's
    final state alone (``is_last`` rows), which is all ``analytics.orders`` reads.
    """
    events = events.combine_chunks()
    n = events.num_rows
    order_ids = events.column("order_id")
    encoded = pc.dictionary_encode(order_ids).combine_chunks()
    # codes ranked by order id, so the states come out grouped in order-id order: the
    # tables written from them then keep each row group to a narrow range of order ids,
    # and a lookup by order id skips the others (zone maps)
    rank = np.empty(len(encoded.dictionary), dtype=np.int64)
    rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank))
    raw_codes = rank[encoded.indices.to_numpy()] if n else np.zeros(0, dtype=np.int64)
    occurred_raw = _micros(events, "occurred_at")
    perm = np.lexsort((_ints(events, "version"), occurred_raw, raw_codes))

    def sort(values: np.ndarray) -> np.ndarray:
        return values[perm]

    def take(name: str, index: np.ndarray) -> pa.Array:
        """A column's values at sorted-row indices (-1: null)."""
        missing = index < 0
        at = perm[np.where(missing, 0, index)] if n else index
        return pc.take(events.column(name), pa.array(at, mask=missing))

    codes = pc.index_in(events.column("event_type"), value_set=pa.array(_TYPES))
    kind = sort(codes.fill_null(-1).to_numpy())
    orders = _Segments(_starts(sort(raw_codes)))
    quantity, price = sort(_ints(events, "quantity")), sort(_ints(events, "unit_price_cents"))
    amount = sort(_ints(events, "amount_cents"))
    occurred, recorded = sort(occurred_raw), sort(_micros(events, "recorded_at"))
    position = sort(events.column("position").to_numpy())

    # Cart lines: per (order, sku), a running sum clamped at zero; removals take off the
    # unit price of the sku's latest ItemAdded while the line is in the cart.
    is_item = (kind == ADDED) | (kind == REMOVED)
    delta = np.where(kind == ADDED, quantity, np.where(kind == REMOVED, -quantity, 0))
    subtotal_delta = np.where(kind == ADDED, quantity * price, 0)
    items = np.flatnonzero(is_item)
    if len(items):
        sku = pc.dictionary_encode(take("sku", items))
        sku_codes = sku.combine_chunks().indices.to_numpy()
        by_line = np.lexsort((items, sku_codes, orders.run[items]))
        rows = items[by_line]
        line_keys = (orders.run[rows], sku_codes[by_line])
        lines = _Segments(_starts(*line_keys))
        d = delta[rows]
        qsum = lines.cumsum(d)
        low = np.minimum(lines.cummin(qsum), 0)
        q_after = qsum - low
        q_before = np.where(lines.first_of_row == lines.rows, 0, np.roll(q_after, 1))
        added = kind[rows] == ADDED
        last_add = lines.last_index(added)
        add_price = price[rows][np.where(last_add < 0, 0, last_add)]
        removal = np.where(
            (~added) & (q_before > 0) & (last_add >= 0), -quantity[rows] * add_price, 0
        )
        subtotal_delta[rows] = np.where(added, subtotal_delta[rows], removal)

    item_count = orders.cumsum(delta)
    subtotal = orders.cumsum(subtotal_delta)
    discount = orders.cumsum(np.where(kind == DISCOUNT, amount, 0))
    authorized = orders.cumsum(np.where(kind == AUTHORIZED, amount, 0))
    captured = orders.cumsum(np.where(kind == CAPTURED, amount, 0))
    refunded = orders.cumsum(np.where(kind == REFUND, amount, 0))
    failures = orders.cumsum((kind == FAILED).astype(np.int64))
    notes = orders.cumsum((kind == NOTE).astype(np.int64))
    total = subtotal - discount
    version = orders.rows - orders.first_of_row + 1

    sets_status = np.isin(kind, list(_STATUS_OF))
    last_set = orders.last_index(sets_status)
    trigger = (kind == CAPTURED) & (total > 0) & (captured >= total)
    last_trigger = orders.last_index(trigger)
    base = np.zeros(n, dtype=np.int8)
    for code, label in _STATUS_OF.items():
        base[kind == code] = label
    base_status = np.where(last_set >= 0, base[np.where(last_set < 0, 0, last_set)], 0)
    paid = (base_status == 1) & (last_trigger > last_set)
    status = np.where(paid, 2, base_status).astype(np.int8)
    first_paid = orders.first_index(paid)

    last_created = orders.last_index(kind == CREATED)
    last_address = orders.last_index(kind == ADDRESS)
    last_shipped = orders.last_index(kind == SHIPPED)
    is_last = np.ones(n, dtype=bool)
    if n:
        is_last[:-1] = orders.run[1:] != orders.run[:-1]
    next_index = np.where(is_last, -1, orders.rows + 1)

    def group_max(values: np.ndarray) -> np.ndarray:
        if not n:
            return values
        return np.asarray(np.maximum.reduceat(values, orders.first)[orders.run])

    out = np.flatnonzero(is_last) if last_only else orders.rows

    def created(name: str) -> pa.Array:
        return take(name, last_created[out]).fill_null("")

    def at(index: np.ndarray) -> pa.Array:
        return _times(occurred, index[out])

    return pa.table(
        {
            "order_id": take("order_id", out),
            "customer_id": created("customer_id"),
            "currency": created("currency"),
            "status": pa.DictionaryArray.from_arrays(status[out], STATUSES).cast(pa.string()),
            "item_count": item_count[out],
            "subtotal_cents": subtotal[out],
            "discount_cents": discount[out],
            "total_cents": total[out],
            "authorized_cents": authorized[out],
            "captured_cents": captured[out],
            "refunded_cents": refunded[out],
            "payment_failures": failures[out],
            "shipping_city": take("city", last_address[out]),
            "shipping_country": take("country", last_address[out]),
            "carrier": take("carrier", last_shipped[out]),
            "note_count": notes[out],
            "version": version[out],
            "last_event_type": take("event_type", out),
            "customer_name": created("customer_name"),
            "customer_email": created("customer_email"),
            "channel": created("channel"),
            "tracking_number": take("tracking_number", last_shipped[out]),
            "valid_from": _times(occurred, out),
            "valid_to": _times(occurred, next_index[out]),
            "recorded_at": _times(recorded, out),
            "position": position[out],
            "created_at": at(orders.first_index(kind == CREATED)),
            "paid_at": at(first_paid),
            "shipped_at": at(orders.first_index(kind == SHIPPED)),
            "delivered_at": at(orders.first_index(kind == DELIVERED)),
            "cancelled_at": at(orders.first_index(kind == CANCELLED)),
            "last_recorded_at": _times(group_max(recorded), out),
            "last_position": group_max(position)[out],
            "is_last": is_last[out],
        }
    )


# --- analytics.order_events ----------------------------------------------------------------

PAYLOAD_FIELDS: tuple[tuple[str, str], ...] = (
    ("customer_id", "VARCHAR"),
    ("customer_name", "VARCHAR"),
    ("customer_email", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("sku", "VARCHAR"),
    ("product_name", "VARCHAR"),
    ("quantity", "BIGINT"),
    ("unit_price_cents", "BIGINT"),
    ("code", "VARCHAR"),
    ("amount_cents", "BIGINT"),
    ("recipient", "VARCHAR"),
    ("street", "VARCHAR"),
    ("city", "VARCHAR"),
    ("postal_code", "VARCHAR"),
    ("country", "VARCHAR"),
    ("payment_id", "VARCHAR"),
    ("method", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("carrier", "VARCHAR"),
    ("tracking_number", "VARCHAR"),
    ("author", "VARCHAR"),
    ("note", "VARCHAR"),
)
METADATA_FIELDS: tuple[str, ...] = (
    "actor",
    "command_id",
    "correlation_id",
    "causation_id",
    "source",
    "command",
)

ORDER_EVENTS_DDL = """
CREATE TABLE @TABLE@ (
    position BIGINT NOT NULL,
    order_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    event_id VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    schema_version SMALLINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    customer_id VARCHAR, customer_name VARCHAR, customer_email VARCHAR, currency VARCHAR,
    channel VARCHAR, sku VARCHAR, product_name VARCHAR, quantity BIGINT,
    unit_price_cents BIGINT, code VARCHAR, amount_cents BIGINT, recipient VARCHAR,
    street VARCHAR, city VARCHAR, postal_code VARCHAR, country VARCHAR, payment_id VARCHAR,
    method VARCHAR, reason VARCHAR, carrier VARCHAR, tracking_number VARCHAR, author VARCHAR,
    note VARCHAR,
    actor VARCHAR, command_id VARCHAR, correlation_id VARCHAR, causation_id VARCHAR,
    source VARCHAR, command VARCHAR
)
"""

ORDER_EVENTS_BATCH_SQL = """
INSERT INTO @TABLE@
SELECT
    position, stream_id, version, event_id, event_type::VARCHAR, schema_version,
    occurred_at, recorded_at,
    p.customer_id, p.customer_name, p.customer_email, p.currency, p.channel, p.sku,
    p.product_name, p.quantity, p.unit_price_cents, p.code, p.amount_cents, p.recipient,
    p.street, p.city, p.postal_code, p.country, p.payment_id, p.method, p.reason, p.carrier,
    p.tracking_number, p.author, p.note,
    m.actor, m.command_id, m.correlation_id, m.causation_id, m.source, m.command
FROM (
    SELECT *,
        json_transform(payload, '{"customer_id":"VARCHAR","customer_name":"VARCHAR",
            "customer_email":"VARCHAR","currency":"VARCHAR","channel":"VARCHAR",
            "sku":"VARCHAR","product_name":"VARCHAR","quantity":"BIGINT",
            "unit_price_cents":"BIGINT","code":"VARCHAR","amount_cents":"BIGINT",
            "recipient":"VARCHAR","street":"VARCHAR","city":"VARCHAR","postal_code":"VARCHAR",
            "country":"VARCHAR","payment_id":"VARCHAR","method":"VARCHAR","reason":"VARCHAR",
            "carrier":"VARCHAR","tracking_number":"VARCHAR","author":"VARCHAR",
            "note":"VARCHAR"}') AS p,
        json_transform(metadata, '{"actor":"VARCHAR","command_id":"VARCHAR",
            "correlation_id":"VARCHAR","causation_id":"VARCHAR","source":"VARCHAR",
            "command":"VARCHAR"}') AS m
    FROM batch
    WHERE stream_type::VARCHAR = 'order'
)
"""

# The order histories a derived projection reads: all of them, or the touched orders'.
SOURCE_ALL = "SELECT * FROM analytics.order_events WHERE position <= $hi"
# ``touched_events``: the touched orders' histories up to $hi, built once per catch-up.
SOURCE_TOUCHED = "SELECT * FROM touched_events"
# ... and those histories as they stood at the projection's previous checkpoint ($lo).
SOURCE_PREVIOUS = "SELECT * FROM touched_events WHERE position <= $lo"
DELETE_TOUCHED_ORDERS = "DELETE FROM @TABLE@ WHERE order_id IN (SELECT order_id FROM touched_known)"

# --- analytics.orders ----------------------------------------------------------------------

# The order-state columns of DESIGN.md, shared by analytics.orders and temporal.order_states.
ORDER_STATE_COLUMNS = """
    customer_id VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    item_count BIGINT NOT NULL,
    subtotal_cents BIGINT NOT NULL,
    discount_cents BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    authorized_cents BIGINT NOT NULL,
    captured_cents BIGINT NOT NULL,
    refunded_cents BIGINT NOT NULL,
    payment_failures BIGINT NOT NULL,
    shipping_city VARCHAR,
    shipping_country VARCHAR,
    carrier VARCHAR,
    note_count BIGINT NOT NULL,
    version BIGINT NOT NULL,
    last_event_type VARCHAR NOT NULL,
"""

ORDERS_DDL = (
    """
CREATE TABLE @TABLE@ (
    order_id VARCHAR NOT NULL,
"""
    + ORDER_STATE_COLUMNS.lstrip("\n")
    + """    customer_name VARCHAR NOT NULL,
    customer_email VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    tracking_number VARCHAR,
    created_at TIMESTAMPTZ,
    paid_at TIMESTAMPTZ,
    shipped_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    last_occurred_at TIMESTAMPTZ NOT NULL,
    last_recorded_at TIMESTAMPTZ NOT NULL,
    last_position BIGINT NOT NULL
)
"""
)

ORDERS_SELECT = """
SELECT
    order_id, customer_id, currency, status, item_count, subtotal_cents, discount_cents,
    total_cents, authorized_cents, captured_cents, refunded_cents, payment_failures,
    shipping_city, shipping_country, carrier, note_count, version, last_event_type,
    customer_name, customer_email, channel, tracking_number,
    created_at, paid_at, shipped_at, delivered_at, cancelled_at,
    valid_from AS last_occurred_at, last_recorded_at, last_position
FROM states
WHERE is_last
"""


def insert_into(select: str) -> str:
    """The statement that inserts ``select``'s rows into the table being written."""
    return "INSERT INTO @TABLE@\n" + select


ORDERS = Projection(
    name="orders",
    schema="analytics",
    code_version="1",
    description="Current state of every order (fold in (occurred_at, version) order).",
    ddl=ORDERS_DDL,
    full_sql=insert_into(ORDERS_SELECT),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(ORDERS_SELECT)),
    depends_on=("order_events",),
    folds=True,
    last_states_only=True,
)

# --- analytics.order_lines -----------------------------------------------------------------

ORDER_LINES_DDL = """
CREATE TABLE @TABLE@ (
    order_id VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    product_name VARCHAR NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    line_total_cents BIGINT NOT NULL,
    first_added_at TIMESTAMPTZ NOT NULL,
    last_changed_at TIMESTAMPTZ NOT NULL
)
"""

# A line's quantity is the running sum of adds and removals clamped at zero (evolve drops
# a line that reaches zero); its name and price are those of the latest ItemAdded.
ORDER_LINES_SELECT = """
SELECT order_id, sku, product_name, quantity, unit_price_cents,
       quantity * unit_price_cents AS line_total_cents, first_added_at, last_changed_at
FROM (
    SELECT
        order_id, sku,
        arg_max(qsum, n) - least(0, min(qsum)) AS quantity,
        arg_max(product_name, n) FILTER (WHERE event_type = 'ItemAdded') AS product_name,
        arg_max(unit_price_cents, n) FILTER (WHERE event_type = 'ItemAdded') AS unit_price_cents,
        min(occurred_at) FILTER (WHERE event_type = 'ItemAdded') AS first_added_at,
        max(occurred_at) AS last_changed_at
    FROM (
        SELECT *,
            sum(CASE event_type WHEN 'ItemAdded' THEN quantity ELSE -quantity END) OVER ws AS qsum,
            row_number() OVER ws AS n
        FROM e
        WHERE event_type IN ('ItemAdded', 'ItemRemoved')
        WINDOW ws AS (PARTITION BY order_id, sku ORDER BY occurred_at, version
                      ROWS UNBOUNDED PRECEDING)
    )
    GROUP BY order_id, sku
)
WHERE quantity > 0
"""


def _plain(source: str, select: str) -> str:
    return "WITH e AS (\n" + source + "\n)\n" + select


ORDER_LINES = Projection(
    name="order_lines",
    schema="analytics",
    code_version="1",
    description="The cart lines of every order as they stand now.",
    ddl=ORDER_LINES_DDL,
    full_sql=insert_into(_plain(SOURCE_ALL, ORDER_LINES_SELECT)),
    incremental_sql=(
        DELETE_TOUCHED_ORDERS,
        insert_into(_plain(SOURCE_TOUCHED, ORDER_LINES_SELECT)),
    ),
    depends_on=("order_events",),
)

# --- analytics.payments --------------------------------------------------------------------

PAYMENTS_DDL = """
CREATE TABLE @TABLE@ (
    order_id VARCHAR NOT NULL,
    payment_id VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    method VARCHAR,
    authorized_cents BIGINT NOT NULL,
    captured_cents BIGINT NOT NULL,
    failed BOOLEAN NOT NULL,
    failure_reason VARCHAR,
    authorized_at TIMESTAMPTZ,
    captured_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ
)
"""

PAYMENTS_SELECT = """
SELECT
    p.order_id, p.payment_id, coalesce(c.currency, '') AS currency,
    arg_max(p.method, (p.occurred_at, p.version)) FILTER (WHERE p.event_type = 'PaymentAuthorized')
        AS method,
    coalesce(sum(p.amount_cents) FILTER (WHERE p.event_type = 'PaymentAuthorized'), 0)
        AS authorized_cents,
    coalesce(sum(p.amount_cents) FILTER (WHERE p.event_type = 'PaymentCaptured'), 0)
        AS captured_cents,
    bool_or(p.event_type = 'PaymentFailed') AS failed,
    arg_max(p.reason, (p.occurred_at, p.version)) FILTER (WHERE p.event_type = 'PaymentFailed')
        AS failure_reason,
    min(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentAuthorized') AS authorized_at,
    max(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentCaptured') AS captured_at,
    min(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentFailed') AS failed_at
FROM e AS p
LEFT JOIN (
    SELECT order_id, arg_max(currency, (occurred_at, version)) AS currency
    FROM e WHERE event_type = 'OrderCreated' GROUP BY order_id
) AS c USING (order_id)
WHERE p.event_type IN ('PaymentAuthorized', 'PaymentCaptured', 'PaymentFailed')
GROUP BY p.order_id, p.payment_id, c.currency
"""

PAYMENTS = Projection(
    name="payments",
    schema="analytics",
    code_version="1",
    description="One row per payment of an order: authorized, captured, failed.",
    ddl=PAYMENTS_DDL,
    full_sql=insert_into(_plain(SOURCE_ALL, PAYMENTS_SELECT)),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(_plain(SOURCE_TOUCHED, PAYMENTS_SELECT))),
    depends_on=("order_events",),
)

# --- analytics.daily_sales -----------------------------------------------------------------

DAILY_SALES_DDL = """
CREATE TABLE @TABLE@ (
    day DATE NOT NULL,
    currency VARCHAR NOT NULL,
    orders_created BIGINT NOT NULL,
    orders_paid BIGINT NOT NULL,
    orders_cancelled BIGINT NOT NULL,
    gross_revenue_cents BIGINT NOT NULL,
    refunds_cents BIGINT NOT NULL,
    net_revenue_cents BIGINT NOT NULL,
    average_order_value_cents BIGINT,
    payments_captured BIGINT NOT NULL,
    refunds_issued BIGINT NOT NULL,
    paid_order_value_cents BIGINT NOT NULL
)
"""

# Days are UTC dates of occurred_at. A "fact" puts one order's contribution on one day:
# created, paid, cancelled (from its state), and each captured payment or refund (from its
# events, in the order's currency). A (day, currency) row exists while it has any fact.
# Incrementally the table moves by a delta: the touched orders' facts now minus their
# facts at the previous checkpoint (from ``previous_states``, the fold of their events up
# to it), so a catch-up costs what its orders cost, never a recount of whole days.
_FACTS = """
SELECT created_at::DATE AS day, currency, 1 AS created, 0 AS paid, 0 AS cancelled,
       0 AS gross, 0 AS refunds, 0 AS captures, 0 AS refund_count, 0 AS paid_total
FROM @ORDERS@ WHERE created_at IS NOT NULL
UNION ALL
SELECT paid_at::DATE, currency, 0, 1, 0, 0, 0, 0, 0, total_cents
FROM @ORDERS@ WHERE paid_at IS NOT NULL
UNION ALL
SELECT cancelled_at::DATE, currency, 0, 0, 1, 0, 0, 0, 0, 0
FROM @ORDERS@ WHERE cancelled_at IS NOT NULL
UNION ALL
SELECT ev.occurred_at::DATE, o.currency, 0, 0, 0,
       CASE WHEN ev.event_type = 'PaymentCaptured' THEN ev.amount_cents ELSE 0 END,
       CASE WHEN ev.event_type = 'RefundIssued' THEN ev.amount_cents ELSE 0 END,
       CASE WHEN ev.event_type = 'PaymentCaptured' THEN 1 ELSE 0 END,
       CASE WHEN ev.event_type = 'RefundIssued' THEN 1 ELSE 0 END, 0
FROM (@EVENTS@) AS ev JOIN @ORDERS@ AS o USING (order_id)
WHERE ev.event_type IN ('PaymentCaptured', 'RefundIssued')
"""


def _facts(orders: str, events: str) -> str:
    return _FACTS.replace("@ORDERS@", orders).replace("@EVENTS@", events)


# fact column -> the name of its daily sum (the full count and the delta share them)
_FACT_SUMS = (
    ("created", "orders_created"),
    ("paid", "orders_paid"),
    ("cancelled", "orders_cancelled"),
    ("gross", "gross"),
    ("refunds", "refunds"),
    ("captures", "captures"),
    ("refund_count", "refund_count"),
    ("paid_total", "paid_total"),
)


def _sums(weight: str = "") -> str:
    """``sum(<weight><fact>) AS <name>`` for every fact column."""
    return ", ".join(f"sum({weight}{fact}) AS {name}" for fact, name in _FACT_SUMS)


# the columns of a row from its sums (``s``): derived ones computed, never summed
_DAILY_ROW = """
SELECT day, currency, orders_created, orders_paid, orders_cancelled,
    gross AS gross_revenue_cents, refunds AS refunds_cents,
    gross - refunds AS net_revenue_cents,
    CASE WHEN orders_paid > 0 THEN (paid_total + orders_paid // 2) // orders_paid END
        AS average_order_value_cents,
    captures AS payments_captured, refund_count AS refunds_issued,
    paid_total AS paid_order_value_cents
FROM (@SUMS@) AS s
"""

_GROUPED = "SELECT day, currency, @SUMS@ FROM (@FACTS@) GROUP BY day, currency"
DAILY_SALES_FULL = insert_into(
    _DAILY_ROW.replace(
        "@SUMS@",
        _GROUPED.replace("@SUMS@", _sums()).replace(
            "@FACTS@", _facts("analytics.orders", SOURCE_ALL)
        ),
    )
)
TOUCHED_ORDERS_NOW = """
CREATE OR REPLACE TEMP TABLE touched_orders_now AS
SELECT order_id, currency, created_at, paid_at, cancelled_at, total_cents
FROM analytics.orders WHERE order_id IN (SELECT order_id FROM touched)
"""
DAILY_DELTA = (
    """
CREATE OR REPLACE TEMP TABLE daily_delta AS
SELECT day, currency, @SUMS@
FROM (
    SELECT 1 AS sign, * FROM (@NOW@)
    UNION ALL
    SELECT -1 AS sign, * FROM (@BEFORE@)
)
GROUP BY day, currency
""".replace("@SUMS@", _sums("sign * "))
    .replace("@NOW@", _facts("touched_orders_now", SOURCE_TOUCHED))
    .replace("@BEFORE@", _facts("previous_states", SOURCE_PREVIOUS))
)
DAILY_MERGED = """
CREATE OR REPLACE TEMP TABLE daily_merged AS
SELECT d.day, d.currency,
    coalesce(t.orders_created, 0) + d.orders_created AS orders_created,
    coalesce(t.orders_paid, 0) + d.orders_paid AS orders_paid,
    coalesce(t.orders_cancelled, 0) + d.orders_cancelled AS orders_cancelled,
    coalesce(t.gross_revenue_cents, 0) + d.gross AS gross,
    coalesce(t.refunds_cents, 0) + d.refunds AS refunds,
    coalesce(t.payments_captured, 0) + d.captures AS captures,
    coalesce(t.refunds_issued, 0) + d.refund_count AS refund_count,
    coalesce(t.paid_order_value_cents, 0) + d.paid_total AS paid_total
FROM daily_delta AS d LEFT JOIN @TABLE@ AS t USING (day, currency)
"""
DAILY_SALES = Projection(
    name="daily_sales",
    schema="analytics",
    code_version="2",
    description="Per UTC day and currency: orders created/paid/cancelled, revenue, refunds.",
    ddl=DAILY_SALES_DDL,
    full_sql=DAILY_SALES_FULL,
    incremental_sql=(
        TOUCHED_ORDERS_NOW,
        DAILY_DELTA,
        DAILY_MERGED,
        "DELETE FROM @TABLE@ WHERE (day, currency) IN (SELECT day, currency FROM daily_delta)",
        insert_into(
            _DAILY_ROW.replace(
                "@SUMS@",
                "SELECT * FROM daily_merged WHERE orders_created + orders_paid"
                " + orders_cancelled + captures + refund_count > 0",
            )
        ),
    ),
    depends_on=("order_events", "orders"),
    reads_previous_states=True,
)

# --- analytics.customers -------------------------------------------------------------------

CUSTOMERS_DDL = """
CREATE TABLE @TABLE@ (
    customer_id VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    customer_name VARCHAR NOT NULL,
    customer_email VARCHAR NOT NULL,
    orders BIGINT NOT NULL,
    orders_paid BIGINT NOT NULL,
    orders_cancelled BIGINT NOT NULL,
    captured_cents BIGINT NOT NULL,
    refunded_cents BIGINT NOT NULL,
    lifetime_value_cents BIGINT NOT NULL,
    refund_rate DOUBLE,
    first_order_at TIMESTAMPTZ,
    last_order_at TIMESTAMPTZ
)
"""

CUSTOMERS_SELECT = """
SELECT
    customer_id, currency,
    arg_max(customer_name, (created_at, order_id)) AS customer_name,
    arg_max(customer_email, (created_at, order_id)) AS customer_email,
    count(*) AS orders,
    count(paid_at) AS orders_paid,
    count(*) FILTER (WHERE status = 'cancelled') AS orders_cancelled,
    sum(captured_cents) AS captured_cents,
    sum(refunded_cents) AS refunded_cents,
    sum(captured_cents) - sum(refunded_cents) AS lifetime_value_cents,
    CASE WHEN sum(captured_cents) > 0
         THEN sum(refunded_cents)::DOUBLE / sum(captured_cents) END AS refund_rate,
    min(created_at) AS first_order_at,
    max(created_at) AS last_order_at
FROM analytics.orders
WHERE customer_id <> '' AND @CUSTOMERS@
GROUP BY customer_id, currency
"""

TOUCHED_CUSTOMERS = """
CREATE OR REPLACE TEMP TABLE touched_customers AS
SELECT DISTINCT customer_id FROM touched_events WHERE event_type = 'OrderCreated'
"""

CUSTOMERS = Projection(
    name="customers",
    schema="analytics",
    code_version="1",
    description="Per customer and currency: orders, lifetime value, refund rate, first/last order.",
    ddl=CUSTOMERS_DDL,
    full_sql=insert_into(CUSTOMERS_SELECT.replace("@CUSTOMERS@", "true")),
    incremental_sql=(
        TOUCHED_CUSTOMERS,
        "DELETE FROM @TABLE@ WHERE customer_id IN (SELECT customer_id FROM touched_customers)",
        insert_into(
            CUSTOMERS_SELECT.replace(
                "@CUSTOMERS@", "customer_id IN (SELECT customer_id FROM touched_customers)"
            )
        ),
    ),
    depends_on=("order_events", "orders"),
)

ORDER_EVENTS = Projection(
    name="order_events",
    schema="analytics",
    code_version="1",
    description="One typed row per order event: payload fields and audit metadata as columns.",
    ddl=ORDER_EVENTS_DDL,
    batch_sql=ORDER_EVENTS_BATCH_SQL,
)
