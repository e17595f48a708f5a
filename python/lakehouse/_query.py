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
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.flight as fl

from . import errors as _errors
from .results import ImportResult

#: Batches larger than this are sliced before a DoPut (well under the
#: 256 MiB message limit).
_MAX_PUT_BYTES = 64 << 20

#: Rows per batch of an upload.
_PUT_ROWS = 64 * 1024

_PARQUET = (".parquet", ".parq")
_CSV = (".csv",)
_ARROW = (".arrow", ".feather", ".ipc")

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

    def __init__(self, client: Any, reader: "fl.FlightStreamReader", max_rows: Optional[int],
                 conn: Optional["fl.FlightClient"] = None):
        self._client = client
        self._reader = reader
        self._left = max_rows
        # conn is the connection to a worker the rows come from (closed
        # with the stream); None: the client's own.
        self._conn = conn

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
            if self._conn is not None:
                self._conn.close()


class _Retry(Exception):
    """A located endpoint that could not be read: the query is asked for
    again, avoiding uri."""

    def __init__(self, uri: str, error: _errors.LakehouseError):
        super().__init__(str(error))
        self.uri = uri
        self.error = error


def _location(ep: "fl.FlightEndpoint") -> Optional[str]:
    """The URI of the server holding an endpoint's rows, or None for the
    one asked."""
    if not ep.locations:
        return None
    uri = ep.locations[0].uri
    if isinstance(uri, bytes):
        uri = uri.decode()
    if not uri or uri.startswith("arrow-flight-reuse-connection:"):
        return None
    return uri


class QueryMixin:
    """The query, scan and import methods of lakehouse.Client."""

    def _query_stream(self, sql: str, ref: Optional[str], namespace: Optional[str], max_rows: Optional[int]):
        if not isinstance(sql, str) or not sql.strip():
            raise _errors.InvalidArgumentError("the query has no SQL")
        if max_rows is not None and max_rows < 0:
            raise _errors.InvalidArgumentError("max_rows must be >= 0, got %r" % (max_rows,))
        # The client follows an endpoint's location (a worker of a fleet).
        cmd: Dict[str, Any] = {"sql": sql, "locations": True}
        if ref:
            cmd["ref"] = ref
        if namespace:
            cmd["namespace"] = namespace
        try:
            return self._query_once(cmd, max_rows)
        except _Retry as r:
            # The worker went away between GetFlightInfo and DoGet: ask
            # once more, avoiding it.
            cmd["avoid"] = [r.uri]
            try:
                return self._query_once(cmd, max_rows)
            except _Retry as again:
                raise again.error from None

    def _query_once(self, cmd: Dict[str, Any], max_rows: Optional[int]):
        desc = fl.FlightDescriptor.for_command(json.dumps(cmd).encode())
        try:
            info = self._flight.get_flight_info(desc, options=self._options)
        except (pa.ArrowException, OSError) as e:
            raise self._error(e) from None
        if not info.endpoints:
            raise _errors.InternalError("the server answered the query with no endpoint")
        ep = info.endpoints[0]
        uri = _location(ep)
        if uri is None:
            try:
                reader = self._flight.do_get(ep.ticket, options=self._options)
                schema = reader.schema
            except (pa.ArrowException, OSError) as e:
                raise self._error(e) from None
            return schema, _Stream(self, reader, max_rows)
        # Another server: a connection of its own, without the API key
        # (the ticket admits the caller there).
        conn = fl.FlightClient(uri, **self._dial_kwargs)
        try:
            reader = conn.do_get(ep.ticket, options=fl.FlightCallOptions(timeout=self._timeout))
            schema = reader.schema
        except (pa.ArrowException, OSError) as e:
            conn.close()
            from .client import convert_error  # client imports this module

            err = convert_error(e, uri)
            if isinstance(err, (_errors.UnavailableError, _errors.NotFoundError)):
                raise _Retry(uri, err) from None
            raise err from None
        return schema, _Stream(self, reader, max_rows, conn)

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
            batch, and sent to the server (CSV as text: the server infers
            the column types as for a file of its own); a file the table
            already imported (same path, size and mtime) is skipped.
        mode: "append" or "replace". partitioned_by: partition columns or
            transforms ("day(ts)", "bucket(16,id)") of a new table, or the
            new spec of a replaced one.
        """
        if mode not in ("append", "replace"):
            raise _errors.InvalidArgumentError("mode must be 'append' or 'replace', got %r" % (mode,))
        ns, name = self._split_table(table, namespace)
        body: Dict[str, Any] = {
            "branch": branch,
            "namespace": ns,
            "table": name,
            "sources": [],
            "mode": mode,
            "commit": self._commit_opts(message, None),
        }
        if partitioned_by:
            body["partition_by"] = [partitioned_by] if isinstance(partitioned_by, str) else list(partitioned_by)
        # The server answers the errors the import would give (a missing
        # branch or namespace, main, a tag, a denied branch) before any
        # file is read or sent.
        self._call("CheckImport", body)
        uploads: List[str] = []
        try:
            for upload_name, size, mtime_ns, fmt, reader in _sources(data):
                uploads.append(self._upload(upload_name, size, mtime_ns, fmt, reader))
        except BaseException:
            self._discard_uploads(uploads)
            raise
        if not uploads:
            raise _errors.InvalidArgumentError("nothing to import: %r names no file" % (data,))
        body["sources"] = ["upload:" + u for u in uploads]
        return ImportResult.from_json(self._call("ImportTable", body))

    def _discard_uploads(self, uploads: List[str]) -> None:
        """Tells the server no import will use these uploads (best effort:
        it removes unused uploads after an hour anyway)."""
        if not uploads:
            return
        try:
            self._call("DiscardUploads", {"uploads": uploads})
        except _errors.LakehouseError:
            pass

    def _upload(self, name: str, size: int, mtime_ns: int, fmt: str, reader: pa.RecordBatchReader) -> str:
        """DoPuts the batches of reader as one upload and returns its id.
        fmt is "csv" for a CSV file's fields as text, else ""."""
        upload: Dict[str, Any] = {"name": name, "size": size, "mtime_ns": mtime_ns}
        if fmt:
            upload["format"] = fmt
        cmd = {"upload": upload}
        desc = fl.FlightDescriptor.for_command(json.dumps(cmd).encode())
        batches = _read_batches(name, reader)
        try:
            writer, meta = self._flight.do_put(desc, reader.schema, options=self._options)
            try:
                for batch in batches:
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


def _read_batches(name: str, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """Yields the batches of a local file; an error reading it is an
    InvalidArgumentError naming the file."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as e:
            raise _errors.InvalidArgumentError("file %s: %s" % (name, e)) from None
        yield batch


def _pieces(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """Slices a batch into pieces of at most _MAX_PUT_BYTES."""
    n = batch.num_rows
    if n == 0 or batch.nbytes <= _MAX_PUT_BYTES:
        yield batch
        return
    step = max(1, n * _MAX_PUT_BYTES // batch.nbytes)
    for off in range(0, n, step):
        yield batch.slice(off, step)


def _hidden(name: str) -> bool:
    """Whether a name is one data tools leave beside their output (".crc",
    "_SUCCESS", "_delta_log") rather than data."""
    return name.startswith(".") or name.startswith("_")


def _kind(path: str) -> str:
    """The format of a data file: "parquet", "csv" or "ipc" by its
    extension, else "ipc" if it starts with the Arrow magic, else ""."""
    lower = path.lower()
    if lower.endswith(_PARQUET):
        return "parquet"
    if lower.endswith(_CSV):
        return "csv"
    if lower.endswith(_ARROW):
        return "ipc"
    try:
        with open(path, "rb") as f:
            return "ipc" if f.read(6) == b"ARROW1" else ""
    except OSError:
        return ""


def _expand(source: str) -> List[str]:
    """The files a source names, as absolute paths, as an embedded import
    expands them: the file itself, the data files under a folder
    (recursively, sorted, hidden names left out), or a glob's matches."""
    if not source:
        raise _errors.InvalidArgumentError("an import source is empty")
    path = os.path.abspath(source)
    paths = [path]
    if any(c in source for c in "*?[") and not os.path.lexists(path):
        paths = sorted(p for p in glob.glob(path) if not _hidden(os.path.basename(p)))
        if not paths:
            raise _errors.NotFoundError("source %r matches no files" % source)
    out: List[str] = []
    for p in paths:
        if not os.path.exists(p):
            raise _errors.NotFoundError("source %s does not exist" % p)
        if not os.path.isdir(p):
            if not os.path.isfile(p):
                raise _errors.InvalidArgumentError("source %s is not a regular file" % p)
            out.append(p)
            continue
        found = []
        for root, dirs, files in os.walk(p):
            dirs[:] = [d for d in dirs if not _hidden(d)]
            found.extend(os.path.join(root, f) for f in files
                         if not _hidden(f) and f.lower().endswith(_PARQUET + _CSV + _ARROW))
        if not found:
            raise _errors.NotFoundError("directory %s contains no .parquet, .csv, .arrow, .feather or .ipc files" % p)
        out.extend(sorted(found))
    return out


def _open_csv_as_text(path: str) -> pa.RecordBatchReader:
    """Opens a CSV file as batches of one string column per CSV column
    (named by the header, NULL for an empty field): the server infers and
    parses the types exactly as for a CSV file of its own."""
    import pyarrow.csv as pcsv

    header = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16))
    names = header.schema.names
    header.close()
    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=8 << 20),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                                            strings_can_be_null=True, quoted_strings_can_be_null=True),
    )


def _open_file(path: str, kind: str) -> pa.RecordBatchReader:
    """Opens a data file of kind as a stream of batches."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path)
        return pa.RecordBatchReader.from_batches(f.schema_arrow, f.iter_batches(batch_size=_PUT_ROWS))
    if kind == "csv":
        return _open_csv_as_text(path)
    import pyarrow.ipc as ipc

    r = ipc.open_file(pa.memory_map(path, "r"))
    return pa.RecordBatchReader.from_batches(r.schema, (r.get_batch(i) for i in range(r.num_record_batches)))


def _sources(data: ImportData) -> Iterable[tuple]:
    """Yields (name, size, mtime_ns, format, RecordBatchReader) for each
    source of data; sources are checked before any is opened."""
    # In-memory data is "<table>"; its mtime is the time of the import, so
    # the server never takes it for one imported before and skips it (a
    # file is skipped when name, size and mtime match an earlier import).
    if isinstance(data, pa.Table):
        yield "<table>", 0, time.time_ns(), "", pa.RecordBatchReader.from_batches(data.schema,
                                                                                 data.to_batches(_PUT_ROWS))
        return
    if isinstance(data, pa.RecordBatch):
        yield "<table>", 0, time.time_ns(), "", pa.RecordBatchReader.from_batches(data.schema, [data])
        return
    if isinstance(data, pa.RecordBatchReader):
        yield "<table>", 0, time.time_ns(), "", data
        return
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    files: List[tuple] = []
    seen = set()
    for src in data:
        for f in _expand(os.fspath(src)):
            if f in seen:
                continue
            seen.add(f)
            kind = _kind(f)
            if not kind:
                raise _errors.InvalidArgumentError(
                    "file %s: unsupported file format %r" % (f, os.path.splitext(f)[1]),
                    hint="import reads .parquet, .csv and Arrow IPC (.arrow, .feather, .ipc) files")
            st = os.stat(f)
            files.append((f, st.st_size, st.st_mtime_ns, kind))
    for f, size, mtime, kind in files:
        try:
            reader = _open_file(f, kind)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise _errors.InvalidArgumentError("file %s: %s" % (f, e)) from None
        yield f, size, mtime, "csv" if kind == "csv" else "", reader
