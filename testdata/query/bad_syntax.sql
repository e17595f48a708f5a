SELECT id,
       amount
  FROM orders WHER id = 1
