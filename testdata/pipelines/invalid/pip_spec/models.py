import lakehouse


@lakehouse.model()
@lakehouse.python("3.11", pip={"pandas": "two.two", "scikit learn": "1.5", "numpy": ">=1.26,<<2", "polars": 1.9})
def euro(data=lakehouse.Model("transactions")):
    return data
