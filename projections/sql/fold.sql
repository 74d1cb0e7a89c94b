-- The Order evolve as set-based SQL: one row per event with the state after it.
-- Input: the CTE `e` (columns of analytics.order_events), defined by the caller.
-- Fold order: (occurred_at, version) within each order, as DESIGN.md "Time" says.
a AS (
    SELECT
        e.*,
        CASE e.event_type WHEN 'ItemAdded' THEN e.quantity WHEN 'ItemRemoved' THEN -e.quantity END
            AS qdelta,
        CASE WHEN e.event_type = 'ItemAdded' THEN e.unit_price_cents END AS add_price,
        CASE e.event_type
            WHEN 'OrderCreated' THEN 'open'
            WHEN 'OrderShipped' THEN 'shipped'
            WHEN 'OrderDelivered' THEN 'delivered'
            WHEN 'OrderCancelled' THEN 'cancelled'
        END AS set_status
    FROM e
),
-- A cart line's quantity is a running sum clamped at zero (a line that drops to zero
-- leaves the cart): q_n = S_n - least(0, min S_k). The price a removal takes off is
-- the unit price of the sku's latest ItemAdded, if the line is in the cart.
b AS (
    SELECT
        a.*,
        sum(qdelta) OVER ws AS qsum,
        last_value(add_price IGNORE NULLS) OVER (
            PARTITION BY order_id, sku ORDER BY occurred_at, version
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS prev_price
    FROM a
    WINDOW ws AS (PARTITION BY order_id, sku ORDER BY occurred_at, version
                  ROWS UNBOUNDED PRECEDING)
),
c AS (
    SELECT
        b.*,
        (qsum - qdelta) - least(0, coalesce(min(qsum) OVER (
            PARTITION BY order_id, sku ORDER BY occurred_at, version
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0)) AS q_prev
    FROM b
),
d AS (
    SELECT
        c.*,
        CASE c.event_type
            WHEN 'ItemAdded' THEN c.quantity * c.unit_price_cents
            WHEN 'ItemRemoved' THEN
                CASE WHEN c.q_prev > 0 THEN -c.quantity * c.prev_price ELSE 0 END
            ELSE 0
        END AS subtotal_delta
    FROM c
),
f AS (
    SELECT
        d.order_id,
        d.version AS stream_version,
        d.position,
        d.event_type,
        d.occurred_at,
        d.recorded_at,
        row_number() OVER w AS state_version,
        lead(d.occurred_at) OVER (PARTITION BY order_id ORDER BY occurred_at, version)
            AS next_occurred_at,
        count(d.set_status) OVER w AS seg,
        last_value(d.set_status IGNORE NULLS) OVER w AS base_status,
        coalesce(last_value(CASE WHEN d.event_type = 'OrderCreated' THEN d.customer_id END
            IGNORE NULLS) OVER w, '') AS customer_id,
        coalesce(last_value(CASE WHEN d.event_type = 'OrderCreated' THEN d.customer_name END
            IGNORE NULLS) OVER w, '') AS customer_name,
        coalesce(last_value(CASE WHEN d.event_type = 'OrderCreated' THEN d.customer_email END
            IGNORE NULLS) OVER w, '') AS customer_email,
        coalesce(last_value(CASE WHEN d.event_type = 'OrderCreated' THEN d.currency END
            IGNORE NULLS) OVER w, '') AS currency,
        coalesce(last_value(CASE WHEN d.event_type = 'OrderCreated' THEN d.channel END
            IGNORE NULLS) OVER w, '') AS channel,
        sum(coalesce(d.qdelta, 0)) OVER w AS item_count,
        sum(d.subtotal_delta) OVER w AS subtotal_cents,
        sum(CASE WHEN d.event_type = 'DiscountApplied' THEN d.amount_cents ELSE 0 END) OVER w
            AS discount_cents,
        sum(CASE WHEN d.event_type = 'PaymentAuthorized' THEN d.amount_cents ELSE 0 END) OVER w
            AS authorized_cents,
        sum(CASE WHEN d.event_type = 'PaymentCaptured' THEN d.amount_cents ELSE 0 END) OVER w
            AS captured_cents,
        sum(CASE WHEN d.event_type = 'RefundIssued' THEN d.amount_cents ELSE 0 END) OVER w
            AS refunded_cents,
        count(*) FILTER (WHERE d.event_type = 'PaymentFailed') OVER w AS payment_failures,
        count(*) FILTER (WHERE d.event_type = 'CustomerNoteAdded') OVER w AS note_count,
        last_value(CASE WHEN d.event_type = 'ShippingAddressUpdated' THEN d.city END
            IGNORE NULLS) OVER w AS shipping_city,
        last_value(CASE WHEN d.event_type = 'ShippingAddressUpdated' THEN d.country END
            IGNORE NULLS) OVER w AS shipping_country,
        last_value(CASE WHEN d.event_type = 'OrderShipped' THEN d.carrier END
            IGNORE NULLS) OVER w AS carrier,
        last_value(CASE WHEN d.event_type = 'OrderShipped' THEN d.tracking_number END
            IGNORE NULLS) OVER w AS tracking_number,
        min(CASE WHEN d.event_type = 'OrderCreated' THEN d.occurred_at END) OVER w AS created_at,
        min(CASE WHEN d.event_type = 'OrderShipped' THEN d.occurred_at END) OVER w AS shipped_at,
        min(CASE WHEN d.event_type = 'OrderDelivered' THEN d.occurred_at END) OVER w
            AS delivered_at,
        min(CASE WHEN d.event_type = 'OrderCancelled' THEN d.occurred_at END) OVER w
            AS cancelled_at
    FROM d
    WINDOW w AS (PARTITION BY order_id ORDER BY occurred_at, version ROWS UNBOUNDED PRECEDING)
),
-- An open order becomes paid at the capture that brings captured >= total (> 0); it
-- stays paid until the next status-setting event (a new segment).
g AS (
    SELECT
        f.*,
        bool_or(
            f.event_type = 'PaymentCaptured'
            AND f.subtotal_cents - f.discount_cents > 0
            AND f.captured_cents >= f.subtotal_cents - f.discount_cents
        ) OVER (PARTITION BY order_id, seg ORDER BY occurred_at, stream_version
                ROWS UNBOUNDED PRECEDING) AS paid_in_segment
    FROM f
),
states AS (
    SELECT
        g.order_id,
        g.customer_id,
        g.currency,
        CASE
            WHEN g.base_status = 'open' AND g.paid_in_segment THEN 'paid'
            ELSE coalesce(g.base_status, 'none')
        END AS status,
        g.item_count,
        g.subtotal_cents,
        g.discount_cents,
        g.subtotal_cents - g.discount_cents AS total_cents,
        g.authorized_cents,
        g.captured_cents,
        g.refunded_cents,
        g.payment_failures,
        g.shipping_city,
        g.shipping_country,
        g.carrier,
        g.note_count,
        g.state_version AS version,
        g.event_type AS last_event_type,
        g.customer_name,
        g.customer_email,
        g.channel,
        g.tracking_number,
        g.occurred_at AS valid_from,
        g.next_occurred_at AS valid_to,
        g.recorded_at,
        g.position,
        g.stream_version,
        g.created_at,
        g.shipped_at,
        g.delivered_at,
        g.cancelled_at
    FROM g
)
