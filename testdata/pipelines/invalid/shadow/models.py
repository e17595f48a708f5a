import lakehouse


@lakehouse.model(materialization="REPLACE")
def transactions(data=lakehouse.Model("transactions", columns=["id", "usd"])):
    return data
