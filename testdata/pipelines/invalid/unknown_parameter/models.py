import lakehouse


@lakehouse.model()
def euro(data=lakehouse.Model("transactions"), m=lakehouse.Parameter("min_usd")):
    return data
