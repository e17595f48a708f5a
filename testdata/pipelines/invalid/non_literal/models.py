import lakehouse

COLUMNS = ["id", "usd"]
MODE = "REPLACE"


@lakehouse.model(materialization=MODE)
def euro(data=lakehouse.Model("transactions", columns=COLUMNS, filter="usd > " + str(10))):
    return data
