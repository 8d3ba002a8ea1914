-- Stage one of the features: the window's raw rows per shop and month (one month's file at a time is enough,
-- so the engine runs it per raw partition and range of shops). Output relation `monthly`, read by features.sql.
-- Months are integers (year * 12 + month - 1) so consecutive months differ by one.
SELECT
    shop_id,
    year * 12 + month - 1 AS t,
    SUM(sales_qty) AS qty,
    SUM(sales_value) AS value,
    -- products that sold: the contract has one row per shop, product and month (validation enforces it)
    COUNT(product_id) FILTER (WHERE sales_qty > 0) AS products
FROM raw
WHERE year * 12 + month - 1 BETWEEN $first_index AND $as_of_index
GROUP BY shop_id, year * 12 + month - 1
