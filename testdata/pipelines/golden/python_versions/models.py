import lakehouse


@lakehouse.model()
@lakehouse.python("3.10", pip={"pandas": "1.5.3", "numpy": "<2"})
def legacy(data=lakehouse.Model("transactions", columns=["id", "usd"])):
    return data


@lakehouse.model()
@lakehouse.python("3.12", pip={"pandas": "2.2.3"})
def modern(data=lakehouse.Model("transactions", columns=["id", "country"])):
    return data


@lakehouse.model()
@lakehouse.python("3.13", pip={"polars[pyarrow]": "~=1.9", "requests": None})
def newest(data=lakehouse.Model("transactions", columns=["id"])):
    return data


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.9", pip={"pandas": "2.0.*"})
def joined(a=lakehouse.Model("legacy"), b=lakehouse.Model("modern"), c=lakehouse.Model("newest")):
    return a
