# extractor.py: reads lakehouse models from Python files without running them.
#
# Embedded in the lakehouse binary and run once per plan as
#   python -I -S -c <this script> FILE...
# with any Python >= 3.9. It parses every file with `ast`, finds the
# top-level functions decorated with lakehouse decorators and prints one JSON
# document on stdout:
#
#   {"files": [{"path": FILE, "errors": [{"line": N, "msg": "..."}],
#               "functions": [{"name": "f", "line": N,
#                              "decorators": [{"name": "model", "line": N, "call": true,
#                                              "args": [...], "kwargs": {"k": {"line": N, "value": ...}}}],
#                              "params": [{"name": "data", "line": N, "marker": "Model" | "Parameter" | null,
#                                          "args": [...], "kwargs": {...}}]}]}]}
#
# Every decorator and marker argument must be a literal (ast.literal_eval);
# anything else becomes an error at its line. Nothing here imports or
# executes user code.
import ast
import json
import sys

MODULE = "lakehouse"
# What `from lakehouse import *` binds (lakehouse.__all__).
STAR_NAMES = ("model", "python", "resources", "expectation", "Model", "Parameter")


def source_of(src, node):
    try:
        seg = ast.get_source_segment(src, node)
    except Exception:
        seg = None
    if not seg:
        return type(node).__name__
    seg = " ".join(seg.split())
    return seg if len(seg) <= 60 else seg[:57] + "..."


def jsonable(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("a non-finite number")
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValueError("a dict key that is not a string (%r)" % (k,))
            out[k] = jsonable(x)
        return out
    raise ValueError("a %s" % type(v).__name__)


class File:
    def __init__(self, path, src):
        self.path = path
        self.src = src
        self.errors = []
        self.modules = set()  # names bound to the lakehouse module
        self.names = {}  # local name -> lakehouse attribute

    def error(self, node_or_line, msg):
        line = node_or_line if isinstance(node_or_line, int) else getattr(node_or_line, "lineno", 0)
        self.errors.append({"line": line, "msg": msg})

    def scan_imports(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == MODULE:
                        self.modules.add(a.asname or a.name)
            elif isinstance(node, ast.ImportFrom) and node.module == MODULE and node.level == 0:
                for a in node.names:
                    if a.name == "*":
                        for n in STAR_NAMES:
                            self.names.setdefault(n, n)
                    else:
                        self.names[a.asname or a.name] = a.name

    def lakehouse_attr(self, expr):
        """Returns the lakehouse attribute expr names (model for
        lakehouse.model or an imported model), else None."""
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in self.modules:
            return expr.attr
        if isinstance(expr, ast.Name) and expr.id in self.names:
            return self.names[expr.id]
        return None

    def literal(self, node, what):
        try:
            return True, jsonable(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
            detail = str(e) if str(e).startswith("a ") else None
            found = detail or source_of(self.src, node)
            self.error(node, "%s must be a literal (a string, number, bool, None, or a list or dict of those); found %s" % (what, found))
            return False, None

    def call_args(self, call, label):
        args, kwargs = [], {}
        for i, a in enumerate(call.args):
            if isinstance(a, ast.Starred):
                self.error(a, "%s: *args are not allowed; write the arguments out" % label)
                continue
            ok, v = self.literal(a, "argument %d of %s" % (i + 1, label))
            args.append({"line": a.lineno, "value": v, "ok": ok})
        for k in call.keywords:
            if k.arg is None:
                self.error(k.value, "%s: **kwargs are not allowed; write the arguments out" % label)
                continue
            ok, v = self.literal(k.value, "argument %s= of %s" % (k.arg, label))
            kwargs[k.arg] = {"line": k.value.lineno, "value": v, "ok": ok}
        return args, kwargs

    def function(self, fn):
        decorators = []
        for d in fn.decorator_list:
            call = d if isinstance(d, ast.Call) else None
            attr = self.lakehouse_attr(call.func if call else d)
            if attr is None:
                continue
            entry = {"name": attr, "line": d.lineno, "call": call is not None, "args": [], "kwargs": {}}
            if call is not None:
                entry["args"], entry["kwargs"] = self.call_args(call, "@%s.%s" % (MODULE, attr))
            decorators.append(entry)
        if not decorators:
            return None
        params = []
        a = fn.args
        positional = list(getattr(a, "posonlyargs", [])) + list(a.args)
        defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
        pairs = list(zip(positional, defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
        for arg, default in pairs:
            p = {"name": arg.arg, "line": arg.lineno, "marker": None, "args": [], "kwargs": {}}
            if default is not None:
                p["line"] = default.lineno
                if isinstance(default, ast.Call):
                    marker = self.lakehouse_attr(default.func)
                    if marker is not None:
                        p["marker"] = marker
                        p["args"], p["kwargs"] = self.call_args(default, "%s.%s" % (MODULE, marker))
                if p["marker"] is None:
                    p["default"] = source_of(self.src, default)
            params.append(p)
        if a.vararg is not None:
            self.error(a.vararg, "function %s: *%s is not allowed; inputs are lakehouse.Model(...) parameters" % (fn.name, a.vararg.arg))
        if a.kwarg is not None:
            self.error(a.kwarg, "function %s: **%s is not allowed; inputs are lakehouse.Model(...) parameters" % (fn.name, a.kwarg.arg))
        return {"name": fn.name, "line": fn.lineno, "decorators": decorators, "params": params}


def extract(path):
    out = {"path": path, "errors": [], "functions": []}
    try:
        with open(path, "rb") as f:
            raw = f.read()
        src = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        out["errors"].append({"line": 0, "msg": "cannot read the file: %s" % e})
        return out
    try:
        tree = ast.parse(src, filename=path)
    except SyntaxError as e:
        msg = e.msg or "invalid syntax"
        out["errors"].append({"line": e.lineno or 0, "col": e.offset or 0, "msg": "syntax error: %s" % msg})
        return out
    except (ValueError, RecursionError, MemoryError) as e:
        out["errors"].append({"line": 0, "msg": "cannot parse the file: %s" % e})
        return out
    f = File(path, src)
    f.scan_imports(tree)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            fn = f.function(node)
            if fn is not None:
                out["functions"].append(fn)
        elif isinstance(node, ast.AsyncFunctionDef) and any(
            f.lakehouse_attr(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        ):
            f.error(node, "model %s is an async function; models are plain functions" % node.name)
    out["errors"].extend(f.errors)
    return out


def main(paths):
    files = [extract(p) for p in paths]
    json.dump({"python": "%d.%d.%d" % sys.version_info[:3], "files": files}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
