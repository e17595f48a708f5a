SELECT country, sum(usd) AS usd FROM euro GROUP BY country
