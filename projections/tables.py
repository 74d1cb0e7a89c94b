"""The analytics.* projections of each order: orders, their cart lines, their payments.

Every table is derived from ``analytics.order_events`` (one typed row per order event),
which is derived from the log. The SQL is set-based; the incremental statements
recompute only the orders (and the days and customers those orders touch) that have
events in the new range, reading their whole history from ``analytics.order_events``,
so back-dated events land where their ``occurred_at`` puts them. The per-day and
per-customer rollups are in ``projections.rollups``.
"""

from __future__ import annotations

from projections.order_state import STATE_SELECT, state_column_ddl
from projections.projection import (
    DELETE_TOUCHED_ORDERS,
    SOURCE_ALL,
    SOURCE_TOUCHED,
    Projection,
    insert_into,
    with_events,
)

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


ORDER_LINES = Projection(
    name="order_lines",
    schema="analytics",
    code_version="1",
    description="The cart lines of every order as they stand now.",
    ddl=ORDER_LINES_DDL,
    full_sql=insert_into(with_events(SOURCE_ALL, ORDER_LINES_SELECT)),
    incremental_sql=(
        DELETE_TOUCHED_ORDERS,
        insert_into(with_events(SOURCE_TOUCHED, ORDER_LINES_SELECT)),
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
    full_sql=insert_into(with_events(SOURCE_ALL, PAYMENTS_SELECT)),
    incremental_sql=(
        DELETE_TOUCHED_ORDERS,
        insert_into(with_events(SOURCE_TOUCHED, PAYMENTS_SELECT)),
    ),
    depends_on=("order_events",),
)
