import lakehouse


@lakehouse.model()
def euro(data=lakehouse.Model("transactions", columns=["id", "usd"], filter="country IN ('IT', 'FR'")):
    return data


@lakehouse.model(materialization="OVERWRITE_PARTITIONS", partitioned_by=["country"], overwrite_filter="country = (SELECT max(country) FROM sales.customers)")
def daily(data=lakehouse.Model("euro")):
    return data
