"""The objects a lakehouse.Client returns: branches, tags, commits, tables,
merge, diff and import results, runs.

Each is a small frozen dataclass built from the server's JSON (see
docs/protocol.md); ``raw`` keeps that JSON for fields the class does not
name. This module imports nothing but the standard library.
"""

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = [
    "Commit",
    "Branch",
    "Tag",
    "TableSummary",
    "Table",
    "MergeResult",
    "DiffResult",
    "ImportResult",
    "Run",
    "LogLine",
]

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(s: Optional[str]) -> Optional[_dt.datetime]:
    """Parses an RFC 3339 time as Go writes it (nanoseconds, "Z") into an
    aware datetime; None or "" stays None."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    # datetime takes at most microseconds.
    s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s, count=1)
    return _dt.datetime.fromisoformat(s)


@dataclass(frozen=True)
class Commit:
    """A catalog commit: its id (a hex hash), parents, author, message and time."""

    id: str
    parents: List[str]
    height: int
    tree: str
    author: str
    message: str
    time: Optional[_dt.datetime]
    properties: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Optional[Dict[str, Any]]) -> Optional["Commit"]:
        """Builds it from the JSON the server sends."""
        if not d:
            return None
        return cls(
            id=d.get("id", ""),
            parents=list(d.get("parents") or []),
            height=int(d.get("height") or 0),
            tree=d.get("tree", ""),
            author=d.get("author", ""),
            message=d.get("message", ""),
            time=parse_time(d.get("time")),
            properties=dict(d.get("properties") or {}),
        )


@dataclass(frozen=True)
class Branch:
    """A branch: its name and the commit at its head."""

    name: str
    head: str
    commit: Optional[Commit] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Branch":
        """Builds it from the JSON the server sends."""
        return cls(name=d["name"], head=d.get("head", ""), commit=Commit.from_json(d.get("commit")))


@dataclass(frozen=True)
class Tag:
    """A tag: a name for one commit."""

    name: str
    commit: str

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Tag":
        """Builds it from the JSON the server sends."""
        return cls(name=d["name"], commit=d.get("commit", ""))


@dataclass(frozen=True)
class TableSummary:
    """One table of a listing: namespace, name and current snapshot."""

    namespace: str
    name: str
    snapshot_id: int
    metadata_location: str

    @property
    def fqn(self) -> str:
        """The qualified name, ``namespace.name``."""
        return "%s.%s" % (self.namespace, self.name)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "TableSummary":
        """Builds it from the JSON the server sends."""
        return cls(
            namespace=d.get("namespace", ""),
            name=d.get("name", ""),
            snapshot_id=int(d.get("snapshot_id") or 0),
            metadata_location=d.get("metadata_location", ""),
        )


@dataclass(frozen=True)
class Table:
    """A table at a ref, as ``lakehouse table get -O json`` shows it:
    schema (a list of {"id","name","type","required"}), partition spec,
    current snapshot, row, file and byte counts. ``raw`` holds every field."""

    namespace: str
    name: str
    commit: str
    metadata_location: str
    schema: List[Dict[str, Any]]
    partition_spec: List[Dict[str, Any]]
    row_count: int
    file_count: int
    total_bytes: int
    snapshot_count: int
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def fqn(self) -> str:
        """The qualified name, ``namespace.name``."""
        return "%s.%s" % (self.namespace, self.name)

    @property
    def columns(self) -> List[str]:
        """The column names, in schema order."""
        return [c["name"] for c in self.schema]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Table":
        """Builds it from the JSON the server sends."""
        return cls(
            namespace=d.get("namespace", ""),
            name=d.get("name", ""),
            commit=d.get("commit", ""),
            metadata_location=d.get("metadata_location", ""),
            schema=list(d.get("schema") or []),
            partition_spec=list(d.get("partition_spec") or []),
            row_count=int(d.get("row_count") or 0),
            file_count=int(d.get("file_count") or 0),
            total_bytes=int(d.get("total_bytes") or 0),
            snapshot_count=int(d.get("snapshot_count") or 0),
            raw=d,
        )


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: outcome ("fast-forward", "merge", "up-to-date"),
    the merge base, the new head commit and the tables it changed."""

    outcome: str
    base: str
    commit: Optional[Commit]
    changed_tables: List[str]
    combined_tables: List[str]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "MergeResult":
        """Builds it from the JSON the server sends."""
        return cls(
            outcome=d.get("outcome", ""),
            base=d.get("base", ""),
            commit=Commit.from_json(d.get("commit")),
            changed_tables=list(d.get("changed_tables") or []),
            combined_tables=list(d.get("combined_tables") or []),
        )


@dataclass(frozen=True)
class DiffResult:
    """The difference between two refs: the commits compared, the tables
    ({"table","change",...}; change is "added", "removed" or "changed")
    and namespaces ({"namespace","change"}) that differ."""

    from_commit: str
    to_commit: str
    tables: List[Dict[str, Any]]
    namespaces: List[Dict[str, Any]]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "DiffResult":
        """Builds it from the JSON the server sends."""
        return cls(
            from_commit=d.get("from", ""),
            to_commit=d.get("to", ""),
            tables=list(d.get("tables") or []),
            namespaces=list(d.get("namespaces") or []),
        )


@dataclass(frozen=True)
class ImportResult:
    """What an import did: whether it created the table, the files imported
    and skipped (already imported: same name, size and mtime), rows and
    bytes written, warnings, and the new commit."""

    created: bool
    imported: List[str]
    skipped: List[str]
    rows: int
    bytes: int
    warnings: List[str]
    commit: Optional[Commit]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ImportResult":
        """Builds it from the JSON the server sends."""
        return cls(
            created=bool(d.get("created")),
            imported=list(d.get("imported") or []),
            skipped=list(d.get("skipped") or []),
            rows=int(d.get("rows") or 0),
            bytes=int(d.get("bytes") or 0),
            warnings=list(d.get("warnings") or []),
            commit=Commit.from_json(d.get("commit")),
        )


@dataclass(frozen=True)
class Run:
    """A pipeline run: its id, status ("running", "succeeded", "failed",
    "cancelled", "interrupted", "planned" for a dry run, ...), the branch
    it writes to (``target``), the tables it wrote, and the whole run
    record as ``lakehouse runs get -O json`` shows it (``record``).

    ``failure`` says why a run that ended here failed: {"message",
    "class" ("failed" or "conflict"), "hint", "model", "traceback"}.
    ``plan`` is a dry run's plan: {"text": ..., "plan": ...}.
    """

    id: str
    status: str
    target: str
    tables: List[str]
    error: str
    record: Dict[str, Any] = field(repr=False, default_factory=dict)
    failure: Optional[Dict[str, Any]] = field(repr=False, default=None)
    plan: Optional[Dict[str, Any]] = field(repr=False, default=None)

    @property
    def run_id(self) -> str:
        """The run's id (Bauplan's name for ``id``)."""
        return self.id

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self.status not in ("", "running")

    @property
    def succeeded(self) -> bool:
        """Whether the run ended well."""
        return self.status in ("succeeded", "planned")

    @property
    def models(self) -> List[Dict[str, Any]]:
        """The run's models with their state, rows, table and error."""
        return list(self.record.get("models") or [])

    @classmethod
    def from_json(cls, d: Optional[Dict[str, Any]], failure: Optional[Dict[str, Any]] = None,
                  plan: Optional[Dict[str, Any]] = None) -> "Run":
        """Builds it from the JSON the server sends."""
        d = d or {}
        tables = []
        for m in d.get("models") or []:
            t = m.get("table") if isinstance(m, dict) else None
            if t and t not in tables:
                tables.append(t)
        return cls(
            id=d.get("id") or "",
            status=d.get("status") or ("planned" if plan is not None else ""),
            target=d.get("target") or "",
            tables=tables,
            error=d.get("error") or (failure or {}).get("message") or "",
            record=d,
            failure=failure,
            plan=plan,
        )


@dataclass(frozen=True)
class LogLine:
    """One line of a run's log: when, which model (empty for the run's own
    lines), which stream ("stdout", "stderr" or "lakehouse") and the text."""

    time: Optional[_dt.datetime]
    model: str
    stream: str
    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "LogLine":
        """Builds it from the JSON the server sends."""
        return cls(time=parse_time(d.get("t") or d.get("time")), model=d.get("model") or "",
                   stream=d.get("stream") or "", text=d.get("text") or "")
