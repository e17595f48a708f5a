import lakehouse as lh


@lh.model()
@lh.python("3.11", pip={"pyarrow": ">=17,<19"})
def eu_sales(tx=lh.Model("transactions", columns=["id", "usd", "country", "customer"], filter="country IN ('IT', 'FR', 'DE')")):
    return tx


@lh.model()
@lh.python("3.11")
def segments(c=lh.Model("customers", columns=["customer", "segment"])):
    return c


@lh.model()
@lh.python("3.11")
def rates(fx=lh.Model("default.fx_rates", columns=["currency", "rate"], filter="currency = 'EUR'")):
    return fx


@lh.model(materialization="OVERWRITE_PARTITIONS", partitioned_by=["segment"], overwrite_filter="segment = 'retail'")
@lh.python("3.11", pip={"duckdb": "1.1.3"})
def eur_by_segment(sales=lh.Model("eu_sales"), seg=lh.Model("segments"), fx=lh.Model("rates")):
    return sales


@lh.model(columns=["day"])
@lh.python("3.11")
def calendar():
    import pyarrow as pa

    return pa.table({"day": list(range(1, 32))})


@lh.model(materialization="REPLACE")
@lh.python("3.11")
def daily_eur(cal=lh.Model("calendar", columns=["day"]), seg=lh.Model("eur_by_segment"), old=lh.Model("transactions", ref="alice.dev", columns=["id"])):
    return cal
