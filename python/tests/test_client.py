"""lakehouse.Client against a real `lakehouse serve` (the `server` fixture
in conftest.py starts one on loopback ports over a temporary data dir).

Each test works on its own branches (named after the test), so they share
one server and run in any order.
"""

import json
import os
import resource
import socket
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as fl
import pytest

import lakehouse
from lakehouse import client as lc
from lakehouse.results import Branch, Commit, DiffResult, MergeResult, Tag


@pytest.fixture(scope="module")
def c(server):
    with lakehouse.Client(server.addr) as client:
        yield client


# --- construction ---------------------------------------------------------


def test_import_lakehouse_stays_free_of_pyarrow():
    code = (
        "import sys, lakehouse\n"
        "assert 'pyarrow' not in sys.modules\n"
        "assert issubclass(lakehouse.NotFoundError, lakehouse.LakehouseError)\n"
        "assert 'pyarrow' not in sys.modules\n"
        "lakehouse.Client\n"
        "assert 'pyarrow.flight' in sys.modules\n"
        "assert 'Client' in dir(lakehouse)\n"
    )
    root = os.path.join(os.path.dirname(__file__), "..")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=root))


@pytest.mark.parametrize(
    "addr,location,tls",
    [
        ("127.0.0.1:8815", "grpc://127.0.0.1:8815", False),
        ("grpc://host:1", "grpc://host:1", False),
        ("grpc+tcp://host:1", "grpc://host:1", False),
        ("grpc+tls://host:443", "grpc+tls://host:443", True),
        (" localhost:9 ", "grpc://localhost:9", False),
    ],
)
def test_parse_addr(addr, location, tls):
    assert lc.parse_addr(addr) == (location, tls)


@pytest.mark.parametrize("addr", ["", "http://h:1", "host", "grpc://", "h:1/x", "a b:1"])
def test_parse_addr_rejects(addr):
    with pytest.raises(lakehouse.InvalidArgumentError) as e:
        lc.parse_addr(addr)
    assert "grpc+tls://" in e.value.hint


def test_no_address_says_how_to_start_a_server(monkeypatch, tmp_path):
    monkeypatch.delenv("LAKEHOUSE_ADDR", raising=False)
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    with pytest.raises(lakehouse.InvalidArgumentError) as e:
        lakehouse.Client()
    assert "lakehouse serve" in e.value.hint and "LAKEHOUSE_ADDR" in e.value.hint


def test_address_and_key_from_env_then_profile(monkeypatch, tmp_path, server):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LAKEHOUSE_API_KEY", raising=False)
    monkeypatch.delenv("LAKEHOUSE_PROFILE", raising=False)
    # the environment
    monkeypatch.setenv("LAKEHOUSE_ADDR", server.addr)
    monkeypatch.setenv("LAKEHOUSE_API_KEY", "env-key")
    with lakehouse.Client() as cl:
        assert cl.addr == server.addr and cl._api_key == "env-key"
        assert cl.get_branch("main").name == "main"
    # the profile, named by LAKEHOUSE_PROFILE
    monkeypatch.delenv("LAKEHOUSE_ADDR")
    monkeypatch.delenv("LAKEHOUSE_API_KEY")
    (tmp_path / "profiles.json").write_text(json.dumps({
        "default": {"addr": "127.0.0.1:1"},
        "ci": {"addr": server.addr, "api_key": "profile-key", "namespace": "sales", "user": "ci-bot"},
    }))
    monkeypatch.setenv("LAKEHOUSE_PROFILE", "ci")
    with lakehouse.Client() as cl:
        assert (cl.addr, cl._api_key, cl._namespace, cl._author) == (server.addr, "profile-key", "sales", "ci-bot")
    monkeypatch.delenv("LAKEHOUSE_PROFILE")
    assert lakehouse.Client().addr == "127.0.0.1:1"
    assert lakehouse.Client(profile="ci").addr == server.addr
    # arguments win
    assert lakehouse.Client("h:2", api_key="k", profile="ci")._api_key == "k"


def test_bad_profile_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LAKEHOUSE_ADDR", raising=False)
    (tmp_path / "profiles.json").write_text("{not json")
    with pytest.raises(lakehouse.InvalidArgumentError):
        lakehouse.Client()


def test_info(c):
    info = c.info()
    assert info["role"] == "all" and "version" in info
    assert repr(c) == "lakehouse.Client(%r)" % c.addr


# --- branches, tags, commits ----------------------------------------------


def test_branches(c):
    b = c.create_branch("py.branches", from_ref="main")
    assert isinstance(b, Branch) and b.name == "py.branches"
    assert b.head == c.get_branch("main").head and isinstance(b.commit, Commit)
    assert c.has_branch("py.branches") and not c.has_branch("py.nope")
    assert "py.branches" in [x.name for x in c.get_branches()]
    assert c.get_branch("py.branches") == b
    r = c.rename_branch("py.branches", "py.renamed")
    assert r.name == "py.renamed" and r.head == b.head
    assert not c.has_branch("py.branches")
    assert c.delete_branch("py.renamed") is True
    assert not c.has_branch("py.renamed")


def test_merge_and_commits(c):
    c.create_branch("py.merge")
    commit = c.create_namespace("py_merge_ns", "py.merge", message="a namespace for the merge test")
    assert isinstance(commit, Commit) and commit.message == "a namespace for the merge test"
    assert c.has_namespace("py_merge_ns", ref="py.merge") and not c.has_namespace("py_merge_ns")
    log = c.get_commits("py.merge", limit=2)
    assert [x.id for x in log][:1] == [commit.id] and len(log) <= 2
    assert log[0].time is not None and log[0].time.tzinfo is not None
    assert c.get_commit("py.merge") == commit

    d = c.diff("main", "py.merge")
    assert isinstance(d, DiffResult)
    assert {"namespace": "py_merge_ns", "change": "added"} in d.namespaces
    assert d.to_commit == commit.id

    m = c.merge_branch("py.merge", into_branch="main", message="merge py.merge")
    assert isinstance(m, MergeResult) and m.outcome in ("fast-forward", "merge")
    assert c.has_namespace("py_merge_ns", ref="main")
    assert c.merge_branch("py.merge", "main").outcome == "up-to-date"


def test_tags(c):
    t = c.create_tag("py-tag", from_ref="main")
    assert isinstance(t, Tag) and t.commit == c.get_branch("main").head
    assert "py-tag" in [x.name for x in c.get_tags()] and c.has_tag("py-tag")
    assert c.get_commits("py-tag", limit=1)[0].id == t.commit
    assert c.delete_tag("py-tag") is True
    assert not c.has_tag("py-tag")
    with pytest.raises(lakehouse.NotFoundError):
        c.delete_tag("py-tag")


def test_namespaces(c):
    c.create_branch("py.ns")
    c.create_namespace("py_ns", "py.ns")
    assert "py_ns" in c.get_namespaces("py.ns") and "default" in c.get_namespaces("py.ns")
    with pytest.raises(lakehouse.AlreadyExistsError):
        c.create_namespace("py_ns", "py.ns")
    c.delete_namespace("py_ns", "py.ns")
    assert not c.has_namespace("py_ns", "py.ns")


# --- queries ---------------------------------------------------------------


def test_query(c):
    t = c.query("SELECT 1 AS a, 'x' AS b")
    assert isinstance(t, pa.Table) and t.to_pylist() == [{"a": 1, "b": "x"}]
    t = c.query("SELECT range AS n FROM range(100000)", max_rows=10)
    assert t.column("n").to_pylist() == list(range(10))
    assert c.query("SELECT range AS n FROM range(5)", max_rows=0).num_rows == 0
    assert c.query("SELECT 1 AS a WHERE false").schema.names == ["a"]
    assert c.query("SELECT 1 AS a", ref="main", namespace="default").num_rows == 1


def test_query_to_reader_streams_and_stops_early(c):
    r = c.query_to_reader("SELECT range AS n FROM range(1000000)")
    assert isinstance(r, pa.RecordBatchReader) and r.schema.names == ["n"]
    first = r.read_next_batch()
    assert first.num_rows > 0 and first.column(0)[0].as_py() == 0
    r.close()  # cancels the stream; the server goes on serving
    r = c.query_to_reader("SELECT range AS n FROM range(10)", max_rows=3)
    assert r.read_all().num_rows == 3
    assert c.query("SELECT 2 AS x").to_pylist() == [{"x": 2}]


def test_scan_sql_quotes_identifiers():
    assert lc.QueryMixin is not None
    from lakehouse._query import scan_sql

    assert scan_sql("t") == 'SELECT * FROM "t"'
    assert scan_sql("sales.orders", ["id", 'we"ird'], "usd > 1", limit=5) == (
        'SELECT "id", "we""ird" FROM "sales"."orders" WHERE usd > 1 LIMIT 5'
    )
    assert scan_sql("t", "id") == 'SELECT "id" FROM "t"'
    with pytest.raises(lakehouse.InvalidArgumentError):
        scan_sql("")


def test_explain(c):
    e = c.explain("SELECT 1 AS a")
    assert isinstance(e["text"], str) and e["text"]
    assert "plan" in e


def rss_bytes():
    """The process's resident set size now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_stream_10m_rows_with_bounded_memory(c):
    # 10M rows x 4 int64 columns: 320 MB of result, read batch by batch.
    sql = "SELECT range AS a, range*2 AS b, range*3 AS c, range*4 AS d FROM range(10000000)"
    base = rss_bytes()
    rows = total = growth = batches = 0
    checksum = 0
    for batch in c.query_to_reader(sql):
        rows += batch.num_rows
        total += batch.nbytes
        batches += 1
        checksum += pc.sum(batch.column("d")).as_py()
        growth = max(growth, rss_bytes() - base)
        del batch
    assert rows == 10_000_000 and total == 320_000_000
    assert checksum == 4 * (10_000_000 * 9_999_999 // 2)
    assert batches >= 20  # it came in pieces (256K rows, 8 MiB, each from the server)
    # A few batches (8 MiB each) and gRPC's window at a time, never the
    # whole result.
    assert growth < 100 << 20, "RSS grew by %d bytes while streaming 320 MB" % growth


# --- errors ----------------------------------------------------------------


def test_errors_from_the_server(c):
    cases = [
        (lambda: c.get_branch("py.missing"), lakehouse.NotFoundError, "not_found", "lakehouse branch create"),
        (lambda: c.get_branch("nodot"), lakehouse.InvalidArgumentError, "invalid_argument", "<user>.<name>"),
        (lambda: c.delete_branch("main"), lakehouse.FailedPreconditionError, "failed_precondition", None),
        (lambda: c.create_namespace("x", "main"), lakehouse.FailedPreconditionError, "failed_precondition",
         "merge"),
        (lambda: c.query("SELECT * FROM no_such_table"), lakehouse.NotFoundError, "not_found", "table ls"),
        (lambda: c.query("SELEKT 1"), lakehouse.InvalidArgumentError, "invalid_argument", None),
        (lambda: c.get_table("no_such_table"), lakehouse.NotFoundError, "not_found", None),
        (lambda: c.get_commits("py.nothere"), lakehouse.NotFoundError, "not_found", None),
        (lambda: c.diff("main", "@00000000"), lakehouse.LakehouseError, None, None),
    ]
    for fn, cls, class_name, hint in cases:
        with pytest.raises(cls) as e:
            fn()
        err = e.value
        assert isinstance(err, lakehouse.LakehouseError)
        assert "lakehouse-error" not in err.message and "Flight returned" not in err.message, err.message
        if class_name:
            assert err.class_name == class_name
        if hint:
            assert hint in err.hint, err.hint
            assert str(err).endswith("hint: " + err.hint)


def test_already_exists(c):
    c.create_branch("py.twice")
    with pytest.raises(lakehouse.AlreadyExistsError) as e:
        c.create_branch("py.twice")
    assert e.value.class_name == "already_exists" and e.value.exit_code == 4


def test_unknown_action_is_invalid_argument(c):
    with pytest.raises(lakehouse.InvalidArgumentError) as e:
        c._call("NoSuchAction")
    assert "ListBranches" in e.value.hint


def test_server_down_is_unavailable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with lakehouse.Client("127.0.0.1:%d" % port) as cl:
        for fn in (cl.get_branches, lambda: cl.query("SELECT 1")):
            with pytest.raises(lakehouse.UnavailableError) as e:
                fn()
            assert "lakehouse serve" in e.value.hint and e.value.exit_code == 6


@pytest.mark.parametrize(
    "class_name,cls",
    [
        ("not_found", lakehouse.NotFoundError),
        ("already_exists", lakehouse.AlreadyExistsError),
        ("invalid_argument", lakehouse.InvalidArgumentError),
        ("conflict", lakehouse.ConflictError),
        ("failed_precondition", lakehouse.FailedPreconditionError),
        ("permission_denied", lakehouse.PermissionDeniedError),
        ("unauthenticated", lakehouse.UnauthenticatedError),
        ("unavailable", lakehouse.UnavailableError),
        ("data_loss", lakehouse.DataLossError),
        ("internal", lakehouse.InternalError),
        ("from_the_future", lakehouse.InternalError),
    ],
)
def test_marker_maps_every_class(class_name, cls):
    # The marker decides the class whatever pyarrow type carried it.
    info = json.dumps({"class": class_name, "hint": "do \"this\"\nthen that"})
    for exc_type in (fl.FlightServerError, fl.FlightInternalError, pa.ArrowInvalid, pa.ArrowException):
        e = exc_type("Flight returned some error, with message: it broke\nlakehouse-error: %s. gRPC client debug "
                     "context: {}" % info)
        err = lc.convert_error(e, "h:1")
        assert type(err) is cls
        assert err.message == "it broke" and err.hint == 'do "this"\nthen that'


@pytest.mark.parametrize(
    "exc,cls",
    [
        (fl.FlightUnavailableError("connection refused"), lakehouse.UnavailableError),
        (fl.FlightTimedOutError("deadline"), lakehouse.UnavailableError),
        (fl.FlightUnauthenticatedError("no key"), lakehouse.UnauthenticatedError),
        (fl.FlightUnauthorizedError("denied"), lakehouse.PermissionDeniedError),
        (fl.FlightInternalError("boom"), lakehouse.InternalError),
        (pa.ArrowKeyError("Flight returned not found error, with message: gone"), lakehouse.NotFoundError),
        (pa.ArrowInvalid("bad"), lakehouse.InvalidArgumentError),
        (fl.FlightServerError("odd"), lakehouse.InternalError),
    ],
)
def test_errors_without_marker_map_by_status(exc, cls):
    err = lc.convert_error(exc, "h:1")
    assert type(err) is cls and "with message" not in err.message
    if cls is lakehouse.UnavailableError:
        assert "h:1" in err.message and "lakehouse serve" in err.hint


# --- TLS -------------------------------------------------------------------


def test_tls_server(lakehouse_bin, tmp_path, monkeypatch):
    # A self-signed certificate for 127.0.0.1; the client trusts it through
    # tls_root_certs (a path or the PEM bytes).
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    from conftest import Server

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    s = Server(lakehouse_bin, str(data_dir), ["--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        assert s.addr.startswith("grpc+tls://127.0.0.1:")
        with lakehouse.Client(s.addr, tls_root_certs=str(cert)) as cl:
            assert cl.get_branch("main").name == "main"
            assert cl.query("SELECT 42 AS x").to_pylist() == [{"x": 42}]
        with lakehouse.Client(s.addr, tls_root_certs=cert.read_bytes()) as cl:
            assert cl.has_branch("main")
        monkeypatch.setenv("LAKEHOUSE_TLS_CA", str(cert))
        with lakehouse.Client(s.addr) as cl:
            assert cl.has_branch("main")
        monkeypatch.delenv("LAKEHOUSE_TLS_CA")
        # Without the CA the handshake fails: the server is unreachable.
        with lakehouse.Client(s.addr) as cl:
            with pytest.raises(lakehouse.UnavailableError):
                cl.get_branches()
    finally:
        s.stop()
