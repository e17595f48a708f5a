import lakehouse


@lakehouse.model()
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def clean(
    data=lakehouse.Model(
        "transactions",
        columns=["id", "usd", "country", "customer"],
        filter="usd >= $min_usd",
    ),
):
    import sys

    import pandas as pd

    assert pd.__version__ == "2.2.3" and sys.version_info[:2] == (3, 11), (pd.__version__, sys.version)
    df = data.to_pandas()
    df["country"] = df["country"].str.lower()
    print(f"clean: {len(df)} rows with pandas {pd.__version__} on Python 3.11")
    return df


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.10", pip={"pandas": "1.5.3", "numpy": "<2"})
def by_country(data=lakehouse.Model("clean", columns=["id", "usd", "country"])):
    import sys

    import pandas as pd

    assert pd.__version__ == "1.5.3" and sys.version_info[:2] == (3, 10), (pd.__version__, sys.version)
    print(f"by_country: pandas {pd.__version__} on Python 3.10")
    df = data.to_pandas()
    return df.groupby("country", as_index=False).agg(usd=("usd", "sum"), n=("id", "count"))


@lakehouse.expectation()
@lakehouse.python("3.11")
def clean_positive(data=lakehouse.Model("clean", columns=["usd"]), min_usd=lakehouse.Parameter("min_usd")):
    import pyarrow.compute as pc

    return data.num_rows > 0 and pc.min(data["usd"]).as_py() >= min_usd
