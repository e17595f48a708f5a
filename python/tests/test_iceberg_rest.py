"""PyIceberg's RestCatalog against a real `lakehouse serve` with API keys:
the Iceberg REST catalog at http://<http-addr>/iceberg/<ref>. The catalog
settings here are the ones docs/clients/pyiceberg.md shows."""

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading

import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import CommitFailedException, ForbiddenError, NoSuchTableError
from pyiceberg.expressions import GreaterThanOrEqual

from conftest import Server
from test_client_auth import create_key


class RestServer(Server):
    """A Server that also keeps its HTTP address (where /iceberg/ is)."""

    def _read_addr(self):
        line = self.proc.stdout.readline()
        m = re.search(r"flight on (grpc://[^,\s]+), http on http://([^,\s]+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError("lakehouse serve did not start:\n" + (line or "") + open(self.log_path).read())
        self.http = m.group(2)
        return m.group(1)


@contextlib.contextmanager
def orders_server(lakehouse_bin, prefix, tag=None, init=(), env=None):
    """A keyed server whose main holds sales.orders (3 rows), also tagged
    tag if given; alice (a writer) has branch alice.dev. init are more
    flags of the catalog's creation (a warehouse), env more environment of
    the server (its S3 credentials). Yields the server and the keys
    (admin, alice); stops it by pid at the end."""
    data_dir = tempfile.mkdtemp(prefix=prefix)
    keys = {
        "admin": create_key(lakehouse_bin, data_dir, *init, "init", "--user", "root", env=env),
        "alice": create_key(lakehouse_bin, data_dir, "key", "create", "--user", "alice", "--role", "writer", env=env),
    }
    s = RestServer(lakehouse_bin, data_dir, env=env)
    try:
        csv = os.path.join(data_dir, "orders.csv")
        with open(csv, "w") as f:
            f.write("id,amount\n1,10.5\n2,20\n3,30\n")
        cli(s, keys["alice"], "branch", "create", "alice.base", "--from-ref", "main")
        cli(s, keys["alice"], "namespace", "create", "sales", "--branch", "alice.base")
        cli(s, keys["alice"], "table", "import", "sales.orders", "--from", csv, "--branch", "alice.base")
        cli(s, keys["alice"], "merge", "alice.base", "--into", "main")
        if tag:
            cli(s, keys["admin"], "tag", "create", tag, "--from-ref", "main")
        cli(s, keys["alice"], "branch", "create", "alice.dev", "--from-ref", "main")
        yield s, keys
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def served(lakehouse_bin):
    """A keyed server whose main holds sales.orders (3 rows); alice (a
    writer) has branch alice.dev."""
    with orders_server(lakehouse_bin, "lakehouse-pytest-iceberg-") as served:
        yield served


def cli(s, key, *args):
    """Runs the lakehouse CLI against the server with an API key."""
    env = dict(os.environ, LAKEHOUSE_API_KEY=key, LAKEHOUSE_ADDR="", HOME=s.data_dir)
    out = subprocess.run([s.binary, "--addr", s.addr, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise AssertionError(f"lakehouse {' '.join(args)}: {out.stderr}")
    return out.stdout


def catalog(s, key, ref):
    # The configuration docs/clients/pyiceberg.md shows.
    return RestCatalog("lakehouse", uri=f"http://{s.http}/iceberg/{ref}", token=key)


def rows(*ids):
    return pa.table({"id": pa.array(ids, pa.int64()), "amount": pa.array([i * 1.5 for i in ids], pa.float64())})


def test_read_main(served):
    s, keys = served
    main = catalog(s, keys["alice"], "main")
    assert ("sales",) in main.list_namespaces()
    assert ("sales", "orders") in main.list_tables("sales")
    t = main.load_table("sales.orders")
    got = t.scan(row_filter=GreaterThanOrEqual("id", 2)).to_arrow()
    assert sorted(got.column("id").to_pylist()) == [2, 3]
    with pytest.raises(NoSuchTableError):
        main.load_table("sales.nope")


def test_write_a_branch_then_merge(served):
    s, keys = served
    dev = catalog(s, keys["alice"], "alice.dev")
    # PyIceberg retries a failed commit on the new state unless told not to;
    # without retries the losing writer sees the conflict.
    t = dev.create_table("sales.events", schema=rows(1).schema, properties={"commit.retry.num-retries": "0"})
    t.append(rows(1, 2))
    first = t.current_snapshot().snapshot_id
    cli(s, keys["admin"], "tag", "create", "ev1", "--from-ref", "alice.dev")
    t.append(rows(3))
    t = dev.load_table("sales.events")
    assert len(t.snapshots()) == 2
    assert t.scan().to_arrow().num_rows == 3

    # Time travel by snapshot id, and through the tag's catalog.
    assert sorted(t.scan(snapshot_id=first).to_arrow().column("id").to_pylist()) == [1, 2]
    tagged = catalog(s, keys["alice"], "ev1").load_table("sales.events")
    assert sorted(tagged.scan().to_arrow().column("id").to_pylist()) == [1, 2]

    # Two writers from the same state: one wins, the other must reload.
    a = catalog(s, keys["alice"], "alice.dev").load_table("sales.events")
    b = catalog(s, keys["alice"], "alice.dev").load_table("sales.events")
    results = {}

    def append(name, tbl, data):
        try:
            tbl.append(data)
            results[name] = "ok"
        except CommitFailedException as e:
            results[name] = e

    threads = [threading.Thread(target=append, args=("a", a, rows(10))),
               threading.Thread(target=append, args=("b", b, rows(11)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(type(v).__name__ if v != "ok" else v for v in results.values()) == ["CommitFailedException", "ok"]

    # Tags and main are read-only here.
    with pytest.raises(ForbiddenError, match="tags are read-only"):
        tagged.append(rows(99))
    on_main = catalog(s, keys["alice"], "main")
    with pytest.raises(ForbiddenError, match="only by merge"):
        on_main.load_table("sales.orders").append(rows(99))
    with pytest.raises(ForbiddenError, match="only by merge"):
        on_main.create_namespace("nope")

    # The branch holds PyIceberg's rows for every lakehouse client, and a
    # merge brings them to main.
    q = "SELECT count(*) AS n, CAST(sum(id) AS BIGINT) AS s FROM sales.events"
    want = [{"n": 4, "s": 1 + 2 + 3 + (10 if results["a"] == "ok" else 11)}]
    assert json.loads(cli(s, keys["alice"], "-O", "json", "query", "-r", "alice.dev", q)) == want
    log = json.loads(cli(s, keys["alice"], "-O", "json", "log", "alice.dev"))
    assert log[0]["author"] == "alice"
    cli(s, keys["alice"], "merge", "alice.dev", "--into", "main")
    assert json.loads(cli(s, keys["alice"], "-O", "json", "query", "-r", "main", q)) == want
    assert catalog(s, keys["alice"], "main").load_table("sales.events").scan().to_arrow().num_rows == 4


def duckdb_with_iceberg():
    """A DuckDB with the iceberg extension of PyPI's duckdb-ext-iceberg (and
    the avro and httpfs extensions it needs, from duckdb-ext-avro and
    duckdb-ext-httpfs), loaded from their files: nothing is downloaded."""
    import duckdb
    import site

    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"})
    for name in ("avro", "httpfs", "iceberg"):
        paths = [os.path.join(p, "duckdb_ext", "extensions", "v" + duckdb.__version__, "linux_amd64", name + ".duckdb_extension")
                 for p in site.getsitepackages()]
        path = next((p for p in paths if os.path.exists(p)), None)
        assert path, f"the {name} extension is not installed: pip install duckdb-ext-{name}=={duckdb.__version__}.20260205"
        con.execute(f"LOAD '{path}'")
    return con


def test_duckdb_reads_refs(served):
    s, keys = served
    # Two refs whose sales.orders differ: a branch with a row more than main.
    cli(s, keys["alice"], "branch", "create", "alice.duck", "--from-ref", "main")
    catalog(s, keys["alice"], "alice.duck").load_table("sales.orders").append(
        pa.table({"id": pa.array([4], pa.int64()), "amount": pa.array([40.0], pa.float64())}))
    con = duckdb_with_iceberg()
    # The configuration docs/clients/duckdb.md shows.
    con.execute(f"CREATE SECRET lakehouse (TYPE iceberg, TOKEN '{keys['alice']}')")
    seen = {}
    for ref, alias in (("main", "lh_main"), ("alice.duck", "lh_duck")):
        con.execute(f"ATTACH '{ref}' AS {alias} (TYPE iceberg, ENDPOINT 'http://{s.http}/iceberg/{ref}', SECRET lakehouse)")
        rows = con.execute(f"SELECT id, amount FROM {alias}.sales.orders ORDER BY id").fetchall()
        got = [{"id": i, "amount": a} for i, a in rows]
        want = json.loads(cli(s, keys["alice"], "-O", "json", "query", "-r", ref,
                              "SELECT id, amount FROM sales.orders ORDER BY id"))
        assert got == want, ref
        seen[ref] = len(got)
    assert seen == {"main": 3, "alice.duck": 4}
