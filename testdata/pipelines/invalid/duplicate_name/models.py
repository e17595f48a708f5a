import lakehouse


@lakehouse.model()
def euro(data=lakehouse.Model("transactions")):
    return data


@lakehouse.model(name="euro")
def euro_again(data=lakehouse.Model("transactions")):
    return data


@lakehouse.model(materialization="REPLACE")
def totals(data=lakehouse.Model("euro")):
    return data
