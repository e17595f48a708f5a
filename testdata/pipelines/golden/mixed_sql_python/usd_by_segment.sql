-- lakehouse: materialization=REPLACE partitioned_by=segment
WITH e AS (SELECT * FROM enriched)
SELECT segment, sum(usd) AS usd
FROM e
GROUP BY segment
