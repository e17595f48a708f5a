-- Each country's share of the euro-area total.
-- lakehouse: materialization=REPLACE
SELECT country, usd, usd / sum(usd) OVER () AS share
FROM usd_by_country
ORDER BY usd DESC
