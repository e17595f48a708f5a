import lakehouse


@lakehouse.model()
def euro(data=lakehouse.Model("transactons")):
    return data


@lakehouse.model()
def other(data=lakehouse.Model("sales.transaction"), e=lakehouse.Model("eur")):
    return data
