#!/usr/bin/env python3
"""Streams a 10M-row, 4-column result from `lakehouse serve` to
lakehouse.Client and compares it with reading the same rows from a local
Arrow IPC file with pyarrow, in the same run.

    python3 bench/client_stream.py [--rows N] [--repeat R]

The server is $LAKEHOUSE_BIN, else bin/lakehouse (built with
`go build -tags duckdb_arrow -o bin/lakehouse .` if missing), started on
127.0.0.1 ports over a temporary data dir and stopped by pid at the end.

Rows: the query SELECT range AS a, range*2 AS b, range*3 AS c, range*4 AS d
FROM range(N): four int64 columns, 32 bytes a row (320 MB for 10M). The
client reads it batch by batch (query_to_reader), holding one batch at a
time. The IPC file holds the same values, written by pyarrow in 64K-row
batches under the temp dir; it is read back both through an OSFile (a copy,
like the network path) and memory-mapped (no copy: the floor).

Printed: a table with time and bytes/s of each, best and median of R runs,
plus the server-side cost of producing the rows (count(*) over the same
query: DuckDB's part, no transfer), and the CPU seconds the server and the
client spent per stream (on a loaded machine, bytes per CPU-second say more
than wall time).
"""

import argparse
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import pyarrow as pa  # noqa: E402
import pyarrow.ipc as ipc  # noqa: E402

import lakehouse  # noqa: E402

SQL = "SELECT range AS a, range*2 AS b, range*3 AS c, range*4 AS d FROM range(%d)"


def binary(tmp):
    path = os.environ.get("LAKEHOUSE_BIN") or os.path.join(ROOT, "bin", "lakehouse")
    if os.path.exists(path):
        return path
    path = os.path.join(tmp, "lakehouse")
    print("building %s" % path, file=sys.stderr)
    subprocess.run(["go", "build", "-tags", "duckdb_arrow", "-o", path, "."], cwd=ROOT, check=True)
    return path


def start_server(bin_path, data_dir):
    log = open(os.path.join(data_dir, "serve.log"), "w+")
    proc = subprocess.Popen(
        [bin_path, "--data-dir", data_dir, "serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"flight on (grpc\S*://\S+),", line or "")
        if m:
            return proc, m.group(1).rstrip(",")
        if proc.poll() is not None:
            break
    proc.kill()
    log.seek(0)
    raise RuntimeError("lakehouse serve did not start: %s" % log.read())


def rss():
    """The resident set size now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds(pid=None):
    """User+system CPU seconds of a process (Linux /proc), this one by
    default (all threads)."""
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream(client, rows, growth, cpu, server_pid):
    """Reads the query batch by batch; growth[0] keeps the largest RSS
    growth seen (sampled every 16 batches); cpu collects (server, client)
    CPU seconds of the run."""
    base = rss()
    c0, s0 = cpu_seconds(), cpu_seconds(server_pid)
    t0 = time.perf_counter()
    reader = client.query_to_reader(SQL % rows)
    n = nbytes = batches = 0
    for b in reader:
        n += b.num_rows
        nbytes += b.nbytes
        batches += 1
        if batches % 16 == 0:
            growth[0] = max(growth[0], rss() - base)
    dt = time.perf_counter() - t0
    cpu.append((cpu_seconds(server_pid) - s0, cpu_seconds() - c0))
    assert n == rows, (n, rows)
    return dt, nbytes, batches


def server_only(client, rows):
    t0 = time.perf_counter()
    t = client.query("SELECT count(*) AS n, sum(d) AS s FROM (%s)" % (SQL % rows))
    dt = time.perf_counter() - t0
    assert t.column(0)[0].as_py() == rows
    return dt


def write_ipc(path, rows, batch_rows=65536):
    schema = pa.schema([(c, pa.int64()) for c in "abcd"])
    with ipc.new_file(path, schema) as w:
        for off in range(0, rows, batch_rows):
            r = pa.array(range(off, min(rows, off + batch_rows)), pa.int64())
            import pyarrow.compute as pc

            w.write_batch(pa.record_batch([r, pc.multiply(r, 2), pc.multiply(r, 3), pc.multiply(r, 4)], schema=schema))


def read_ipc(path, mmap):
    t0 = time.perf_counter()
    src = pa.memory_map(path, "r") if mmap else pa.OSFile(path, "rb")
    with src:
        r = ipc.open_file(src)
        n = nbytes = 0
        for i in range(r.num_record_batches):
            b = r.get_batch(i)
            n += b.num_rows
            nbytes += b.nbytes
    return time.perf_counter() - t0, nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lakehouse-bench-")
    proc = None
    try:
        bin_path = binary(tmp)
        data_dir = os.path.join(tmp, "data")
        os.mkdir(data_dir)
        proc, addr = start_server(bin_path, data_dir)
        results = {}
        with lakehouse.Client(addr) as c:
            c.query("SELECT 1")  # connect
            growth = [0]
            cpu = []
            results["server → Client.query_to_reader"] = [
                stream(c, args.rows, growth, cpu, proc.pid) for _ in range(args.repeat)]
            server_s = [server_only(c, args.rows) for _ in range(args.repeat)]
        path = os.path.join(tmp, "rows.arrow")
        write_ipc(path, args.rows)
        results["local IPC file, OSFile read"] = [read_ipc(path, False) + (0,) for _ in range(args.repeat)]
        results["local IPC file, memory-mapped"] = [read_ipc(path, True) + (0,) for _ in range(args.repeat)]

        print("%d rows x 4 int64 columns, %d runs each (best / median)" % (args.rows, args.repeat))
        print("%-34s %10s %10s %12s %12s %8s" % ("path", "best s", "median s", "best MB/s", "median MB/s", "batches"))
        for name, runs in results.items():
            times = [r[0] for r in runs]
            nbytes = runs[0][1]
            best, med = min(times), statistics.median(times)
            print("%-34s %10.3f %10.3f %12.0f %12.0f %8s" % (
                name, best, med, nbytes / best / 1e6, nbytes / med / 1e6, runs[0][2] or "-"))
        print("%-34s %10.3f %10.3f" % ("server only: count(*) of the query", min(server_s), statistics.median(server_s)))
        srv_cpu, cli_cpu = statistics.median(x[0] for x in cpu), statistics.median(x[1] for x in cpu)
        nbytes = results["server → Client.query_to_reader"][0][1]
        # On a busy machine wall time mostly measures the wait for a core;
        # CPU time per byte does not. Server and client run side by side,
        # so with a core each the stream moves at about the slower one's
        # rate.
        # /proc counts CPU in clock ticks (10 ms): a small run may show none.
        rate = lambda cpu: "%.0f MB/CPU-s" % (nbytes / cpu / 1e6) if cpu > 0 else "under a clock tick"
        print("CPU per stream (median): server %.3f s (%s), client %.3f s (%s)" % (
            srv_cpu, rate(srv_cpu), cli_cpu, rate(cli_cpu)))
        print("client RSS growth while streaming: at most %.0f MB (result: %.0f MB)" % (
            growth[0] / 1e6, results["server → Client.query_to_reader"][0][1] / 1e6))
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
