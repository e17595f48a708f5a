from lakehouse import Model, model


@model()
def clean(data=Model("sales.transactions", columns=["id", "usd", "country", "customer"])):
    return data


@model(materialization="REPLACE")
def by_country(data=Model("clean", columns=["country", "usd"])):
    return data


@model(materialization="REPLACE")
def by_customer(data=Model("clean", columns=["customer", "usd"])):
    return data


@model(materialization="APPEND")
def big_spenders(data=Model("clean")):
    return data
