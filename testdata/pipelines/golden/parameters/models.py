import lakehouse


@lakehouse.model()
def top_customers(
    data=lakehouse.Model("transactions", columns=["customer", "usd"]),
    min_usd=lakehouse.Parameter("min_usd"),
    n=lakehouse.Parameter("top_n"),
):
    return data
