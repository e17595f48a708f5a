SELECT country, sum(usd) AS total
FROM euro
GROUP BY country
