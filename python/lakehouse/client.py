"""A client of ``lakehouse serve`` over Arrow Flight.

::

    import lakehouse
    c = lakehouse.Client()             # LAKEHOUSE_ADDR, else the profile's addr
    c.create_branch("alice.dev", from_ref="main")
    c.import_data("sales.orders", "orders.parquet", branch="alice.dev")
    t = c.query("SELECT count(*) FROM sales.orders", ref="alice.dev")
    c.merge_branch("alice.dev", into_branch="main")

The wire contract is docs/protocol.md: catalog and run operations are Flight
actions ``lakehouse.v1.<Name>`` with JSON bodies, queries are GetFlightInfo
then DoGet, imports DoPut the rows of local files. Every error the server
sends is raised as a subclass of ``lakehouse.LakehouseError`` carrying the
hint (see ``lakehouse.errors``).

The client depends on pyarrow only. It is safe to share between threads
(pyarrow's FlightClient is); close it, or use it as a context manager, to
release the connection.
"""

import getpass
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import pyarrow as pa
import pyarrow.flight as fl

from . import errors as _errors
from ._query import QueryMixin
from ._runs import RunsMixin
from .results import Branch, Commit, DiffResult, MergeResult, Table, TableSummary, Tag

__all__ = ["Client", "ACTION_PREFIX", "MAX_MESSAGE_SIZE", "DEFAULT_NAMESPACE"]

#: Versions every action type.
ACTION_PREFIX = "lakehouse.v1."
#: gRPC's message limit, raised as on the server (256 MiB each way).
MAX_MESSAGE_SIZE = 256 << 20
#: The namespace of table names given without one.
DEFAULT_NAMESPACE = "default"

_NO_ADDR_HINT = (
    "start a server with `lakehouse serve` and set LAKEHOUSE_ADDR=127.0.0.1:8815 "
    "(or pass Client(addr=...), or `lakehouse config set addr ...`)"
)


def _data_dir() -> str:
    d = os.environ.get("LAKEHOUSE_DATA_DIR")
    return d if d else os.path.join(os.path.expanduser("~"), ".lakehouse")


def read_profile(name: Optional[str] = None, data_dir: Optional[str] = None) -> Dict[str, Any]:
    """Returns the settings of a profile in ``<data dir>/profiles.json``
    (data dir: LAKEHOUSE_DATA_DIR, else ~/.lakehouse; name: LAKEHOUSE_PROFILE,
    else "default"). A missing file or profile is an empty dict."""
    name = name or os.environ.get("LAKEHOUSE_PROFILE") or "default"
    path = os.path.join(data_dir or _data_dir(), "profiles.json")
    try:
        with open(path, "rb") as f:
            profiles = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise _errors.InvalidArgumentError(
            "cannot read the profiles in %s: %s" % (path, e), hint="fix or remove the file"
        ) from None
    p = profiles.get(name) if isinstance(profiles, dict) else None
    return p if isinstance(p, dict) else {}


def parse_addr(addr: str) -> Tuple[str, bool]:
    """Splits a server address (host:port, grpc://host:port,
    grpc+tcp://host:port or grpc+tls://host:port) into a Flight location
    and whether it uses TLS. Raises InvalidArgumentError for anything else."""
    s = addr.strip()
    tls = False
    for prefix, is_tls in (("grpc+tls://", True), ("grpc+tcp://", False), ("grpc://", False)):
        if s.startswith(prefix):
            s, tls = s[len(prefix):], is_tls
            break
    else:
        if "://" in s:
            s = ""
    if not s or "/" in s or " " in s or ":" not in s:
        raise _errors.InvalidArgumentError(
            "invalid server address %r" % (addr,), hint="use host:port, grpc://host:port or grpc+tls://host:port"
        )
    return ("grpc+tls://" if tls else "grpc://") + s, tls


def split_table(table: str, namespace: Optional[str], default: str = DEFAULT_NAMESPACE) -> Tuple[str, str]:
    """Splits a table name into (namespace, name): "ns.t" names its
    namespace; a bare "t" is in ``namespace``, else ``default``."""
    if not isinstance(table, str) or not table:
        raise _errors.InvalidArgumentError("a table name must be a non-empty string, got %r" % (table,))
    if namespace:
        return namespace, table
    if "." in table:
        ns, name = table.split(".", 1)
        return ns, name
    return default, table


class Client(QueryMixin, RunsMixin):
    """A connection to a lakehouse server.

    addr: host:port, grpc://host:port or grpc+tls://host:port; default
        LAKEHOUSE_ADDR, else the profile's ``addr``. Without one the
        constructor raises InvalidArgumentError saying to start
        ``lakehouse serve`` and set LAKEHOUSE_ADDR.
    api_key: sent as ``authorization: Bearer <key>`` with every call;
        default LAKEHOUSE_API_KEY, else the profile's ``api_key``.
    profile: the profile in ``<data dir>/profiles.json`` (default
        LAKEHOUSE_PROFILE, else "default"); it also gives the default
        namespace and the commit author on servers without keys.
    tls_root_certs: PEM bytes (or a path to them) of the CA that signed a
        grpc+tls server's certificate; default: the file LAKEHOUSE_TLS_CA
        names, else the system's roots.
    timeout: seconds each call may take (default: no limit).

    Nothing is sent until the first call; a server that cannot be reached
    raises UnavailableError then.
    """

    def __init__(
        self,
        addr: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        profile: Optional[str] = None,
        tls_root_certs: Optional[Union[bytes, str]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        prof = read_profile(profile)
        addr = addr or os.environ.get("LAKEHOUSE_ADDR") or prof.get("addr")
        if not addr:
            raise _errors.InvalidArgumentError("no lakehouse server address", hint=_NO_ADDR_HINT)
        self._api_key = api_key or os.environ.get("LAKEHOUSE_API_KEY") or prof.get("api_key") or None
        self._namespace = prof.get("namespace") or DEFAULT_NAMESPACE
        self._author = prof.get("user") or os.environ.get("LAKEHOUSE_USER") or _os_user()
        self._addr = addr
        location, tls = parse_addr(addr)
        kwargs: Dict[str, Any] = {
            "generic_options": [
                ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
                ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
                # Query results arrive in messages of several MiB: let
                # the server send 32 MiB ahead of what was read (gRPC
                # starts at 64 KiB and grows slowly), in frames of up
                # to 16 MiB, so it rarely waits for a window update.
                ("grpc.http2.lookahead_bytes", 32 << 20),
                ("grpc.http2.max_frame_size", (16 << 20) - 1),
            ]
        }
        tls_root_certs = tls_root_certs or os.environ.get("LAKEHOUSE_TLS_CA") or None
        if tls and tls_root_certs:
            if isinstance(tls_root_certs, str):
                with open(tls_root_certs, "rb") as f:
                    tls_root_certs = f.read()
            kwargs["tls_root_certs"] = tls_root_certs
        self._flight = fl.FlightClient(location, **kwargs)
        # The same settings dial the worker of a located endpoint.
        self._dial_kwargs, self._timeout = kwargs, timeout
        headers = []
        if self._api_key:
            headers.append((b"authorization", b"Bearer " + self._api_key.encode()))
        self._options = fl.FlightCallOptions(headers=headers, timeout=timeout)

    # --- connection ------------------------------------------------------

    @property
    def addr(self) -> str:
        """The server address the client talks to."""
        return self._addr

    def close(self) -> None:
        """Closes the connection. The client is unusable afterwards."""
        self._flight.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "lakehouse.Client(%r)" % (self._addr,)

    def _error(self, e: BaseException) -> _errors.LakehouseError:
        return convert_error(e, self._addr)

    def _do(self, name: str, body: Optional[Dict[str, Any]] = None) -> Iterator[Any]:
        """Runs the action lakehouse.v1.<name> and yields each result's
        JSON, converting errors."""
        action = fl.Action(ACTION_PREFIX + name, json.dumps(body or {}).encode())
        try:
            for r in self._flight.do_action(action, options=self._options):
                yield json.loads(r.body.to_pybytes())
        except (pa.ArrowException, OSError) as e:
            raise self._error(e) from None

    def _call(self, name: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """Runs an action with one result and returns its JSON."""
        results = list(self._do(name, body))
        if not results:
            raise _errors.InternalError("%s: the server sent no answer" % name)
        return results[0]

    def _commit_opts(self, message: Optional[str], properties: Optional[Dict[str, str]]) -> Dict[str, Any]:
        opts: Dict[str, Any] = {"author": self._author}
        if message:
            opts["message"] = message
        if properties:
            opts["properties"] = {str(k): str(v) for k, v in properties.items()}
        return opts

    def info(self) -> Dict[str, Any]:
        """Describes the server and the caller: {"version", "role",
        "auth", "user", "user_role", "data_dir", "catalog", "warehouse",
        "launcher", "containerd_socket", "launcher_reason", "isolation"}
        (the paths and launcher as the server sees them; keys it has no
        value for are left out)."""
        return self._call("ServerInfo")

    # --- API keys (admins) -----------------------------------------------

    def create_api_key(self, user: str, role: str, expires_in: Optional[float] = None) -> Dict[str, Any]:
        """Creates an API key for user with role ("admin", "writer",
        "reader" or "worker"), valid for expires_in seconds (None: never
        expires). Returns {"id", "user", "role", "created", "expires",
        "status", "created_by", "key"}: the only time the key is shown."""
        body: Dict[str, Any] = {"user": user, "role": role}
        if expires_in:
            body["expires_in_seconds"] = int(expires_in)
        return self._call("CreateKey", body)

    def get_api_keys(self) -> List[Dict[str, Any]]:
        """Lists the API keys, oldest first (never the keys themselves):
        [{"id", "user", "role", "created", "expires", "revoked", "status",
        "created_by"}]."""
        return list(self._call("ListKeys") or [])

    def revoke_api_key(self, key_id: str) -> Dict[str, Any]:
        """Revokes an API key by its id; it stops working at once. Returns
        the key's description, status "revoked"."""
        return self._call("RevokeKey", {"id": key_id})

    # --- branches --------------------------------------------------------

    def get_branches(self) -> List[Branch]:
        """Lists every branch with its head commit."""
        return [Branch.from_json(b) for b in self._call("ListBranches") or []]

    def get_branch(self, branch: str) -> Branch:
        """Returns a branch. Raises NotFoundError if it does not exist."""
        return Branch.from_json(self._call("GetBranch", {"name": branch}))

    def has_branch(self, branch: str) -> bool:
        """Whether a branch exists."""
        try:
            self.get_branch(branch)
        except _errors.NotFoundError:
            return False
        return True

    def create_branch(self, branch: str, from_ref: str = "main") -> Branch:
        """Creates a branch (``<user>.<name>``) at from_ref (a branch, tag
        or commit). Raises AlreadyExistsError if it exists."""
        return Branch.from_json(self._call("CreateBranch", {"name": branch, "from": from_ref}))

    def delete_branch(self, branch: str) -> bool:
        """Deletes a branch (main cannot be deleted: FailedPreconditionError).
        Raises NotFoundError if it does not exist; returns True."""
        self._call("DeleteBranch", {"name": branch})
        return True

    def rename_branch(self, branch: str, new_branch: str) -> Branch:
        """Renames a branch and returns it under its new name."""
        return Branch.from_json(self._call("RenameBranch", {"from": branch, "to": new_branch}))

    def merge_branch(
        self,
        source_ref: str,
        into_branch: str = "main",
        *,
        mode: str = "",
        message: Optional[str] = None,
        properties: Optional[Dict[str, str]] = None,
    ) -> MergeResult:
        """Merges source_ref into into_branch.

        mode: "" (fast-forward when possible, else a merge commit),
            "ff-only" or "no-ff". Conflicting changes to a table on both
            sides raise ConflictError naming the tables.
        """
        body = {"source": source_ref, "into": into_branch, "mode": mode,
                "commit": self._commit_opts(message, properties)}
        return MergeResult.from_json(self._call("Merge", body))

    # --- tags ------------------------------------------------------------

    def get_tags(self) -> List[Tag]:
        """Lists every tag."""
        return [Tag.from_json(t) for t in self._call("ListTags") or []]

    def has_tag(self, tag: str) -> bool:
        """Whether a tag exists."""
        return any(t.name == tag for t in self.get_tags())

    def create_tag(self, tag: str, from_ref: str = "main") -> Tag:
        """Tags the commit from_ref points at. Raises AlreadyExistsError if
        the tag exists."""
        return Tag.from_json(self._call("CreateTag", {"name": tag, "from": from_ref}))

    def delete_tag(self, tag: str) -> bool:
        """Deletes a tag. Raises NotFoundError if it does not exist; returns True."""
        self._call("DeleteTag", {"name": tag})
        return True

    # --- commits ---------------------------------------------------------

    def get_commit(self, ref: str = "main") -> Commit:
        """Returns the commit a ref points at."""
        return Commit.from_json(self._call("Resolve", {"ref": ref}))

    def get_commits(self, ref: str = "main", limit: Optional[int] = None) -> List[Commit]:
        """Lists the commits of a ref, newest first, at most limit (None: all)."""
        body: Dict[str, Any] = {"ref": ref}
        if limit:
            body["limit"] = int(limit)
        return [Commit.from_json(c) for c in self._call("Log", body) or []]

    def diff(self, from_ref: str, to_ref: str = "main", *, schema: bool = False) -> DiffResult:
        """Compares two refs: the tables and namespaces added, removed or
        changed from from_ref to to_ref (with schema changes if schema)."""
        body: Dict[str, Any] = {"from": from_ref, "to": to_ref}
        if schema:
            body["schema"] = True
        return DiffResult.from_json(self._call("Diff", body))

    # --- namespaces ------------------------------------------------------

    def get_namespaces(self, ref: str = "main") -> List[str]:
        """Lists the namespaces at a ref."""
        return list(self._call("ListNamespaces", {"ref": ref}) or [])

    def has_namespace(self, namespace: str, ref: str = "main") -> bool:
        """Whether a namespace exists at a ref."""
        return namespace in self.get_namespaces(ref)

    def create_namespace(self, namespace: str, branch: str, *, message: Optional[str] = None) -> Commit:
        """Creates a namespace on a branch and returns the new commit.
        Raises AlreadyExistsError if it exists."""
        body = {"branch": branch, "namespace": namespace, "commit": self._commit_opts(message, None)}
        return Commit.from_json(self._call("CreateNamespace", body))

    def delete_namespace(self, namespace: str, branch: str, *, message: Optional[str] = None) -> Commit:
        """Deletes an empty namespace on a branch and returns the new commit.
        A namespace with tables raises FailedPreconditionError."""
        body = {"branch": branch, "namespace": namespace, "commit": self._commit_opts(message, None)}
        return Commit.from_json(self._call("DeleteNamespace", body))

    # --- tables ----------------------------------------------------------

    def _split_table(self, table: str, namespace: Optional[str]) -> Tuple[str, str]:
        return split_table(table, namespace, self._namespace)

    def _table_body(self, table: str, namespace: Optional[str], **kw: Any) -> Dict[str, Any]:
        ns, name = self._split_table(table, namespace)
        body = {"namespace": ns, "table": name}
        body.update({k: v for k, v in kw.items() if v is not None})
        return body

    def get_tables(self, ref: str = "main", namespace: Optional[str] = None) -> List[TableSummary]:
        """Lists the tables at a ref, in one namespace or (None) all."""
        body = {"ref": ref}
        if namespace:
            body["namespace"] = namespace
        return [TableSummary.from_json(t) for t in self._call("ListTables", body) or []]

    def get_table(self, table: str, ref: str = "main", namespace: Optional[str] = None) -> Table:
        """Describes a table at a ref: schema, partitioning, snapshot, files.
        table is "name" (in namespace, else the profile's namespace) or
        "namespace.name". Raises NotFoundError if it does not exist."""
        return Table.from_json(self._call("GetTable", self._table_body(table, namespace, ref=ref)))

    def has_table(self, table: str, ref: str = "main", namespace: Optional[str] = None) -> bool:
        """Whether a table exists at a ref."""
        try:
            self.get_table(table, ref=ref, namespace=namespace)
        except _errors.NotFoundError:
            return False
        return True

    def delete_table(
        self, table: str, branch: str, namespace: Optional[str] = None, *, message: Optional[str] = None
    ) -> Commit:
        """Deletes a table on a branch and returns the new commit."""
        body = self._table_body(table, namespace, branch=branch, commit=self._commit_opts(message, None))
        return Commit.from_json(self._call("DeleteTable", body))

    def revert_table(
        self,
        table: str,
        source_ref: str,
        into_branch: str,
        namespace: Optional[str] = None,
        *,
        message: Optional[str] = None,
    ) -> Commit:
        """Sets a table on into_branch back to its state at source_ref (a
        table absent there is removed) and returns the new commit."""
        body = self._table_body(table, namespace, branch=into_branch, **{"from": source_ref},
                                commit=self._commit_opts(message, None))
        return Commit.from_json(self._call("RevertTable", body))

    def get_table_history(
        self, table: str, ref: str = "main", namespace: Optional[str] = None, limit: Optional[int] = None
    ) -> List[Dict[str, Any]]:
        """Lists the commits that changed a table, newest first:
        [{"commit": Commit, "change": str, "snapshot_id": int}]."""
        body = self._table_body(table, namespace, ref=ref, limit=int(limit) if limit else None)
        return [
            {"commit": Commit.from_json(h.get("commit")), "change": h.get("change", ""),
             "snapshot_id": int(h.get("snapshot_id") or 0)}
            for h in self._call("TableHistory", body) or []
        ]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or passwd
        return ""


# The pyarrow exception types of the gRPC codes, for errors without the
# lakehouse marker (the server is down, a proxy or gRPC itself answered).
def _fallback_class(e: BaseException) -> type:
    for flight_type, cls in (
        ("FlightUnavailableError", _errors.UnavailableError),
        ("FlightTimedOutError", _errors.UnavailableError),
        ("FlightUnauthenticatedError", _errors.UnauthenticatedError),
        ("FlightUnauthorizedError", _errors.PermissionDeniedError),
        ("FlightInternalError", _errors.InternalError),
    ):
        t = getattr(fl, flight_type, None)
        if t is not None and isinstance(e, t):
            return cls
    if isinstance(e, pa.ArrowKeyError):
        return _errors.NotFoundError
    if isinstance(e, pa.ArrowInvalid):
        return _errors.InvalidArgumentError
    if isinstance(e, ConnectionError):
        return _errors.UnavailableError
    return _errors.InternalError


_STATUS_PREFIX = " returned "
_MESSAGE_PREFIX = "with message: "


def _strip_status_prefix(text: str) -> str:
    """Cuts pyarrow's "Flight returned <code> error, with message: " off."""
    i = text.find(_MESSAGE_PREFIX)
    if i >= 0 and _STATUS_PREFIX in text[:i]:
        return text[i + len(_MESSAGE_PREFIX):]
    return text


def convert_error(e: BaseException, addr: str = "") -> _errors.LakehouseError:
    """Converts an exception of a pyarrow.flight call into the
    LakehouseError subclass of the server's error class, with its message
    and hint (see docs/protocol.md, Errors). Errors without the server's
    marker are classed by their gRPC status; an unreachable server is
    UnavailableError with a hint to start one."""
    if isinstance(e, _errors.LakehouseError):
        return e
    text = _strip_status_prefix(str(e))
    msg, info = _errors.split_marker(text)
    if info is not None:
        cls = _errors.error_class(str(info.get("class", "")))
        return cls(msg, hint=str(info.get("hint") or ""), class_name=str(info.get("class") or ""))
    cls = _fallback_class(e)
    if cls is _errors.UnavailableError:
        return cls(
            "cannot reach the lakehouse server at %s: %s" % (addr, msg.strip()),
            hint="start it with `lakehouse serve`, or check the address (Client(addr=...) / LAKEHOUSE_ADDR)",
        )
    return cls(msg.strip())
