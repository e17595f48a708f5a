"""Queries placed on a worker of a fleet: the client follows the FlightInfo
endpoint's location and reads the rows from the worker."""

import json
import re
import shutil
import tempfile
import time
import urllib.request

import pyarrow as pa
import pytest

import lakehouse
from conftest import Server


class _Serve(Server):
    """A Server that also remembers its HTTP address."""

    def _read_addr(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"flight on (grpc(?:\+tls)?://[^,\s]+), http on http://(\S+),", line or "")
            if m:
                self.http_addr = m.group(2)
                return m.group(1)
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("lakehouse serve did not start:\n" + open(self.log_path).read())


def _queries_served(server):
    with urllib.request.urlopen("http://%s/metrics" % server.http_addr) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("lakehouse_query_duration_seconds_count "):
                return int(line.split()[1])
    raise AssertionError("no query count in the metrics")


@pytest.fixture
def fleet(lakehouse_bin, monkeypatch):
    """A control plane and one worker that reads its warehouse (a shared
    file system: the same machine)."""
    control_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-control-")
    worker_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-worker-")
    servers = []
    try:
        control = _Serve(lakehouse_bin, control_dir, ["--role", "control"])
        servers.append(control)
        monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "file://" + control_dir + "/warehouse")
        worker = _Serve(lakehouse_bin, worker_dir, ["--role", "worker", "--join", control.addr, "--name", "w1",
                                                    "--heartbeat", "250ms"])
        servers.append(worker)
        deadline = time.time() + 30
        while True:
            out = control.lakehouse("workers", "ls", "-O", "json").stdout
            if any(w["name"] == "w1" and w["state"] == "alive" for w in json.loads(out or "[]")):
                break
            assert time.time() < deadline, "w1 did not join:\n" + open(worker.log_path).read()
            time.sleep(0.1)
        yield control, worker
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(control_dir, ignore_errors=True)
        shutil.rmtree(worker_dir, ignore_errors=True)


def test_query_read_from_worker(fleet):
    control, worker = fleet
    with lakehouse.Client(control.addr) as c:
        c.create_branch("py.fleet")
        c.create_namespace("fleet", "py.fleet")
        rows = pa.table({"id": pa.array(range(1000), pa.int64()),
                         "g": pa.array([i % 7 for i in range(1000)], pa.int64())})
        c.import_data("fleet.t", rows, "py.fleet")
        c.merge_branch("py.fleet", into_branch="main")
        before_worker, before_control = _queries_served(worker), _queries_served(control)
        t = c.query("SELECT g, count(*) AS n, sum(id) AS s FROM fleet.t GROUP BY g ORDER BY g")
        assert t.column("n").to_pylist() == [143, 143, 143, 143, 143, 143, 142]
        assert t.column("s").to_pylist()[0] == sum(i for i in range(1000) if i % 7 == 0)
        assert _queries_served(worker) == before_worker + 1
        assert _queries_served(control) == before_control
