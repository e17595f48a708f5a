"""lakehouse.Client tables and imports against a real server."""

import os
import time

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import lakehouse
from lakehouse.results import Commit, ImportResult, Table, TableSummary


@pytest.fixture(scope="module")
def c(server):
    with lakehouse.Client(server.addr) as client:
        yield client


def orders(n, start=0):
    return pa.table({
        "id": pa.array(range(start, start + n), pa.int64()),
        "country": pa.array([["IT", "FR", "DE"][i % 3] for i in range(start, start + n)]),
        "usd": pa.array([float(i % 100) for i in range(start, start + n)]),
    })


def test_import_files_and_tables(c, tmp_path):
    c.create_branch("py.imports")
    c.create_namespace("sales", "py.imports")
    pq.write_table(orders(1000), tmp_path / "a.parquet")
    pcsv.write_csv(orders(500, 1000), tmp_path / "b.csv")

    r = c.import_data("sales.orders", str(tmp_path / "a.parquet"), branch="py.imports")
    assert isinstance(r, ImportResult) and r.created and r.rows == 1000
    assert r.imported == [str(tmp_path / "a.parquet")] and isinstance(r.commit, Commit)

    # a file already imported is skipped; the CSV is appended
    r = c.import_data("orders", [tmp_path / "a.parquet", tmp_path / "b.csv"], branch="py.imports",
                      namespace="sales")
    assert not r.created and r.rows == 500
    assert r.skipped == [str(tmp_path / "a.parquet")] and r.imported == [str(tmp_path / "b.csv")]

    # a pyarrow.Table
    r = c.import_data("sales.orders", orders(10, 1500), branch="py.imports")
    assert r.rows == 10

    assert c.query("SELECT count(*) AS n FROM sales.orders", ref="py.imports").column("n")[0].as_py() == 1510
    assert c.has_table("sales.orders", ref="py.imports") and not c.has_table("sales.orders", ref="main")
    ts = c.get_tables("py.imports", namespace="sales")
    assert [t.fqn for t in ts] == ["sales.orders"] and isinstance(ts[0], TableSummary)
    t = c.get_table("orders", ref="py.imports", namespace="sales")
    assert isinstance(t, Table) and t.columns == ["id", "country", "usd"] and t.row_count == 1510

    s = c.scan("sales.orders", columns=["id", "usd"], filter="country = 'IT' AND id < 30", ref="py.imports")
    assert s.schema.names == ["id", "usd"] and s.column("id").to_pylist() == list(range(0, 30, 3))

    hist = c.get_table_history("sales.orders", ref="py.imports")
    assert len(hist) == 3 and all(isinstance(h["commit"], Commit) for h in hist)


def test_import_directory_glob_replace_and_partitions(c, tmp_path):
    c.create_branch("py.dirs")
    d = tmp_path / "parts"
    d.mkdir()
    for i in range(3):
        pq.write_table(orders(100, i * 100), d / ("p%d.parquet" % i))
    r = c.import_data("events", str(d), branch="py.dirs", partitioned_by=["country"])
    assert r.rows == 300 and len(r.imported) == 3
    assert [p["source"] for p in c.get_table("events", ref="py.dirs").partition_spec] == ["country"]
    r = c.import_data("events", str(d / "p1.*"), branch="py.dirs", mode="replace")
    assert r.rows == 100
    assert c.query("SELECT count(*) AS n FROM events", ref="py.dirs").column("n")[0].as_py() == 100
    with pytest.raises(lakehouse.InvalidArgumentError):
        c.import_data("events", orders(1), branch="py.dirs", mode="upsert")
    with pytest.raises(lakehouse.NotFoundError):
        c.import_data("events", str(tmp_path / "missing.parquet"), branch="py.dirs")


def test_schema_conflict_is_an_error(c):
    c.create_branch("py.schema")
    c.import_data("t", orders(5), branch="py.schema")
    head = c.get_branch("py.schema").head
    with pytest.raises(lakehouse.LakehouseError) as e:
        c.import_data("t", pa.table({"id": pa.array(["not", "an", "int"])}), branch="py.schema")
    assert e.value.class_name in ("invalid_argument", "failed_precondition", "conflict")
    assert c.get_branch("py.schema").head == head


def test_revert_and_delete_table(c):
    c.create_branch("py.revert")
    c.import_data("r", orders(5), branch="py.revert")
    before = c.get_branch("py.revert").head
    c.import_data("r", orders(5, 5), branch="py.revert")
    commit = c.revert_table("r", source_ref="@" + before, into_branch="py.revert")
    assert isinstance(commit, Commit)
    assert c.query("SELECT count(*) AS n FROM r", ref="py.revert").column("n")[0].as_py() == 5
    c.delete_table("r", branch="py.revert")
    assert not c.has_table("r", ref="py.revert")


def test_conflict_and_failed_precondition(c):
    c.create_branch("py.base")
    c.create_namespace("conf", "py.base")
    c.import_data("conf.t", orders(5), branch="py.base")
    c.merge_branch("py.base", "main")
    c.create_branch("py.left")
    c.create_branch("py.right")
    # appends on both sides combine; two replaces conflict
    c.import_data("conf.t", orders(5, 5), branch="py.left", mode="replace")
    c.import_data("conf.t", orders(5, 10), branch="py.right", mode="replace")
    c.merge_branch("py.left", "main")
    with pytest.raises(lakehouse.ConflictError) as e:
        c.merge_branch("py.right", "main")
    assert "conf.t" in str(e.value) and e.value.class_name == "conflict"
    with pytest.raises(lakehouse.FailedPreconditionError):
        c.delete_namespace("conf", "py.left")


def test_diff_lists_tables(c):
    c.create_branch("py.diff")
    c.import_data("d", orders(3), branch="py.diff")
    d = c.diff("main", "py.diff")
    assert any(t["table"] == "default.d" and t["change"] == "added" for t in d.tables)


def test_unreadable_file_sends_nothing(c, tmp_path):
    c.create_branch("py.badfile")
    pq.write_table(orders(5), tmp_path / "good.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "bad.csv").write_text('a,b\n1,"unterminated\n')
    head = c.get_branch("py.badfile").head
    for bad in ("bad.parquet", "bad.csv"):
        with pytest.raises(lakehouse.InvalidArgumentError) as e:
            c.import_data("t", [str(tmp_path / "good.parquet"), str(tmp_path / bad)], branch="py.badfile")
        assert bad in e.value.message
    with pytest.raises(lakehouse.InvalidArgumentError) as e:
        c.import_data("t", str(tmp_path / "notes.txt"), branch="py.badfile") if (tmp_path / "notes.txt").write_text("x") else None
    assert "unsupported" in e.value.message
    assert c.get_branch("py.badfile").head == head


def test_target_checked_before_files(c, tmp_path):
    # The server checks the branch before any file is read: the error is
    # the one an embedded import gives, whatever the files.
    missing = str(tmp_path / "missing.parquet")
    with pytest.raises(lakehouse.NotFoundError) as e:
        c.import_data("t", missing, branch="py.nosuchbranch")
    assert "py.nosuchbranch" in e.value.message
    with pytest.raises(lakehouse.LakehouseError) as e:
        c.import_data("t", missing, branch="main")
    assert "missing.parquet" not in e.value.message
