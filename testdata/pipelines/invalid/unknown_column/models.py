import lakehouse


@lakehouse.model(columns=["country", "usd"])
def euro(data=lakehouse.Model("transactions", columns=["id", "usd2", "country"])):
    return data


@lakehouse.model()
def totals(data=lakehouse.Model("euro", columns=["country", "amount"])):
    return data


@lakehouse.model()
def report(data=lakehouse.Model("country_totals", columns=["country", "usd"])):
    return data
