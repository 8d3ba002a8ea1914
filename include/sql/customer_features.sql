-- Customer-level behaviour from invoice lines: one row per customer with a line in the window.
-- Input relation `lines`: the invoice-lines contract (customer_id, invoice_id, invoice_date, product_id, quantity,
-- value) of the window's months. $as_of_end is the first instant after the as-of month: "now" for recency.
-- Documented in customer_features.yaml; joined to the shop features by shop_id = customer_id.
WITH orders AS (
    -- an order is an invoice: its time, value and number of distinct products
    SELECT
        customer_id,
        invoice_id,
        MIN(invoice_date) AS ordered_at,
        SUM(value) AS order_value
    FROM lines
    GROUP BY customer_id, invoice_id
),
customers AS (
    SELECT
        customer_id,
        COUNT(*) AS orders,
        -- visits: distinct order days (several invoices on one day are one shopping trip)
        COUNT(DISTINCT CAST(ordered_at AS DATE)) AS order_days,
        COUNT(*) FILTER (WHERE ordered_at >= $as_of_end::TIMESTAMP - INTERVAL 90 DAY) AS orders_90d,
        SUM(order_value) AS spend,
        MIN(ordered_at) AS first_order,
        MAX(ordered_at) AS last_order,
        MIN(CAST(ordered_at AS DATE)) AS first_day,
        MAX(CAST(ordered_at AS DATE)) AS last_day
    FROM orders
    GROUP BY customer_id
),
breadth AS (
    SELECT customer_id, COUNT(DISTINCT product_id) AS products FROM lines GROUP BY customer_id
)
SELECT
    c.customer_id AS shop_id,
    CAST(c.orders AS INTEGER) AS orders,
    CAST(c.order_days AS INTEGER) AS order_days,
    CAST(c.orders_90d AS INTEGER) AS orders_90d,
    c.spend AS spend,
    c.spend / c.orders AS aov,
    CAST(b.products AS INTEGER) AS products,
    (EPOCH($as_of_end::TIMESTAMP) - EPOCH(c.last_order)) / 86400.0 AS recency_days,
    (EPOCH($as_of_end::TIMESTAMP) - EPOCH(c.first_order)) / 86400.0 AS tenure_days,
    -- mean days between visits; undefined (NULL) for a single visit
    CASE WHEN c.order_days > 1 THEN DATE_DIFF('day', c.first_day, c.last_day) / (c.order_days - 1.0) END AS gap_days,
    LN(1 + (EPOCH($as_of_end::TIMESTAMP) - EPOCH(c.last_order)) / 86400.0) AS log_recency_days,
    LN(1 + (EPOCH($as_of_end::TIMESTAMP) - EPOCH(c.first_order)) / 86400.0) AS log_tenure_days,
    LN(c.orders) AS log_orders,
    LN(1 + c.orders_90d) AS log_orders_90d,
    LN(1 + c.spend) AS log_spend,
    LN(1 + c.spend / c.orders) AS log_aov,
    LN(b.products) AS log_products,
    LN(1 + COALESCE(CASE WHEN c.order_days > 1
                         THEN DATE_DIFF('day', c.first_day, c.last_day) / (c.order_days - 1.0) END, 0)) AS log_gap_days
FROM customers AS c
JOIN breadth AS b USING (customer_id)
ORDER BY shop_id
