import lakehouse


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def first(data=lakehouse.Model("transactions", columns=["id", "usd"])):
    return data


@lakehouse.model(materialization="REPLACE")
@lakehouse.resources(memory="256MiB", timeout=3)
@lakehouse.python("3.11")
def second(data=lakehouse.Model("first"), fail=lakehouse.Parameter("fail")):
    import os
    import signal
    import time

    print("second started", flush=True)
    if fail == "exception":
        return data.num_rows / 0
    if fail == "oom":
        hog = []
        while True:
            hog.append(b"x" * (32 << 20))
    if fail == "timeout":
        time.sleep(60)
    if fail == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    return data


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def third(data=lakehouse.Model("first"), fail=lakehouse.Parameter("fail")):
    import time

    if fail == "hang":
        print("third hangs", flush=True)
        time.sleep(120)
    return data


@lakehouse.expectation()
@lakehouse.python("3.11")
def never_fails_unless_asked(data=lakehouse.Model("second"), fail=lakehouse.Parameter("fail")):
    return fail != "expectation"
