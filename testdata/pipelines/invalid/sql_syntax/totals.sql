-- lakehouse: materialization=REPLACE
SELECT country, sum(usd) AS usd
FROM transactions
GROUP BY GROUP BY country
