import lakehouse


@lakehouse.modle()
def a(data=lakehouse.Model("transactions")):
    return data


@lakehouse.model
def b(data=lakehouse.Model("transactions")):
    return data


@lakehouse.model(materialisation="REPLACE", cache="yes")
@lakehouse.python()
def c(data=lakehouse.Model("transactions"), limit=10, other=None):
    return data


@lakehouse.python("3.11")
def d(data=lakehouse.Model("transactions")):
    return data
