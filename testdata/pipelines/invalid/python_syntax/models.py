import lakehouse


@lakehouse.model()
def euro(data=lakehouse.Model("transactions"):
    return data
