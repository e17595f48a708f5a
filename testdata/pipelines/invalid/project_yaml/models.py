import lakehouse


@lakehouse.model()
@lakehouse.python("3.11")
def euro(data=lakehouse.Model("transactions")):
    return data
