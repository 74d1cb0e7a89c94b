"""The analytics.* rollups: daily sales per (UTC day, currency), customers per currency.

Both read ``analytics.orders`` (so they depend on it) and the order events; a catch-up
moves them by what its touched orders changed, never a recount.
"""

from __future__ import annotations

from projections.projection import (
    SOURCE_ALL,
    SOURCE_PREVIOUS,
    SOURCE_TOUCHED,
    Projection,
    insert_into,
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
