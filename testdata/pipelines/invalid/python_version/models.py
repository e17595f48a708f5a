import lakehouse


@lakehouse.model()
@lakehouse.python("3.8")
def old(data=lakehouse.Model("transactions")):
    return data


@lakehouse.model()
@lakehouse.python("4.0")
def future(data=lakehouse.Model("old")):
    return data
