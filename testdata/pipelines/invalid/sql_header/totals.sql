-- lakehouse: materialisation=REPLACE
-- lakehouse: partitioned_by
SELECT country, sum(usd) AS usd FROM transactions GROUP BY country
-- lakehouse: namespace=sales
