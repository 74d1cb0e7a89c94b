"""The analytics.* projections of each order: orders, their cart lines, their payments.

Every table is derived from ``analytics.order_events`` (one typed row per order event),
which is derived from the log, through the numpy Order fold (``projections.fold``): its
last state of each order, cart lines and payments. The incremental statements recompute
only the orders (and the days and customers those orders touch) that have events in the
new range, folding their whole history from ``analytics.order_events``, so back-dated
events land where their ``occurred_at`` puts them. The per-day and per-customer rollups
are in ``projections.rollups``.
"""

from __future__ import annotations

from projections.order_state import STATE_SELECT, state_column_ddl
from projections.projection import DELETE_TOUCHED_ORDERS, Projection, insert_into

# --- analytics.orders ----------------------------------------------------------------------

# The order-state columns (projections.order_state), shared with temporal.order_states.
ORDER_STATE_COLUMNS = state_column_ddl()

ORDERS_DDL = (
    """
CREATE TABLE @TABLE@ (
    order_id VARCHAR NOT NULL,
"""
    + ORDER_STATE_COLUMNS
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
    @STATE@,
    customer_name, customer_email, channel, tracking_number,
    created_at, paid_at, shipped_at, delivered_at, cancelled_at,
    valid_from AS last_occurred_at, last_recorded_at, last_position
FROM last_states
""".replace("@STATE@", STATE_SELECT)


ORDERS = Projection(
    name="orders",
    schema="analytics",
    code_version="1",
    description="Current state of every order (fold in (occurred_at, version) order).",
    ddl=ORDERS_DDL,
    full_sql=insert_into(ORDERS_SELECT),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(ORDERS_SELECT)),
    depends_on=("order_events",),
    fold_tables=("last_states",),
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

# The fold's cart lines (projections.fold_lines): a line's quantity is the running sum
# of its adds and removals clamped at zero (evolve drops a line that reaches zero); its
# name and price are those of its latest ItemAdded.
ORDER_LINES_SELECT = """
SELECT order_id, sku, product_name, quantity, unit_price_cents, line_total_cents,
       first_added_at, last_changed_at
FROM folded_lines
"""


ORDER_LINES = Projection(
    name="order_lines",
    schema="analytics",
    code_version="1",
    description="The cart lines of every order as they stand now.",
    ddl=ORDER_LINES_DDL,
    full_sql=insert_into(ORDER_LINES_SELECT),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(ORDER_LINES_SELECT)),
    depends_on=("order_events",),
    fold_tables=("folded_lines",),
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

# The fold's payments (projections.fold_lines): amounts summed per payment id, the
# latest authorization's method and failure's reason, the order's currency.
PAYMENTS_SELECT = """
SELECT order_id, payment_id, currency, method, authorized_cents, captured_cents, failed,
       failure_reason, authorized_at, captured_at, failed_at
FROM folded_payments
"""

PAYMENTS = Projection(
    name="payments",
    schema="analytics",
    code_version="1",
    description="One row per payment of an order: authorized, captured, failed.",
    ddl=PAYMENTS_DDL,
    full_sql=insert_into(PAYMENTS_SELECT),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(PAYMENTS_SELECT)),
    depends_on=("order_events",),
    fold_tables=("folded_payments",),
)
