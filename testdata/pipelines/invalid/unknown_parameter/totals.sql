SELECT country, sum(usd) AS usd FROM euro WHERE usd > $min_usd GROUP BY country
