from lakehouse import Model, expectation, model, resources


# clean -> in_euro -> by_country run fused in one interpreter: each reads
# only the one before, which nothing else reads and nothing writes.
@model()
def clean(data=Model("sales.transactions", columns=["id", "usd", "country", "customer"])):
    return data


@model()
def in_euro(data=Model("clean"), rates=Model("default.fx_rates")):
    return data


@model(materialization="REPLACE")
def by_country(data=Model("in_euro", columns=["country", "usd"])):
    return data


# by_country is materialized: its readers run on their own.
@expectation()
def has_rows(data=Model("by_country")):
    return data.num_rows > 0


# A memory limit keeps a model out of any chain.
@model()
@resources(memory="2GiB")
def customer_rows(data=Model("sales.customers")):
    return data


@model(materialization="REPLACE")
def segments(data=Model("customer_rows", columns=["segment"])):
    return data
