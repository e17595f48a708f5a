# The lakehouse function runner. The launcher runs it as
#   python -s -S -u -B -c <this file>
# with the invocation in $LAKEHOUSE_INVOCATION (hex-encoded marshal data:
# json would cost ~8 ms of imports before user code runs) and the package
# folders on PYTHONPATH. It imports the user's module, calls the function
# with its inputs (memory-mapped Arrow IPC files, as pyarrow.Table) and
# parameters, writes what the function returns as an Arrow IPC file and a
# small result JSON. Any exception becomes a structured error in the result
# JSON and exit status 1. Heavy modules (pyarrow) are imported only when
# needed, so a function without inputs reaches user code in about one
# interpreter start.
import os
import sys


def _paths(cfg):
    # -c puts the current directory first on sys.path; user code must not
    # import from wherever the process happens to start.
    while sys.path and sys.path[0] in ("", "."):
        del sys.path[0]
    for d in cfg.get("paths") or ():
        try:
            names = os.listdir(d)
        except OSError:
            continue
        if any(n.endswith(".pth") for n in names):
            import site

            site.addsitedir(d)
    code = cfg["code_dir"]
    sys.path.insert(0, code)
    return code


def _shim():
    """A stand-in for the lakehouse SDK, for an environment without it
    (envcache puts the SDK embedded in the binary into every environment
    it assembles for functions, so lakehouse.expectations imports; this
    covers hand-made environments): its decorators return the function
    unchanged, Model and Parameter are placeholders (the runner passes the
    real values by name). It has no expectations module."""
    import types

    m = types.ModuleType("lakehouse")

    def _ident(*a, **kw):
        if len(a) == 1 and callable(a[0]) and not kw:
            return a[0]
        return lambda f: f

    class Model:
        def __init__(self, name, columns=None, filter=None, ref=None):
            self.name, self.columns, self.filter, self.ref = name, columns, filter, ref

    class Parameter:
        def __init__(self, name):
            self.name = name

    m.model = m.python = m.resources = m.expectation = _ident
    m.Model, m.Parameter = Model, Parameter
    sys.modules["lakehouse"] = m


def _read_input(path, columns=None, wait=False):
    import pyarrow as pa
    import pyarrow.ipc

    if wait:
        # The launcher starts us while it still scans; it links each
        # input complete, and kills us if it cannot.
        import time

        while not os.path.exists(path):
            time.sleep(0.001)

    # Zero copy: the table's buffers point into the mapped file, and
    # selecting columns keeps pointing there.
    t = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    if columns is not None:
        t = t.select(list(columns))
    return t


def _to_arrow(result):
    mod = type(result).__module__.split(".")[0]
    if mod == "pyarrow":
        import pyarrow as pa

        if isinstance(result, pa.Table):
            return result.schema, [result]
        if isinstance(result, pa.RecordBatch):
            return result.schema, [pa.Table.from_batches([result])]
        if isinstance(result, pa.RecordBatchReader):
            return result.schema, result
    elif mod == "pandas":
        import pyarrow as pa

        if type(result).__name__ == "DataFrame":
            t = pa.Table.from_pandas(result, preserve_index=False)
            return t.schema, [t]
    elif mod == "polars":
        if type(result).__name__ == "DataFrame":
            t = result.to_arrow()
            return t.schema, [t]
    raise TypeError(
        "the function returned %s; return a pyarrow Table or RecordBatchReader, "
        "a pandas DataFrame or a polars DataFrame" % type(result).__name__
    )


def _write_output(path, result):
    import pyarrow as pa
    import pyarrow.ipc

    schema, parts = _to_arrow(result)
    tmp = path + ".tmp"
    rows = 0
    with pa.OSFile(tmp, "wb") as sink:
        with pa.ipc.new_file(sink, schema) as w:
            for p in parts:
                if isinstance(p, pa.Table):
                    w.write_table(p)
                else:
                    w.write_batch(p)
                rows += p.num_rows
    os.rename(tmp, path)
    return rows


def _error(exc, code_dir):
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if f.filename.startswith(code_dir + os.sep)]
    if not user:
        user = [f for f in frames if f.filename != "<string>"]
    tb = "".join(traceback.format_list(user))
    tb += "".join(traceback.format_exception_only(type(exc), exc))
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tb}


def _write_result(cfg, res):
    if res.get("ok") and set(res) <= {"ok", "rows", "output", "expectation", "steps"}:
        # The common case, without importing json.
        parts = ['"ok": true']
        if "steps" in res:
            parts.append('"steps": [%s]' % ", ".join("%d" % n for n in res["steps"]))
        if "rows" in res:
            parts.append('"rows": %d' % res["rows"])
        if "output" in res:
            parts.append('"output": "%s"' % _json_str(res["output"]))
        if "expectation" in res:
            parts.append('"expectation": %s' % ("true" if res["expectation"] else "false"))
        text = "{" + ", ".join(parts) + "}"
    else:
        import json

        text = json.dumps(res)
    with open(cfg["result"], "w") as f:
        f.write(text)


def _json_str(s):
    out = []
    for ch in s:
        if ch in '"\\' or ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _function(module, name):
    __import__(module)
    fn = getattr(sys.modules[module], name, None)
    if fn is None or not callable(fn):
        raise AttributeError("module %s has no function %s" % (module, name))
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _call(step, chained=None, wait=False):
    fn = _function(step["module"], step["function"])
    kwargs = dict(step.get("params") or {})
    for inp in step.get("inputs") or ():
        kwargs[inp["arg"]] = _read_input(inp["path"], inp.get("columns"), wait)
    if chained is not None:
        cols = step.get("chain_columns")
        if cols is not None:
            missing = [c for c in cols if c not in chained.column_names]
            if missing:
                src = step.get("chain_from") or "the previous model"
                raise ValueError(
                    "input %s asks for column(s) %s, which %s did not return (it returned %s)"
                    % (src, ", ".join(missing), src, ", ".join(chained.column_names))
                )
            chained = chained.select(list(cols))
        kwargs[step["chain"]] = chained
    return fn(**kwargs)


def _as_table(result):
    """A chained function's result as the pyarrow Table the next one
    receives (what reading it back from a file would give)."""
    import pyarrow as pa

    if result is None or isinstance(result, bool):
        raise TypeError(
            "the function returned %s; a model must return a table "
            "(pyarrow Table, pandas or polars DataFrame)" % type(result).__name__
        )
    schema, parts = _to_arrow(result)
    tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p], schema) for p in parts]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _mark(marker, i, rows):
    # The launcher attributes the lines after this to step i's model.
    line = "\x1elakehouse-step %s %d %d\n" % (marker, i, rows)
    sys.stdout.write(line)
    sys.stdout.flush()
    sys.stderr.write(line)
    sys.stderr.flush()


def main():
    import marshal

    cfg = marshal.loads(bytes.fromhex(os.environ["LAKEHOUSE_INVOCATION"]))
    code_dir = cfg["code_dir"]
    cur = 0
    step_rows = []
    try:
        _paths(cfg)
        try:
            import lakehouse  # noqa: F401 - the SDK (in every envcache environment)
        except ModuleNotFoundError as e:
            if e.name != "lakehouse":
                raise
            _shim()
        wait = bool(cfg.get("await_inputs"))
        result = _call(cfg, wait=wait)
        # A fused chain: each further function takes the previous result
        # in memory.
        for i, step in enumerate(cfg.get("steps") or (), 1):
            table = _as_table(result)
            result = None
            step_rows.append(table.num_rows)
            if cfg.get("preview"):
                _write_output(
                    cfg["preview_paths"][i - 1],
                    table.slice(0, cfg["preview"]),
                )
            cur = i
            _mark(cfg.get("marker", ""), i, table.num_rows)
            result = _call(step, table, wait)
            del table
        res = {"ok": True}
        if step_rows:
            res["steps"] = step_rows
        kind = (type(result).__module__.split(".")[0], type(result).__name__)
        if kind == ("numpy", "bool_"):
            result = bool(result)  # (df.x > 0).all() is a numpy.bool_
        elif kind == ("pyarrow", "BooleanScalar") and result.is_valid:
            result = result.as_py()  # pc.all(...) is a pyarrow BooleanScalar
        if not cfg.get("output") and result is not None and not isinstance(result, bool):
            raise TypeError(
                "an expectation must return True or False, not %s" % type(result).__name__
            )
        if isinstance(result, bool):
            res["expectation"] = result
        elif result is not None:
            if not cfg.get("output"):
                raise ValueError("the function returned a table but the invocation has no output path")
            res["rows"] = _write_output(cfg["output"], result)
            res["output"] = cfg["output"]
    except BaseException as exc:  # noqa: B902 - everything is reported
        if isinstance(exc, KeyboardInterrupt):
            raise
        _write_result(cfg, {"ok": False, "step": cur, "error": _error(exc, code_dir)})
        sys.stderr.flush()
        os._exit(1)
    _write_result(cfg, res)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (pyarrow's pools, module finalizers).
    os._exit(0)


main()
