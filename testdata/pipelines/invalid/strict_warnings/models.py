import lakehouse


@lakehouse.model()
def dropped(data=lakehouse.Model("transactions", columns=["id"])):
    return data
