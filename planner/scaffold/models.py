"""Python models of the {{name}} pipeline.

Each function decorated with @lakehouse.model() is a model: its inputs are
lakehouse.Model(...) defaults (another model, or a catalog table, read as a
pyarrow.Table) and it returns a pyarrow Table, or a pandas or polars
DataFrame. The decorators are read without running this file, so their
arguments must be literals.
"""

import lakehouse


@lakehouse.model()  # in memory only (the default)
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def euro_selection(
    data=lakehouse.Model(
        "transactions",
        columns=["id", "usd", "country"],
        filter="country IN ('IT', 'FR', 'DE')",
    ),
    min_usd=lakehouse.Parameter("min_usd"),
):
    df = data.to_pandas()
    return df[df.usd >= min_usd]


@lakehouse.model(materialization="REPLACE", columns=["country", "usd"])  # written as sales.usd_by_country
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def usd_by_country(data=lakehouse.Model("euro_selection", columns=["country", "usd"])):
    return data.to_pandas().groupby("country", as_index=False).usd.sum()


@lakehouse.expectation()
@lakehouse.python("3.11")
def usd_not_null(data=lakehouse.Model("usd_by_country", columns=["usd"])):
    from lakehouse.expectations import expect_column_no_nulls

    return expect_column_no_nulls(data, "usd")
