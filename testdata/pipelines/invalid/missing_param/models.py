import lakehouse


@lakehouse.model()
def top(data=lakehouse.Model("transactions"), n=lakehouse.Parameter("top_n")):
    return data
