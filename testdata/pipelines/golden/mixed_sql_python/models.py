import lakehouse


@lakehouse.model()
def enriched(
    tx=lakehouse.Model("euro_selection", columns=["id", "usd", "customer"]),
    customers=lakehouse.Model("sales.customers", columns=["customer", "segment"]),
):
    return tx
