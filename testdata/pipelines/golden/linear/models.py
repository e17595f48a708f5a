import lakehouse


@lakehouse.model()
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def euro_selection(
    data=lakehouse.Model("transactions", columns=["id", "usd", "country"], filter="country IN ('IT', 'FR')"),
):
    return data


@lakehouse.model(materialization="REPLACE", columns=["country", "usd"])
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
@lakehouse.resources(cpus=2, memory="4GiB", timeout="10m")
def usd_by_country(data=lakehouse.Model("euro_selection")):
    return data.to_pandas().groupby("country", as_index=False).usd.sum()


@lakehouse.expectation()
@lakehouse.python("3.11")
def usd_not_null(data=lakehouse.Model("usd_by_country", columns=["usd"])):
    from lakehouse.expectations import expect_column_no_nulls

    return expect_column_no_nulls(data, "usd")
