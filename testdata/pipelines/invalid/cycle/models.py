import lakehouse


@lakehouse.model()
def a(x=lakehouse.Model("c"), t=lakehouse.Model("transactions")):
    return x


@lakehouse.model()
def b(x=lakehouse.Model("a")):
    return x


@lakehouse.model()
def c(x=lakehouse.Model("b")):
    return x
