"""Queries, scans and imports of lakehouse.Client (a mixin of Client).

Queries are GetFlightInfo with the JSON query as the descriptor's command,
then DoGet of the one endpoint's ticket: batches stream as the server
produces them and nothing buffers the whole result unless the caller asks
for a pyarrow.Table. Imports DoPut the rows of each local file (read with
pyarrow, batch by batch) and then commit them with the ImportTable action.
"""

import glob
import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.flight as fl

from . import errors as _errors
from .results import ImportResult

#: Batches larger than this are sliced before a DoPut (well under the
#: 256 MiB message limit).
_MAX_PUT_BYTES = 64 << 20

_PARQUET = (".parquet", ".parq", ".pq")
_CSV = (".csv",)
_ARROW = (".arrow", ".feather", ".ipc", ".arrows")

ImportData = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], pa.Table, pa.RecordBatch,
                   pa.RecordBatchReader]


def quote_ident(name: str) -> str:
    """Quotes a SQL identifier: "name", with inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def scan_sql(table: str, columns: Optional[Sequence[str]] = None, filter: Optional[str] = None,
             limit: Optional[int] = None) -> str:
    """Builds the SELECT of a scan: quoted columns (all if None) of the
    table "name" or "namespace.name", where filter (a SQL expression)."""
    if not isinstance(table, str) or not table:
        raise _errors.InvalidArgumentError("scan needs a table name, got %r" % (table,))
    if isinstance(columns, str):
        columns = [columns]
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    sql = "SELECT %s FROM %s" % (cols, ".".join(quote_ident(p) for p in table.split(".", 1)))
    if filter:
        sql += " WHERE " + filter
    if limit is not None:
        sql += " LIMIT %d" % int(limit)
    return sql


class _Stream:
    """Yields the batches of a DoGet stream, converting errors; cancels
    the call when closed early."""

    def __init__(self, client: Any, reader: "fl.FlightStreamReader", max_rows: Optional[int]):
        self._client = client
        self._reader = reader
        self._left = max_rows

    def batches(self) -> Iterator[pa.RecordBatch]:
        done = False
        try:
            while self._left is None or self._left > 0:
                try:
                    chunk = self._reader.read_chunk()
                except StopIteration:
                    done = True
                    return
                except (pa.ArrowException, OSError) as e:
                    done = True
                    raise self._client._error(e) from None
                b = chunk.data
                if self._left is not None:
                    if b.num_rows > self._left:
                        b = b.slice(0, self._left)
                    self._left -= b.num_rows
                yield b
        finally:
            if not done:
                self._reader.cancel()


class QueryMixin:
    """The query, scan and import methods of lakehouse.Client."""

    def _query_stream(self, sql: str, ref: Optional[str], namespace: Optional[str], max_rows: Optional[int]):
        if not isinstance(sql, str) or not sql.strip():
            raise _errors.InvalidArgumentError("the query has no SQL")
        if max_rows is not None and max_rows < 0:
            raise _errors.InvalidArgumentError("max_rows must be >= 0, got %r" % (max_rows,))
        cmd: Dict[str, Any] = {"sql": sql}
        if ref:
            cmd["ref"] = ref
        if namespace:
            cmd["namespace"] = namespace
        desc = fl.FlightDescriptor.for_command(json.dumps(cmd).encode())
        try:
            info = self._flight.get_flight_info(desc, options=self._options)
            if not info.endpoints:
                raise _errors.InternalError("the server answered the query with no endpoint")
            reader = self._flight.do_get(info.endpoints[0].ticket, options=self._options)
            schema = reader.schema
        except (pa.ArrowException, OSError) as e:
            raise self._error(e) from None
        return schema, _Stream(self, reader, max_rows)

    def query_to_reader(
        self,
        sql: str,
        ref: Optional[str] = None,
        namespace: Optional[str] = None,
        max_rows: Optional[int] = None,
    ) -> pa.RecordBatchReader:
        """Runs SQL on the catalog's tables at ref (default: main) and
        returns its rows as a streaming pyarrow.RecordBatchReader: batches
        arrive as the server produces them, and only the batch being read
        is held in memory. Errors in the SQL or ref raise here
        (InvalidArgumentError, NotFoundError); errors while streaming raise
        from the reader. Closing the reader early ends the query.

        namespace: the namespace of unqualified table names (default:
            "default"). max_rows: stop after that many rows (None: all).
        """
        schema, stream = self._query_stream(sql, ref, namespace, max_rows)
        return pa.RecordBatchReader.from_batches(schema, stream.batches())

    def query(
        self,
        sql: str,
        ref: Optional[str] = None,
        namespace: Optional[str] = None,
        max_rows: Optional[int] = None,
    ) -> pa.Table:
        """Runs SQL on the catalog's tables at ref (default: main) and
        returns the result as a pyarrow.Table (at most max_rows rows; None:
        all). For large results prefer query_to_reader, which streams."""
        schema, stream = self._query_stream(sql, ref, namespace, max_rows)
        return pa.Table.from_batches(list(stream.batches()), schema=schema)

    def scan(
        self,
        table: str,
        columns: Optional[Sequence[str]] = None,
        filter: Optional[str] = None,
        ref: Optional[str] = None,
        namespace: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> pa.Table:
        """Reads a table at ref as a pyarrow.Table: only columns (all if
        None), only rows where filter (a SQL expression, e.g.
        "country IN ('IT', 'FR')") holds, at most limit rows. table is
        "name" (in namespace, default "default") or "namespace.name"."""
        return self.query(scan_sql(table, columns, filter, limit), ref=ref, namespace=namespace)

    def explain(self, sql: str, ref: Optional[str] = None, namespace: Optional[str] = None) -> Dict[str, Any]:
        """Plans a query without running it: {"text": str, "plan": dict}
        as ``lakehouse query --explain`` shows them."""
        cmd: Dict[str, Any] = {"sql": sql}
        if ref:
            cmd["ref"] = ref
        if namespace:
            cmd["namespace"] = namespace
        return self._call("ExplainQuery", cmd)

    # --- imports ---------------------------------------------------------

    def import_data(
        self,
        table: str,
        data: ImportData,
        branch: str,
        namespace: Optional[str] = None,
        *,
        mode: str = "append",
        partitioned_by: Optional[Sequence[str]] = None,
        message: Optional[str] = None,
    ) -> ImportResult:
        """Imports rows into a table on a branch (creating the table if it
        is missing) in one commit.

        data: a path, directory or glob of Parquet, CSV or Arrow IPC files
            on this machine, a list of those, or a pyarrow.Table /
            RecordBatch / RecordBatchReader. Files are read here, batch by
            batch, and sent to the server; a file the table already
            imported (same path, size and mtime) is skipped.
        mode: "append" or "replace". partitioned_by: partition columns or
            transforms ("day(ts)", "bucket(16,id)") of a new table, or the
            new spec of a replaced one.
        """
        if mode not in ("append", "replace"):
            raise _errors.InvalidArgumentError("mode must be 'append' or 'replace', got %r" % (mode,))
        ns, name = self._split_table(table, namespace)
        sources = []
        for upload_name, size, mtime_ns, reader in _sources(data):
            sources.append("upload:" + self._upload(upload_name, size, mtime_ns, reader))
        if not sources:
            raise _errors.InvalidArgumentError("nothing to import: %r names no file" % (data,))
        body: Dict[str, Any] = {
            "branch": branch,
            "namespace": ns,
            "table": name,
            "sources": sources,
            "mode": mode,
            "commit": self._commit_opts(message, None),
        }
        if partitioned_by:
            body["partition_by"] = [partitioned_by] if isinstance(partitioned_by, str) else list(partitioned_by)
        return ImportResult.from_json(self._call("ImportTable", body))

    def _upload(self, name: str, size: int, mtime_ns: int, reader: pa.RecordBatchReader) -> str:
        """DoPuts the batches of reader as one upload and returns its id."""
        cmd = {"upload": {"name": name, "size": size, "mtime_ns": mtime_ns}}
        desc = fl.FlightDescriptor.for_command(json.dumps(cmd).encode())
        try:
            writer, meta = self._flight.do_put(desc, reader.schema, options=self._options)
            try:
                for batch in reader:
                    for piece in _pieces(batch):
                        writer.write_batch(piece)
                writer.done_writing()
                buf = meta.read()
            finally:
                writer.close()
        except (pa.ArrowException, OSError) as e:
            raise self._error(e) from None
        if buf is None:
            raise _errors.InternalError("the server answered the upload of %s with no id" % name)
        answer = json.loads(buf.to_pybytes())
        return answer["upload_id"]


def _pieces(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """Slices a batch into pieces of at most _MAX_PUT_BYTES."""
    n = batch.num_rows
    if n == 0 or batch.nbytes <= _MAX_PUT_BYTES:
        yield batch
        return
    step = max(1, n * _MAX_PUT_BYTES // batch.nbytes)
    for off in range(0, n, step):
        yield batch.slice(off, step)


def _expand(path: str) -> List[str]:
    """The files a path names: itself, the data files of a directory, or a glob's matches."""
    if os.path.isdir(path):
        out = []
        for root, _, files in os.walk(path):
            out.extend(os.path.join(root, f) for f in files if f.lower().endswith(_PARQUET + _CSV + _ARROW))
        return sorted(out)
    if any(c in path for c in "*?["):
        return sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    if not os.path.exists(path):
        raise _errors.NotFoundError("%s does not exist" % path, hint="give a Parquet, CSV or Arrow file, a folder or a glob")
    return [path]


def _open_file(path: str) -> pa.RecordBatchReader:
    """Opens a data file as a stream of batches, by its extension (or the
    Arrow magic bytes)."""
    lower = path.lower()
    if lower.endswith(_PARQUET):
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path)
        return pa.RecordBatchReader.from_batches(f.schema_arrow, f.iter_batches())
    if lower.endswith(_CSV):
        import pyarrow.csv as pcsv

        return pcsv.open_csv(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if lower.endswith(_ARROW) or magic == b"ARROW1":
        import pyarrow.ipc as ipc

        if magic == b"ARROW1":
            r = ipc.open_file(path)
            return pa.RecordBatchReader.from_batches(r.schema, (r.get_batch(i) for i in range(r.num_record_batches)))
        return ipc.open_stream(path)
    raise _errors.InvalidArgumentError(
        "cannot import %s: not a Parquet, CSV or Arrow IPC file" % path,
        hint="name the file .parquet, .csv or .arrow",
    )


def _sources(data: ImportData) -> Iterable[tuple]:
    """Yields (name, size, mtime_ns, RecordBatchReader) for each source of data."""
    if isinstance(data, pa.Table):
        yield "<table>", 0, 0, pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        return
    if isinstance(data, pa.RecordBatch):
        yield "<table>", 0, 0, pa.RecordBatchReader.from_batches(data.schema, [data])
        return
    if isinstance(data, pa.RecordBatchReader):
        yield "<table>", 0, 0, data
        return
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    for p in paths:
        for f in _expand(os.fspath(p)):
            st = os.stat(f)
            yield os.path.abspath(f), st.st_size, st.st_mtime_ns, _open_file(f)
