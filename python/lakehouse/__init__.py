"""Authoring SDK for lakehouse pipelines.

A pipeline project is a folder with ``lakehouse.yml``, Python files and SQL
files. In Python, a model is a function marked with decorators::

    import lakehouse

    @lakehouse.model(materialization="REPLACE")
    @lakehouse.python("3.11", pip={"pandas": "2.2.3"})
    def usd_by_country(data=lakehouse.Model("transactions", columns=["usd", "country"])):
        return data.to_pandas().groupby("country", as_index=False).usd.sum()

The decorators are inert markers: they record their arguments on the
function (``fn.__lakehouse__``) and return it unchanged. ``lakehouse run``
never imports this code to plan a pipeline; it reads the decorators with
Python's ``ast``, so every argument must be a literal (a string, number,
bool, None, or a list/tuple/dict of those).

A script or an orchestrator talks to a server (``lakehouse serve``) with
``lakehouse.Client``::

    c = lakehouse.Client()             # LAKEHOUSE_ADDR, else the profile's addr
    t = c.query("SELECT * FROM sales.usd_by_country", ref="alice.dev")

Importing this module imports nothing heavy: data-quality helpers live in
``lakehouse.expectations`` and the client in ``lakehouse.client``, both of
which need pyarrow and load on first use (``lakehouse.Client`` imports it
then). The error classes (``lakehouse.NotFoundError``, ...) need nothing.
"""

from .errors import (
    AlreadyExistsError,
    ConflictError,
    DataLossError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    LakehouseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)

__version__ = "0.1.0"

__all__ = [
    "model",
    "python",
    "resources",
    "expectation",
    "Model",
    "Parameter",
    "MATERIALIZATIONS",
    "Client",
    "LakehouseError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "ConflictError",
    "FailedPreconditionError",
    "PermissionDeniedError",
    "UnauthenticatedError",
    "UnavailableError",
    "DataLossError",
    "InternalError",
]

# Names served by submodules that need pyarrow, imported on first use.
_LAZY = {"Client": "client"}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError("module 'lakehouse' has no attribute %r" % (name,))
    import importlib

    value = getattr(importlib.import_module("." + mod, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

#: The values of ``model(materialization=...)``.
MATERIALIZATIONS = ("NONE", "REPLACE", "APPEND", "OVERWRITE_PARTITIONS")


def _meta(fn):
    """Returns the lakehouse metadata dict of fn, creating it."""
    if not callable(fn):
        raise TypeError("lakehouse decorators apply to functions, got %r" % (fn,))
    meta = getattr(fn, "__lakehouse__", None)
    if meta is None:
        meta = {}
        fn.__lakehouse__ = meta
    return meta


def _str_list(value, what):
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise TypeError("%s must be strings, got %r" % (what, v))
    return out


def model(
    name=None,
    materialization="NONE",
    partitioned_by=None,
    overwrite_filter=None,
    internet_access=False,
    cache=True,
    columns=None,
    namespace=None,
):
    """Marks a function as a model: a node of the pipeline with one output.

    name: the model's name (default: the function's name); other models read
        it with ``lakehouse.Model(name)``.
    materialization: "NONE" (in memory only), "REPLACE", "APPEND" or
        "OVERWRITE_PARTITIONS" (written as an Iceberg table in the project
        namespace).
    partitioned_by: partition columns or transforms of the written table;
        required by OVERWRITE_PARTITIONS.
    overwrite_filter: with OVERWRITE_PARTITIONS, a filter selecting the rows
        the output replaces.
    internet_access: whether the function may reach the network.
    cache: whether an unchanged model may reuse a previous output.
    columns: the output columns, when known (checked against readers).
    namespace: where the output is written (default: the project's).
    """
    if materialization not in MATERIALIZATIONS:
        raise ValueError(
            "materialization must be one of %s, got %r" % (", ".join(MATERIALIZATIONS), materialization)
        )
    if name is not None and not isinstance(name, str):
        raise TypeError("name must be a string, got %r" % (name,))
    partitioned_by = _str_list(partitioned_by, "partitioned_by")
    if materialization == "OVERWRITE_PARTITIONS" and not partitioned_by:
        raise ValueError("OVERWRITE_PARTITIONS needs partitioned_by")

    def mark(fn):
        meta = _meta(fn)
        meta["model"] = {
            "name": name or fn.__name__,
            "materialization": materialization,
            "partitioned_by": partitioned_by,
            "overwrite_filter": overwrite_filter,
            "internet_access": bool(internet_access),
            "cache": bool(cache),
            "columns": _str_list(columns, "columns"),
            "namespace": namespace,
        }
        return fn

    return mark


def python(version, pip=None):
    """Sets the Python version ("3.11") and pip packages of a model.

    pip maps package names to versions: {"pandas": "2.2.3"} (exactly 2.2.3)
    or a specifier such as ">=2,<3". pyarrow is always added.
    """
    if not isinstance(version, str):
        raise TypeError('python version must be a string such as "3.11", got %r' % (version,))
    pip = dict(pip or {})
    for k, v in pip.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, str)):
            raise TypeError("pip maps package names to version strings, got %r: %r" % (k, v))

    def mark(fn):
        _meta(fn)["python"] = {"version": version, "pip": pip}
        return fn

    return mark


def resources(cpus=None, memory=None, timeout=None):
    """Sets the resources of a model's function: cpus (a number), memory
    ("4GB", "512MiB" or bytes) and timeout (seconds, or "10m")."""

    def mark(fn):
        _meta(fn)["resources"] = {"cpus": cpus, "memory": memory, "timeout": timeout}
        return fn

    return mark


def expectation():
    """Marks a function as an expectation: it reads models or tables and
    returns a bool (True: the data is as expected). A failed expectation
    warns, or fails the run with ``lakehouse run --strict``."""

    def mark(fn):
        _meta(fn)["expectation"] = {}
        return fn

    return mark


class Model:
    """An input of a model: another model's output, or a catalog table.

    name: a model name, a table ("transactions", in the project namespace)
        or a qualified table ("sales.transactions").
    columns: the columns to read (pushed down to the scan).
    filter: a SQL filter on the rows (pushed down to the scan).
    ref: read a catalog table at another ref ("main", "v1", "main@3f9a1c2e").
    """

    __slots__ = ("name", "columns", "filter", "ref")

    def __init__(self, name, columns=None, filter=None, ref=None):
        if not isinstance(name, str) or not name:
            raise TypeError("Model name must be a non-empty string, got %r" % (name,))
        self.name = name
        self.columns = _str_list(columns, "columns")
        self.filter = filter
        self.ref = ref

    def __repr__(self):
        args = [repr(self.name)]
        for k in ("columns", "filter", "ref"):
            v = getattr(self, k)
            if v is not None:
                args.append("%s=%r" % (k, v))
        return "Model(%s)" % ", ".join(args)

    def __eq__(self, other):
        return isinstance(other, Model) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __hash__(self):
        return hash((self.name, tuple(self.columns or ()), self.filter, self.ref))


class Parameter:
    """A project parameter (declared in lakehouse.yml, set with
    ``lakehouse run --param name=value``) passed to a model."""

    __slots__ = ("name",)

    def __init__(self, name):
        if not isinstance(name, str) or not name:
            raise TypeError("Parameter name must be a non-empty string, got %r" % (name,))
        self.name = name

    def __repr__(self):
        return "Parameter(%r)" % (self.name,)

    def __eq__(self, other):
        return isinstance(other, Parameter) and self.name == other.name

    def __hash__(self):
        return hash(("Parameter", self.name))
