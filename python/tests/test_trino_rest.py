"""Trino's Iceberg connector against a real `lakehouse serve` with API
keys, through the Iceberg REST catalog at http://<http-addr>/iceberg/<ref>,
over an S3 warehouse (a private MinIO). The catalog properties are the ones
docs/clients/trino.md shows: one Trino catalog per ref (main, a branch, a
tag).

Needs a Trino server unpacked at $LAKEHOUSE_TRINO_HOME (its lib/, bin/ and
plugin/iceberg/; scripts/test.sh fetches it once into the test cache), a
Java 24 or later for it ($LAKEHOUSE_TRINO_JAVA_HOME, default the newest
Temurin of 24 or later in /usr/lib/jvm) and MinIO ($LAKEHOUSE_MINIO). Without them the test fails
saying what is missing.

One Trino (1 GiB heap) serves every test of the module."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from test_iceberg_rest import cli, orders_server

TRINO_VERSION = "476"
JVMS = "/usr/lib/jvm"
BUCKET = "lakehouse"
AWS = {"AWS_ACCESS_KEY_ID": "lakehouse-test", "AWS_SECRET_ACCESS_KEY": "lakehouse-test-secret",
       "AWS_REGION": "us-east-1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, ok, log, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ok():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not start:\n" + open(log).read()[-4000:])


def stop(proc):
    """Stops a process by its pid (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def newest_temurin():
    """The newest Temurin JDK of version 24 or later in /usr/lib/jvm, or
    None."""
    found = []
    for name in os.listdir(JVMS) if os.path.isdir(JVMS) else ():
        m = re.fullmatch(r"temurin-(\d+)-jdk-.*", name)
        if m and int(m.group(1)) >= 24:
            found.append((int(m.group(1)), os.path.join(JVMS, name)))
    return max(found)[1] if found else None


def requirements():
    """The Trino home, its Java and MinIO, or a test failure saying what is
    missing."""
    home = os.environ.get("LAKEHOUSE_TRINO_HOME", "")
    if not home or not os.path.isfile(os.path.join(home, "bin", "launcher")) or \
            not os.path.isdir(os.path.join(home, "plugin", "iceberg")):
        pytest.fail(f"LAKEHOUSE_TRINO_HOME={home!r} is not an unpacked trino-server-{TRINO_VERSION} with "
                    "plugin/iceberg: scripts/test.sh fetches it into $LAKEHOUSE_TEST_CACHE")
    java = os.environ.get("LAKEHOUSE_TRINO_JAVA_HOME") or newest_temurin()
    if not java or not os.access(os.path.join(java, "bin", "java"), os.X_OK):
        pytest.fail(f"Trino {TRINO_VERSION} needs Java 24 or later: no {JVMS}/temurin-<24 or later>-jdk-*; "
                    "set LAKEHOUSE_TRINO_JAVA_HOME to such a JDK")
    minio = os.environ.get("LAKEHOUSE_MINIO", "")
    if not minio or not os.access(minio, os.X_OK):
        pytest.fail(f"LAKEHOUSE_MINIO={minio!r} is not MinIO's binary: scripts/test.sh installs it")
    return home, java, minio


@pytest.fixture(scope="module")
def minio_endpoint(tmp_path_factory):
    """A private MinIO on loopback with an empty bucket; stopped by pid."""
    _, _, minio = requirements()
    d = tmp_path_factory.mktemp("minio")
    os.makedirs(d / "data" / BUCKET)
    port = free_port()
    log = str(d / "minio.log")
    proc = subprocess.Popen([minio, "server", "--quiet", "--address", f"127.0.0.1:{port}",
                             "--console-address", f"127.0.0.1:{free_port()}", str(d / "data")],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, MINIO_ROOT_USER=AWS["AWS_ACCESS_KEY_ID"],
                                     MINIO_ROOT_PASSWORD=AWS["AWS_SECRET_ACCESS_KEY"]))
    endpoint = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return urllib.request.urlopen(endpoint + "/minio/health/live", timeout=2).status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for("minio", ready, log, proc, timeout=60)
        yield endpoint
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def served(lakehouse_bin, minio_endpoint):
    """A keyed server on an S3 warehouse whose main holds sales.orders (3
    rows), tagged v1; alice (a writer) has branch alice.dev."""
    init = ("--warehouse", f"s3://{BUCKET}/wh", "--s3-endpoint", minio_endpoint)
    with orders_server(lakehouse_bin, "lakehouse-pytest-trino-", tag="v1", init=init, env=AWS) as served:
        yield served


def catalog_properties(http, ref, key, s3_endpoint):
    # The properties docs/clients/trino.md shows.
    return f"""connector.name=iceberg
iceberg.catalog.type=rest
iceberg.rest-catalog.uri=http://{http}/iceberg/{ref}
iceberg.rest-catalog.security=OAUTH2
iceberg.rest-catalog.oauth2.token={key}
fs.native-s3.enabled=true
s3.endpoint={s3_endpoint}
s3.region={AWS["AWS_REGION"]}
s3.path-style-access=true
s3.aws-access-key={AWS["AWS_ACCESS_KEY_ID"]}
s3.aws-secret-key={AWS["AWS_SECRET_ACCESS_KEY"]}
"""


class Trino:
    """A single-node Trino started by the test, asked over its HTTP
    protocol (POST /v1/statement, then nextUri until done)."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}"

    def query(self, sql):
        # A coordinator that just started answers metadata queries before
        # its own node has joined the cluster as a worker: a query that
        # needs a node is asked again until one has (at most 90 s).
        deadline = time.monotonic() + 90
        while True:
            try:
                return self._query(sql)
            except RuntimeError as e:
                if "No nodes available" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _query(self, sql):
        req = urllib.request.Request(self.url + "/v1/statement", data=sql.encode(), headers={"X-Trino-User": "test"})
        rows = []
        while True:
            r = json.load(urllib.request.urlopen(req, timeout=120))
            if "error" in r:
                raise RuntimeError(r["error"]["message"])
            rows += r.get("data", [])
            if "nextUri" not in r:
                return rows
            req = urllib.request.Request(r["nextUri"], headers={"X-Trino-User": "test"})

    def started(self):
        try:
            return not json.load(urllib.request.urlopen(self.url + "/v1/info", timeout=2))["starting"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return False


@pytest.fixture(scope="module")
def trino(served, minio_endpoint, tmp_path_factory):
    """A Trino with catalogs lh_main (main), lh_dev (alice.dev) and lh_v1
    (tag v1); stopped by pid."""
    home, java, _ = requirements()
    s, keys = served
    d = tmp_path_factory.mktemp("trino")
    etc = d / "etc"
    os.makedirs(etc / "catalog")
    port = free_port()
    (etc / "node.properties").write_text(f"node.environment=test\nnode.id=lakehouse-test\nnode.data-dir={d / 'data'}\n")
    # A small heap; C1 only and the serial collector start fastest.
    (etc / "jvm.config").write_text("-server\n-Xmx1G\n-XX:+UseSerialGC\n-XX:TieredStopAtLevel=1\n"
                                    "-Djdk.attach.allowAttachSelf=true\n")
    (etc / "config.properties").write_text(
        f"coordinator=true\nnode-scheduler.include-coordinator=true\nhttp-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\nquery.max-memory=256MB\nquery.max-memory-per-node=256MB\n")
    for name, ref in (("lh_main", "main"), ("lh_dev", "alice.dev"), ("lh_v1", "v1")):
        (etc / "catalog" / f"{name}.properties").write_text(catalog_properties(s.http, ref, keys["alice"],
                                                                               minio_endpoint))
    log = str(d / "trino.log")
    proc = subprocess.Popen([os.path.join(home, "bin", "launcher"), "run", f"--etc-dir={etc}",
                             f"--data-dir={d / 'data'}"], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, JAVA_HOME=java, PATH=f"{java}/bin:" + os.environ["PATH"]))
    t = Trino(port)
    try:
        wait_for("trino", t.started, log, proc)
        yield t
    finally:
        stop(proc)


def query(s, key, ref, q):
    return json.loads(cli(s, key, "-O", "json", "query", "-r", ref, q))


def pairs(rows):
    return [[r["id"], r["amount"]] for r in rows]


def test_trino_reads_refs(served, trino):
    s, keys = served
    assert "sales" in [r[0] for r in trino.query("SHOW SCHEMAS FROM lh_main")]
    assert trino.query("SHOW TABLES FROM lh_main.sales") == [["orders"]]
    q = "SELECT id, amount FROM {}sales.orders ORDER BY id"
    want = query(s, keys["alice"], "main", q.format(""))
    assert len(want) == 3
    assert trino.query(q.format("lh_main.")) == pairs(want)
    assert trino.query(q.format("lh_v1.")) == pairs(query(s, keys["alice"], "v1", q.format("")))


def test_trino_writes_a_branch(served, trino):
    s, keys = served
    assert trino.query("INSERT INTO lh_dev.sales.orders VALUES (4, 40.0)") == [[1]]
    # The insert is a catalog commit on alice.dev, authored by the key's user.
    log = json.loads(cli(s, keys["alice"], "-O", "json", "log", "alice.dev"))
    assert log[0]["author"] == "alice"
    q = "SELECT id, amount FROM {}sales.orders ORDER BY id"
    want = query(s, keys["alice"], "alice.dev", q.format(""))
    assert [r["id"] for r in want] == [1, 2, 3, 4]
    assert trino.query(q.format("lh_dev.")) == pairs(want)

    # Time travel by snapshot id, read from the $snapshots metadata table.
    snaps = trino.query('SELECT snapshot_id FROM lh_dev.sales."orders$snapshots" ORDER BY committed_at')
    assert len(snaps) == 2
    before = trino.query(f"SELECT id FROM lh_dev.sales.orders FOR VERSION AS OF {snaps[0][0]} ORDER BY id")
    assert before == [[1], [2], [3]]

    # main takes writes only by merge; tags are read-only.
    with pytest.raises(RuntimeError, match="only by merge"):
        trino.query("INSERT INTO lh_main.sales.orders VALUES (5, 50.0)")
    with pytest.raises(RuntimeError, match="tags are read-only"):
        trino.query("INSERT INTO lh_v1.sales.orders VALUES (5, 50.0)")
    assert len(query(s, keys["alice"], "main", q.format(""))) == 3
