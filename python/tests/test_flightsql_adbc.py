"""The ADBC Flight SQL driver (PyPI's adbc_driver_flightsql) against a
real `lakehouse serve`: catalogs are refs, schemas namespaces; queries run
at the ref a connection chooses and give what `lakehouse query` gives.
The snippets of docs/clients/adbc.md, run."""

import json
import shutil
import tempfile

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pytest

from conftest import Server

BRANCH = "pytest.adbc"
TAG = "pytest-adbc-v1"
SQL = "SELECT id, name FROM adbc.t ORDER BY id"


@pytest.fixture(scope="module")
def server(lakehouse_bin):
    """A server of this module's own, so that its refs show in no other
    test's listings."""
    data_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-adbc-")
    s = Server(lakehouse_bin, data_dir)
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def refs(server, tmp_path_factory):
    """A namespace adbc with a table t of 2 rows at the tag and 3 rows on
    the branch; main has neither."""
    d = tmp_path_factory.mktemp("adbc")
    (d / "a.csv").write_text("id,name\n1,a\n2,b\n")
    (d / "b.csv").write_text("id,name\n3,c\n")
    for args in (
        ["branch", "create", BRANCH],
        ["namespace", "create", "adbc", "-b", BRANCH],
        ["table", "import", "adbc.t", "--from", str(d / "a.csv"), "-b", BRANCH],
        ["tag", "create", TAG, "--from-ref", BRANCH],
        ["table", "import", "adbc.t", "--from", str(d / "b.csv"), "-b", BRANCH],
    ):
        server.lakehouse(*args)
    return server


def cli_rows(server, ref, sql=SQL):
    """The rows `lakehouse query -O json` prints, as tuples."""
    out = server.lakehouse("query", sql, "-r", ref, "-O", "json").stdout
    return [tuple(r.values()) for r in json.loads(out)]


def test_get_objects_lists_refs_namespaces_and_tables(refs):
    with flight_sql.connect(refs.addr) as conn:
        objs = conn.adbc_get_objects().read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objs}
        assert {"main", BRANCH, TAG} <= set(catalogs)
        schemas = {s["db_schema_name"]: s for s in catalogs[BRANCH]["catalog_db_schemas"]}
        assert "adbc" in schemas and "default" in schemas
        [table] = schemas["adbc"]["db_schema_tables"]
        assert table["table_name"] == "t" and table["table_type"] == "TABLE"
        assert [c["column_name"] for c in table["table_columns"]] == ["id", "name"]
        # main has no namespace adbc.
        assert "adbc" not in {s["db_schema_name"] for s in catalogs["main"]["catalog_db_schemas"]}
        assert conn.adbc_get_table_types() == ["TABLE"]
        schema = conn.adbc_get_table_schema("t", catalog_filter=BRANCH, db_schema_filter="adbc")
        assert schema.names == ["id", "name"]


def test_queries_at_two_refs_by_header(refs):
    for ref in (BRANCH, TAG):
        # docs/clients/adbc.md: the ref as a call header.
        with flight_sql.connect(refs.addr, db_kwargs={
            "adbc.flight.sql.rpc.call_header.lakehouse-ref": ref,
        }) as conn:
            with conn.cursor() as cur:
                cur.execute(SQL)
                assert cur.fetchall() == cli_rows(refs, ref)
    assert cli_rows(refs, BRANCH) == [(1, "a"), (2, "b"), (3, "c")]
    assert cli_rows(refs, TAG) == [(1, "a"), (2, "b")]


def test_queries_at_two_refs_by_current_catalog(refs):
    # docs/clients/adbc.md: the ref as the connection's current catalog
    # (a session option, kept in a cookie).
    with flight_sql.connect(refs.addr, db_kwargs={
        "adbc.flight.sql.rpc.with_cookie_middleware": "true",
    }) as conn:
        assert conn.adbc_current_catalog == "main"
        for ref in (TAG, BRANCH):
            conn.adbc_current_catalog = ref
            conn.adbc_current_db_schema = "adbc"
            assert (conn.adbc_current_catalog, conn.adbc_current_db_schema) == (ref, "adbc")
            with conn.cursor() as cur:
                cur.execute("SELECT id, name FROM t ORDER BY id")  # the namespace is the current schema
                assert cur.fetchall() == cli_rows(refs, ref)
        with pytest.raises(adbc_driver_manager.Error) as e:
            conn.adbc_current_catalog = "pytest.nosuch"
        assert "pytest.nosuch" in str(e.value)
        assert conn.adbc_current_catalog == BRANCH


def test_commit_as_catalog(refs):
    head = json.loads(refs.lakehouse("-O", "json", "log", TAG, "-n", "1").stdout)[0]["id"]
    ref = "@" + head[:12]
    with flight_sql.connect(refs.addr, db_kwargs={"adbc.flight.sql.rpc.call_header.lakehouse-ref": ref}) as conn:
        with conn.cursor() as cur:
            cur.execute(SQL)
            assert cur.fetchall() == cli_rows(refs, TAG)


def test_prepared_statement_with_parameters(refs):
    with flight_sql.connect(refs.addr, db_kwargs={
        "adbc.flight.sql.rpc.call_header.lakehouse-ref": BRANCH,
    }) as conn:
        with conn.cursor() as cur:
            sql = "SELECT name FROM adbc.t WHERE id >= ? AND name <> ? ORDER BY id"
            cur.adbc_prepare(sql)
            cur.execute(sql, parameters=(2, "c"))
            assert cur.fetchall() == [("b",)]
            cur.execute(sql, parameters=(1, "it's"))
            assert cur.fetchall() == [("a",), ("b",), ("c",)]
            table = cur.execute("SELECT count(*) AS n FROM adbc.t").fetch_arrow_table()
            assert table.to_pylist() == [{"n": 3}]


def test_updates_are_refused(refs):
    with flight_sql.connect(refs.addr) as conn:
        with conn.cursor() as cur:
            cur.adbc_statement.set_sql_query("INSERT INTO adbc.t VALUES (9, 'z')")
            with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
                cur.adbc_statement.execute_update()
            assert "read-only" in str(e.value)
            with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
                cur.execute("DELETE FROM adbc.t")
            assert "only SELECT" in str(e.value)
            with pytest.raises(adbc_driver_manager.Error) as e:
                cur.adbc_ingest("t", pa.table({"id": [9], "name": ["z"]}), mode="append", db_schema_name="adbc")
            assert "read-only" in str(e.value)
    # Nothing changed.
    assert cli_rows(refs, BRANCH) == [(1, "a"), (2, "b"), (3, "c")]
