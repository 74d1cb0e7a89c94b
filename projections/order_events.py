"""``analytics.order_events``: one typed row per order event, straight from the log.

Every other analytics table is derived from it: payload fields and audit metadata as
columns, the order id as ``order_id``. It is a view: the sealed events are read from the
build's pinned files, typed once when they were pinned (``projections.snapshot``); the
events after them are stored typed rows (``projections.source``).
"""

from __future__ import annotations

from projections.projection import Projection

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

_TYPED = """
SELECT
    position, stream_id AS order_id, version, event_id, event_type::VARCHAR AS event_type,
    schema_version,
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
    FROM @RAW@
    WHERE stream_type::VARCHAR = 'order'
)
"""


def typed_events(raw: str) -> str:
    """The typed ``order_events`` rows (DDL column order) of a relation of raw log rows."""
    return _TYPED.replace("@RAW@", raw)


ORDER_EVENTS_BATCH_SQL = "INSERT INTO @TABLE@\n" + typed_events("batch")


def sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled): for a path in a view, never user input."""
    return "'" + text.replace("'", "''") + "'"


def parts_relation(directory: str, cut: int) -> str:
    """The typed rows of a build's pinned files (an absolute directory), positions 1..cut."""
    pattern = sql_literal(directory.rstrip("/") + "/*.parquet")
    return f"(SELECT * FROM read_parquet({pattern}) WHERE position <= {int(cut)})"  # noqa: S608


def events_view(table: str, parts: str | None) -> str:
    """The rows readers see as ``analytics.order_events``: the stored typed rows and, when
    the build pinned parts (``parts_relation``), the typed rows of its pinned files."""
    if parts is None:
        return f"SELECT * FROM {table}"  # noqa: S608 - built names
    return f"SELECT * FROM {table}\nUNION ALL\nSELECT * FROM {parts}"  # noqa: S608


ORDER_EVENTS = Projection(
    name="order_events",
    schema="analytics",
    code_version="3",
    description="One typed row per order event: payload fields and audit metadata as columns.",
    ddl=ORDER_EVENTS_DDL,
    batch_sql=ORDER_EVENTS_BATCH_SQL,
)
