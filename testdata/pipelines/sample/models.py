import lakehouse


@lakehouse.model()  # in memory only (default)
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def euro_selection(
    data=lakehouse.Model(
        "transactions",
        columns=["id", "usd", "country"],
        filter="country IN ('IT', 'FR')",
    ),
    min_usd=lakehouse.Parameter("min_usd"),
):
    df = data.to_pandas()
    return df[df.usd >= min_usd]  # pandas, polars or pyarrow


@lakehouse.model(materialization="REPLACE", columns=["country", "usd"])  # written as an Iceberg table
@lakehouse.python("3.10", pip={"pandas": "1.5.3", "numpy": "<2"})  # pandas 1.5 predates numpy 2
def usd_by_country(data=lakehouse.Model("euro_selection")):
    return data.to_pandas().groupby("country", as_index=False).usd.sum()


@lakehouse.expectation()
@lakehouse.python("3.11")
def usd_not_null(data=lakehouse.Model("usd_by_country", columns=["usd"])):
    from lakehouse.expectations import expect_column_no_nulls

    return expect_column_no_nulls(data, "usd")
