-- Customers whose kept transactions add up to more than 500 USD.
SELECT customer, sum(usd) AS usd, count(*) AS n
FROM clean
GROUP BY customer
HAVING sum(usd) > 500
