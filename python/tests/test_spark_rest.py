"""Spark 3.5 with Iceberg 1.10's runtime against a real `lakehouse serve`
with API keys, through the Iceberg REST catalog at
http://<http-addr>/iceberg/<ref>. The catalog settings are the ones
docs/clients/spark.md shows: one Spark catalog per ref (a branch, a tag and
main), `type=rest`, `uri`, `token`.

Needs pyspark (pinned in scripts/test.sh), a Java for it (JAVA_HOME or
`java` on PATH) and the Iceberg Spark runtime jar, whose path is
$LAKEHOUSE_ICEBERG_SPARK_JAR (scripts/test.sh fetches it once into the test
cache). Without them the test fails saying what is missing.

One SparkSession (local[1], 512 MiB) serves every test of the module."""

import json
import os
import shutil

import pytest

from test_iceberg_rest import cli, orders_server

JAR_ENV = "LAKEHOUSE_ICEBERG_SPARK_JAR"
RUNTIME = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0"


@pytest.fixture(scope="module")
def served(lakehouse_bin):
    """A keyed server whose main holds sales.orders (3 rows), tagged v1;
    alice (a writer) has branch alice.dev."""
    with orders_server(lakehouse_bin, "lakehouse-pytest-spark-", tag="v1") as served:
        yield served


def iceberg_jar():
    jar = os.environ.get(JAR_ENV, "")
    if not jar or not os.path.isfile(jar):
        pytest.fail(f"{JAR_ENV}={jar!r} is not the Iceberg Spark runtime jar ({RUNTIME}): "
                    "scripts/test.sh fetches it into $LAKEHOUSE_TEST_CACHE/jars; or set it to a downloaded copy")
    return jar


@pytest.fixture(scope="module")
def spark(served):
    """One local SparkSession with the catalogs of docs/clients/spark.md:
    lh_main (main), lh_dev (alice.dev) and lh_v1 (tag v1)."""
    jar = iceberg_jar()
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        pytest.fail(f"pyspark is not installed ({e}): pip install pyspark==3.5.8 (scripts/test.sh does)")
    if not os.environ.get("JAVA_HOME") and not shutil.which("java"):
        pytest.fail("Spark needs a Java 17: set JAVA_HOME or put java on PATH (apt-get install openjdk-17-jre-headless)")
    s, keys = served
    # Spark's driver binds to loopback only.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    b = (SparkSession.builder.master("local[1]").appName("lakehouse-spark-rest")
         .config("spark.jars", jar)
         .config("spark.driver.memory", "512m")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "1")
         # A short session: C1 only, no whole-stage code generation (both
         # cost more than they save on a few rows).
         .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
         .config("spark.sql.codegen.wholeStage", "false")
         # The configuration docs/clients/spark.md shows.
         .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"))
    for name, ref in (("lh_main", "main"), ("lh_dev", "alice.dev"), ("lh_v1", "v1")):
        b = (b.config(f"spark.sql.catalog.{name}", "org.apache.iceberg.spark.SparkCatalog")
             .config(f"spark.sql.catalog.{name}.type", "rest")
             .config(f"spark.sql.catalog.{name}.uri", f"http://{s.http}/iceberg/{ref}")
             .config(f"spark.sql.catalog.{name}.token", keys["alice"]))
    session = b.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def sql(spark, q):
    return [r.asDict() for r in spark.sql(q).collect()]


def query(s, key, ref, q):
    return json.loads(cli(s, key, "-O", "json", "query", "-r", ref, q))


def test_spark_reads_refs(served, spark):
    s, keys = served
    assert {r["namespace"] for r in sql(spark, "SHOW NAMESPACES IN lh_main")} >= {"sales"}
    assert [r["tableName"] for r in sql(spark, "SHOW TABLES IN lh_main.sales")] == ["orders"]
    q = "SELECT id, amount FROM {}sales.orders ORDER BY id"
    want = query(s, keys["alice"], "main", q.format(""))
    assert len(want) == 3
    assert sql(spark, q.format("lh_main.")) == want
    assert sql(spark, q.format("lh_v1.")) == query(s, keys["alice"], "v1", q.format(""))


def test_spark_writes_a_branch(served, spark):
    s, keys = served
    spark.sql("INSERT INTO lh_dev.sales.orders VALUES (4, 40.0)")
    # The insert is a catalog commit on alice.dev, authored by the key's user.
    log = json.loads(cli(s, keys["alice"], "-O", "json", "log", "alice.dev"))
    assert log[0]["author"] == "alice"
    q = "SELECT id, amount FROM {}sales.orders ORDER BY id"
    want = query(s, keys["alice"], "alice.dev", q.format(""))
    assert [r["id"] for r in want] == [1, 2, 3, 4]
    assert sql(spark, q.format("lh_dev.")) == want

    # Time travel by snapshot id, read from the snapshots metadata table.
    snaps = sql(spark, "SELECT snapshot_id FROM lh_dev.sales.orders.snapshots ORDER BY committed_at")
    assert len(snaps) == 2
    before = sql(spark, f"SELECT id FROM lh_dev.sales.orders VERSION AS OF {snaps[0]['snapshot_id']} ORDER BY id")
    assert [r["id"] for r in before] == [1, 2, 3]

    # main takes writes only by merge; tags are read-only.
    with pytest.raises(Exception, match="only by merge"):
        spark.sql("INSERT INTO lh_main.sales.orders VALUES (5, 50.0)")
    with pytest.raises(Exception, match="tags are read-only"):
        spark.sql("INSERT INTO lh_v1.sales.orders VALUES (5, 50.0)")
    assert len(query(s, keys["alice"], "main", q.format(""))) == 3
