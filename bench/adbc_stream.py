#!/usr/bin/env python3
"""Streams a 10M-row, 4-column result from `lakehouse serve` through the
ADBC Flight SQL driver and compares it with the same query through
lakehouse.Client and through `lakehouse query -O arrow`, in the same run.

    python3 bench/adbc_stream.py [--rows N] [--repeat R]

The server is $LAKEHOUSE_BIN, else bin/lakehouse (built if missing),
started on 127.0.0.1 ports over a temporary data dir and stopped by pid at
the end (see bench/client_stream.py, whose helpers this reuses).

Paths, each reading every row of SELECT range AS a, range*2 AS b, range*3
AS c, range*4 AS d FROM range(N) (32 bytes a row, 320 MB for 10M):
  - ADBC: adbc_driver_flightsql.dbapi, cursor.execute, then the cursor's
    record batch reader (Flight SQL: GetFlightInfo, then DoGet);
  - Client: lakehouse.Client(addr).query_to_reader (the server's own
    protocol);
  - CLI: `lakehouse --addr ADDR query SQL -O arrow` writing the Arrow IPC
    file to /dev/null (includes starting the process).
Printed: best and median seconds, MB/s, each path's best time over the
Client's (the goal for ADBC: at most 1.2x), and the median CPU seconds the
reading process (this one, or the CLI child) and the server spent on a run:
on a machine whose cores both processes fill, the times follow the sum of
the two, so the client column says where a path's extra time goes.
"""

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import adbc_driver_flightsql.dbapi as flight_sql  # noqa: E402

import client_stream as cs  # noqa: E402  (puts python/ on sys.path)
import lakehouse  # noqa: E402

# The DB-API layer warns that autocommit cannot be turned off: the server
# has no transactions.
warnings.filterwarnings("ignore", message="Cannot disable autocommit")


def via_adbc(addr, sql, rows):
    c0 = cs.cpu_seconds()
    t0 = time.perf_counter()
    with flight_sql.connect(addr) as conn, conn.cursor() as cur:
        cur.execute(sql)
        n = nbytes = batches = 0
        for b in cur.fetch_record_batch():
            n += b.num_rows
            nbytes += b.nbytes
            batches += 1
    assert n == rows, (n, rows)
    return time.perf_counter() - t0, nbytes, batches, cs.cpu_seconds() - c0


def via_client(addr, sql, rows):
    c0 = cs.cpu_seconds()
    t0 = time.perf_counter()
    with lakehouse.Client(addr) as c:
        n = nbytes = batches = 0
        for b in c.query_to_reader(sql):
            n += b.num_rows
            nbytes += b.nbytes
            batches += 1
    assert n == rows, (n, rows)
    return time.perf_counter() - t0, nbytes, batches, cs.cpu_seconds() - c0


def via_cli(bin_path, addr, sql, rows):
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run([bin_path, "--addr", addr, "query", sql, "-O", "arrow"], stdout=null, check=True,
                       env=dict(os.environ, LAKEHOUSE_API_KEY=""))
    dt = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, rows * 32, 0, (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sql = cs.SQL % args.rows

    tmp = tempfile.mkdtemp(prefix="lakehouse-bench-")
    proc = None
    try:
        bin_path = cs.binary(tmp)
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir)
        proc, addr = cs.start_server(bin_path, data_dir)
        paths = {
            "ADBC Flight SQL (fetch_record_batch)": lambda: via_adbc(addr, sql, args.rows),
            "lakehouse.Client.query_to_reader": lambda: via_client(addr, sql, args.rows),
            "lakehouse query -O arrow (process)": lambda: via_cli(bin_path, addr, sql, args.rows),
        }
        for run in paths.values():  # warm up: connections, the DuckDB pool
            run()
        # Interleaved, so that a busy spell of the machine hits every path.
        results = {name: [] for name in paths}
        for _ in range(args.repeat):
            for name, run in paths.items():
                s0 = cs.cpu_seconds(proc.pid)
                r = run()
                results[name].append(r + (cs.cpu_seconds(proc.pid) - s0,))

        base = min(r[0] for r in results["lakehouse.Client.query_to_reader"])
        print("%d rows x 4 int64 columns, %d runs each (best / median)" % (args.rows, args.repeat))
        print("%-38s %8s %9s %11s %8s %14s %12s %12s" % (
            "path", "best s", "median s", "best MB/s", "batches", "best / Client", "client CPU s", "server CPU s"))
        for name, runs in results.items():
            times = [r[0] for r in runs]
            best, med = min(times), statistics.median(times)
            print("%-38s %8.3f %9.3f %11.0f %8s %13.2fx %12.3f %12.3f" % (
                name, best, med, runs[0][1] / best / 1e6, runs[0][2] or "-", best / base,
                statistics.median(r[3] for r in runs), statistics.median(r[4] for r in runs)))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
