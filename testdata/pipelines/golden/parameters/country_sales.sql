-- lakehouse: materialization=REPLACE
SELECT customer, usd
FROM top_customers
JOIN customers USING (customer)
WHERE country = $country AND usd >= $min_usd AND '$not_a_param' <> ''
