"""Functions the launcher tests run (runtime/launchertest)."""
import os
import sys
import time

import lakehouse


@lakehouse.model()
@lakehouse.python("3.11")
def hello():
    print("hello from a function")


def double(data=lakehouse.Model("numbers"), factor=lakehouse.Parameter("factor")):
    import pyarrow as pa
    import pyarrow.compute as pc

    print("rows in:", data.num_rows)
    return pa.table({"x": pc.multiply(data["x"], factor)})


def as_pandas(data):
    df = data.to_pandas()
    df["y"] = df["x"] + 1
    return df


def as_reader(data):
    return data.to_reader(max_chunksize=2)


def expectation(data):
    return data.num_rows > 0


def bad_return():
    return 42


def fail():
    helper()


def helper():
    raise ValueError("something is wrong with the data")


def fail_on(data):
    print("checking", data.num_rows)
    helper()


def hog_on(data):
    memory_hog()


def crash():
    print("about to crash", flush=True)
    os.abort()


def exit_quietly():
    os._exit(3)


def sleep_forever():
    print("sleeping", flush=True)
    time.sleep(3600)


def memory_hog():
    chunks = []
    while True:
        chunks.append(bytearray(16 << 20))


def logs():
    for i in range(3):
        print("out", i)
        print("err", i, file=sys.stderr)
        time.sleep(0.05)


def write_package(path):
    with open(path, "w") as f:
        f.write("pwned")


def connect(host, port):
    import socket

    s = socket.create_connection((host, port), timeout=3)
    s.close()


def versions():
    import pandas as pd
    import pyarrow as pa

    return pa.table({"pandas": [pd.__version__], "python": ["%d.%d" % sys.version_info[:2]]})


def capabilities():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                print(line.split()[1])
