-- Euro-area transactions.
-- lakehouse: columns=id,usd,country,customer
SELECT id, usd, country, customer
FROM transactions
WHERE country IN ('IT', 'FR', 'DE')
