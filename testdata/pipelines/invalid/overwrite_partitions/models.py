import lakehouse


@lakehouse.model(materialization="OVERWRITE_PARTITIONS")
def daily(data=lakehouse.Model("transactions")):
    return data
