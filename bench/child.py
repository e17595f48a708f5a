"""Child side of the lakehouse benchmarks.

    child.py idle                 import pyarrow (and compute), report, hold
    child.py ipc PATH             load an Arrow IPC file the way the function
                                  runner does (memory map, zero copy)
    child.py parquet PATH         the baseline: pyarrow.parquet.read_table

Each report is one JSON line on stdout. A loading child reports "loaded" right
after the read (read_s is perf_counter around the read alone; imports come
before it), then sums every column, which touches every buffer, and reports
"ready". Every child then holds what it has until its stdin is closed, so the
parent can measure its memory.
"""

import json
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc


def emit(event, **fields):
    print(json.dumps(dict(event=event, **fields)), flush=True)


def main():
    mode = sys.argv[1]
    table = None
    if mode == "idle":
        emit("ready", allocated=pa.total_allocated_bytes())
    else:
        path = sys.argv[2]
        if mode == "parquet":  # the baseline's own import, before the clock
            import pyarrow.parquet as pq
        t0 = time.perf_counter()
        if mode == "ipc":
            table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
        elif mode == "parquet":
            table = pq.read_table(path)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        t1 = time.perf_counter()
        emit("loaded", read_s=t1 - t0, rows=table.num_rows)
        sums = {name: pc.sum(table.column(name)).as_py() for name in table.column_names}
        t2 = time.perf_counter()
        emit("ready", sum_s=t2 - t1, sums=sums, allocated=pa.total_allocated_bytes())
    sys.stdin.read()
    del table


if __name__ == "__main__":
    main()
