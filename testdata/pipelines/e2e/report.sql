-- Fan-in: per country totals (Python, pandas 1.5) with the number of big
-- spenders (SQL) and the catalog table itself.
-- lakehouse: materialization=REPLACE
SELECT b.country,
       b.usd,
       b.n,
       (SELECT count(*) FROM big_spenders) AS big_spenders,
       (SELECT count(*) FROM transactions) AS all_rows
FROM by_country b
ORDER BY b.country
