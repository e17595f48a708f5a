-- A SQL model: the file name is the model's name; header lines configure it.
-- lakehouse: materialization=REPLACE
SELECT country, usd
FROM usd_by_country
WHERE usd > $min_usd
ORDER BY usd DESC
LIMIT 3
