"""Reads back every output format of query.Write with pyarrow and pandas.

Usage: readback.py DIR. DIR holds out.csv, out.json, out.jsonl,
out.parquet, out.arrow and out.arrows, each the result of SAMPLE_SQL in
readback_test.go, and export.parquet, the same result written by DuckDB
(query.ExportParquet). Every reader's values and types are compared exactly
with EXPECTED, and the two Parquet files with each other; any difference is
printed and the exit status is 1.
"""

import datetime as dt
import decimal
import json
import math
import os
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

D = decimal.Decimal
UTC = dt.timezone.utc

# Intervals are compared as (months, days, nanoseconds).
EXPECTED = {
    "id": [1, 2, 3],
    "big": [D("12345678901234567890.123456789"), D("-1.000000000"), None],
    "small": [D("-0.50"), D("0.00"), None],
    "ts": [dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.datetime(1969, 12, 31, 23, 59, 59), None],
    "tz": [dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC), dt.datetime(2000, 1, 1, tzinfo=UTC), None],
    "iv": [(12, 2, 10804500000000), (-1, 0, 1000), None],
    "s": ["text", "", None],
    "d": [dt.date(2024, 2, 29), dt.date(1970, 1, 1), None],
}

INTERVAL_STRUCT = pa.struct([
    pa.field("months", pa.int32()),
    pa.field("days", pa.int32()),
    pa.field("nanoseconds", pa.int64()),
])

failures = []


def check(where, got, want):
    if got != want or type(got) is not type(want):
        failures.append(f"{where}: got {got!r}, want {want!r}")


def interval(v):
    """An interval as a tuple, whatever form a reader gives it in."""
    if v is None:
        return None
    if isinstance(v, str):
        v = json.loads(v)
    if isinstance(v, dict):
        return (v["months"], v["days"], v["nanoseconds"])
    return (v.months, v.days, v.nanoseconds)


def is_null(v):
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def check_values(where, col, got, convert=lambda v: v):
    got = [None if is_null(v) else convert(v) for v in got]
    want = EXPECTED[col]
    if col == "iv":
        got = [interval(v) for v in got]
    if len(got) != len(want):
        failures.append(f"{where} {col}: {len(got)} values, want {len(want)}")
        return
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, dt.datetime) and isinstance(g, dt.datetime) and (g.tzinfo is None) != (w.tzinfo is None):
            failures.append(f"{where} {col}[{i}]: {g!r} and {w!r} differ in having a zone")
            continue
        check(f"{where} {col}[{i}]", g, w)


def check_arrow_table(where, t, parquet=False):
    types = {f.name: f.type for f in t.schema}
    check(f"{where} columns", list(types), list(EXPECTED))
    want = {
        "id": pa.int32(),
        "big": pa.decimal128(38, 9),
        "small": pa.decimal128(4, 2),
        "ts": pa.timestamp("us"),
        "iv": INTERVAL_STRUCT if parquet else pa.month_day_nano_interval(),
        "s": pa.string(),
        "d": pa.date32(),
    }
    for col, typ in want.items():
        if types.get(col) != typ:
            failures.append(f"{where} {col}: type {types.get(col)}, want {typ}")
    tz = types.get("tz")
    if not (pa.types.is_timestamp(tz) and tz.unit == "us" and tz.tz):
        failures.append(f"{where} tz: type {tz}, want timestamp[us, tz=...]")
    for col in EXPECTED:
        check_values(where, col, t.column(col).to_pylist())


def check_pandas(where, df, parquet=False):
    dtypes = {c: str(df[c].dtype) for c in df.columns}
    check(f"{where} ts dtype", dtypes.get("ts"), "datetime64[us]")
    if not dtypes.get("tz", "").startswith("datetime64[us, "):
        failures.append(f"{where} tz dtype: {dtypes.get('tz')}, want datetime64[us, zone]")
    for col in EXPECTED:
        conv = lambda v: v
        if col in ("ts", "tz"):
            conv = lambda v: v.to_pydatetime()
        check_values(where, col, df[col].tolist(), conv)


def check_json_rows(where, rows):
    check(f"{where} rows", len(rows), 3)
    for col in EXPECTED:
        vals = [r.get(col) for r in rows]
        # Decimals and timestamps are strings: exact, and typed by their text.
        if col in ("big", "small"):
            for v in vals:
                if v is not None and not isinstance(v, str):
                    failures.append(f"{where} {col}: {v!r} is a {type(v).__name__}, want a string")
            check_values(where, col, vals, lambda v: D(v) if isinstance(v, str) else v)
        elif col in ("ts", "tz"):
            for v in vals:
                if v is not None and "T" not in v:
                    failures.append(f"{where} {col}: {v!r} is not RFC 3339 with a T")
            check_values(where, col, vals, dt.datetime.fromisoformat)
        elif col == "d":
            check_values(where, col, vals, dt.date.fromisoformat)
        else:
            check_values(where, col, vals)


def utc_as_utc(schema):
    """schema with its UTC time zones spelled "UTC": DuckDB names the zone
    of a TIMESTAMPTZ result by its TimeZone setting ("Etc/UTC"), which the
    Arrow writer stores; a Parquet file without an Arrow schema reads back
    as "UTC", the same instants."""
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type) and f.type.tz in ("Etc/UTC", "UTC"):
            f = f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
        fields.append(f)
    return pa.schema(fields)


def compare_parquet(arrow_written, duckdb_written):
    """The Arrow writer's file and DuckDB's hold the same columns, types and
    values."""
    a, b = pq.read_table(arrow_written), pq.read_table(duckdb_written)
    sa, sb = utc_as_utc(a.schema.remove_metadata()), utc_as_utc(b.schema.remove_metadata())
    if not sa.equals(sb):
        failures.append(f"parquet vs export.parquet schemas differ:\n{sa}\n---\n{sb}")
        return
    if a.to_pylist() != b.to_pylist():
        failures.append(f"parquet vs export.parquet values differ:\n{a.to_pylist()}\n---\n{b.to_pylist()}")


def main(d):
    path = lambda ext: os.path.join(d, "out." + ext)

    for ext in ("parquet", "export.parquet"):
        check_arrow_table(f"{ext}/pyarrow", pq.read_table(path(ext)), parquet=True)
        check_pandas(f"{ext}/pandas", pd.read_parquet(path(ext)), parquet=True)
    compare_parquet(path("parquet"), path("export.parquet"))
    with ipc.open_file(path("arrow")) as r:
        check_arrow_table("arrow/ipc.open_file", r.read_all())
    check_arrow_table("arrow/feather", feather.read_table(path("arrow")))
    check_pandas("arrow/pandas", pd.read_feather(path("arrow")))
    with ipc.open_stream(path("arrows")) as r:
        check_arrow_table("arrows/ipc.open_stream", r.read_all())

    with open(path("json")) as f:
        check_json_rows("json", json.load(f))
    with open(path("jsonl")) as f:
        check_json_rows("jsonl", [json.loads(line) for line in f])
    for ext, lines in (("json", False), ("jsonl", True)):
        df = pd.read_json(path(ext), lines=lines, dtype=False)
        check_json_rows(f"{ext}/pandas", df.astype(object).where(df.notna(), None).to_dict("records"))

    # CSV: NULL is an empty field and "" a quoted one, which pyarrow tells
    # apart when asked to; decimals are typed by the reader.
    opts = pacsv.ConvertOptions(
        strings_can_be_null=True, quoted_strings_can_be_null=False,
        column_types={"big": pa.decimal128(38, 9), "small": pa.decimal128(4, 2)})
    t = pacsv.read_csv(path("csv"), convert_options=opts)
    types = {f.name: f.type for f in t.schema}
    if not (pa.types.is_timestamp(types["ts"]) and types["ts"].tz is None):
        failures.append(f"csv/pyarrow ts: type {types['ts']}, want a timestamp without zone")
    if not (pa.types.is_timestamp(types["tz"]) and types["tz"].tz == "UTC"):
        failures.append(f"csv/pyarrow tz: type {types['tz']}, want a timestamp in UTC")
    check(f"csv/pyarrow d type", types["d"], pa.date32())
    for col in EXPECTED:
        conv = lambda v: v
        if col in ("ts", "tz"):
            conv = lambda v: v.to_pydatetime() if isinstance(v, pd.Timestamp) else v
        check_values("csv/pyarrow", col, t.column(col).to_pylist(), conv)
    # pandas reads both NULL and "" in CSV as missing: s is not compared.
    df = pd.read_csv(path("csv"), dtype={"big": str, "small": str})
    for col in ("big", "small"):
        check_values("csv/pandas", col, df[col].tolist(), D)
    for col in ("ts", "tz"):
        check_values("csv/pandas", col, pd.to_datetime(df[col], format="ISO8601").tolist(),
                     lambda v: v.to_pydatetime())

    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
