import lakehouse


@lakehouse.model()
@lakehouse.python("3.11")
def step1(data=lakehouse.Model("events")):
    import pyarrow.compute as pc

    return data.append_column("usd2", pc.multiply(data["usd"], 2.0))


@lakehouse.model()
@lakehouse.python("3.11")
def step2(data=lakehouse.Model("step1")):
    import pyarrow.compute as pc

    return data.filter(pc.greater(data["usd"], 1.0))


@lakehouse.model()
@lakehouse.python("3.11")
def step3(data=lakehouse.Model("step2")):
    import pyarrow.compute as pc

    return data.append_column("big", pc.greater(data["usd2"], 100.0))


@lakehouse.model()
@lakehouse.python("3.11")
def step4(data=lakehouse.Model("step3")):
    return data.drop_columns(["usd2"])


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def step5(data=lakehouse.Model("step4")):
    return data.group_by(["country", "big"]).aggregate([("usd", "sum"), ("id", "count")])
