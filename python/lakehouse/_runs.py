"""Pipeline runs of lakehouse.Client (a mixin of Client).

``run`` packs the project folder as a gzip'd tar, sends it (base64 in the
JSON body) with the Run action, and reads the run's events (a "started"
event with the run record, model states, log lines, previews, then
"finished" with the final record) until the run ends; with detach the
stream ends after "started" and the run goes on. See docs/protocol.md, Runs.
"""

import base64
import io
import os
import sys
import tarfile
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import errors as _errors
from .results import LogLine, Run

# Ceilings of the project a client sends (flight.MaxProject*Ceiling): a
# server enforces its own, lower limits (serve --max-project-bytes,
# --max-project-unpacked) and names them when it refuses a project.
MAX_PROJECT_BYTES = 190 << 20
MAX_PROJECT_UNPACKED = 4 << 30
MAX_PROJECT_FILES = 10000

# The files a run ships (runrec.IsProjectFile): code and small text files,
# no hidden files or folders, no __pycache__.
_PROJECT_EXTS = (".py", ".sql", ".yml", ".yaml", ".json", ".txt", ".toml", ".cfg")
_PROJECT_HINT = "keep data files and environments out of the project folder"

EventHandler = Callable[[Dict[str, Any]], None]


def _ships(name: str) -> bool:
    return not name.startswith(".") and name != "__pycache__"


def pack_project(project_dir: str) -> bytes:
    """Returns the project folder as the gzip'd tar a run sends: its
    folders and code files (.py, .sql, .yml, .yaml, .json, .txt, .toml,
    .cfg; no hidden ones), paths relative to the folder, links to files
    sent as the files. Raises InvalidArgumentError if the folder is not a
    project or is over the server's limits."""
    root = os.path.abspath(project_dir)
    if not os.path.isdir(root):
        raise _errors.NotFoundError("the project folder %s does not exist" % project_dir)
    if not any(os.path.isfile(os.path.join(root, f)) for f in ("lakehouse.yml", "lakehouse.yaml")):
        raise _errors.InvalidArgumentError(
            "%s is not a lakehouse project: it has no lakehouse.yml" % project_dir,
            hint="pass the folder of lakehouse.yml, or create one with `lakehouse init`",
        )
    buf = io.BytesIO()
    entries = total = 0
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if _ships(d) and not os.path.islink(os.path.join(dirpath, d)))
            rel_dir = os.path.relpath(dirpath, root)
            names = [(d, True) for d in dirnames]
            names += [(f, False) for f in sorted(filenames)
                      if _ships(f) and f.lower().endswith(_PROJECT_EXTS) and os.path.isfile(os.path.join(dirpath, f))]
            for name, is_dir in names:
                entries += 1
                if entries > MAX_PROJECT_FILES:
                    raise _errors.InvalidArgumentError(
                        "the project folder %s holds more than %d files and folders" % (project_dir, MAX_PROJECT_FILES),
                        hint=_PROJECT_HINT)
                arc = name if rel_dir == "." else os.path.join(rel_dir, name)
                info = tarfile.TarInfo(arc.replace(os.sep, "/"))
                if is_dir:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                with open(os.path.join(dirpath, name), "rb") as f:
                    data = f.read()
                total += len(data)
                if total > MAX_PROJECT_UNPACKED:
                    raise _errors.InvalidArgumentError(
                        "the project folder %s holds more than %d MiB of project files"
                        % (project_dir, MAX_PROJECT_UNPACKED >> 20), hint=_PROJECT_HINT)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out = buf.getvalue()
    if len(out) > MAX_PROJECT_BYTES:
        raise _errors.InvalidArgumentError(
            "the project folder %s is %d MiB compressed, more than a run may send (%d MiB)"
            % (project_dir, len(out) >> 20, MAX_PROJECT_BYTES >> 20), hint=_PROJECT_HINT)
    return out


class RunsMixin:
    """The run methods of lakehouse.Client."""

    def run(
        self,
        project_dir: str = ".",
        ref: Optional[str] = None,
        namespace: Optional[str] = None,
        parameters: Optional[Dict[str, Any]] = None,
        *,
        detach: bool = False,
        strict: bool = False,
        cache: bool = True,
        dry_run: bool = False,
        preview: Optional[str] = None,
        priority: Optional[int] = None,
        keep_failed: Optional[str] = None,
        on_event: Optional[EventHandler] = None,
        verbose: bool = False,
    ) -> Run:
        """Runs the pipeline project in project_dir on the server and
        returns its Run (id, status, target, tables, record).

        ref: the branch the run writes to (its results merge into it when
            the run succeeds). namespace: the namespace of models and
            unqualified tables (default: the project's, else the profile's).
        parameters: values of the project's parameters, {"min_usd": 10}.
        detach: return once the server has started the run (status
            "running"); follow it with get_run / get_run_logs.
        strict: failed expectations and schema warnings fail the run.
        cache: reuse the outputs of unchanged models from earlier runs.
        dry_run: plan only; the Run has status "planned" and ``plan``.
        preview: "head" (default) or "off": the first rows of each model.
        priority: 1-10 (default 5), orders runs waiting for a function.
        keep_failed: how long a failed run's branch stays ("7d", "0").
        on_event: called with every event the server sends (see
            docs/protocol.md, Runs); verbose prints log lines and notes to
            stderr as ``lakehouse run`` does.

        A run that fails is returned with status "failed", ``error`` and
        ``failure``; errors before it starts (no project, plan errors, a
        bad ref) raise.
        """
        body: Dict[str, Any] = {
            "project": base64.b64encode(pack_project(project_dir)).decode("ascii"),
            "dir": project_dir,
            "project_dir": os.path.abspath(project_dir),
            "ref": ref or "",
            "profile_namespace": self._namespace,
            "strict": bool(strict),
            "no_cache": not cache,
            "dry_run": bool(dry_run),
            "detach": bool(detach),
            "user": self._author,
        }
        if namespace:
            body["namespace"] = namespace
        if parameters:
            body["parameters"] = ["%s=%s" % (k, _param(v)) for k, v in parameters.items()]
        if preview:
            body["preview"] = preview
        if priority is not None:
            body["priority"] = int(priority)
        if keep_failed is not None:
            body["keep_failed"] = keep_failed
        return self._follow("Run", body, on_event, verbose)

    def rerun(
        self,
        run_id: str,
        ref: Optional[str] = None,
        *,
        detach: bool = False,
        strict: bool = False,
        priority: Optional[int] = None,
        on_event: Optional[EventHandler] = None,
        verbose: bool = False,
    ) -> Run:
        """Runs the code of an earlier run again from the commit it started
        at and returns the new Run. ref: the branch to write to (default:
        the run's target; created at the run's start commit if missing)."""
        body: Dict[str, Any] = {"run_id": run_id, "detach": bool(detach), "strict": bool(strict),
                                "user": self._author}
        if ref:
            body["ref"] = ref
        if priority is not None:
            body["priority"] = int(priority)
        return self._follow("Rerun", body, on_event, verbose)

    def _follow(self, action: str, body: Dict[str, Any], on_event: Optional[EventHandler], verbose: bool) -> Run:
        """Reads the events of a run action; returns the run as the last
        event with a record left it."""
        record: Optional[Dict[str, Any]] = None
        failure = plan = None
        for ev in self._do(action, body):
            if on_event is not None:
                on_event(ev)
            typ = ev.get("type")
            if verbose:
                _print_event(ev)
            if isinstance(ev.get("record"), dict):
                record = ev["record"]
            if typ == "finished" and isinstance(ev.get("error"), dict):
                failure = ev["error"]
            if typ == "plan":
                plan = {"text": ev.get("text", ""), "plan": ev.get("plan", "")}
        if record is None and plan is None:
            raise _errors.InternalError("%s: the server sent no run record" % action)
        return Run.from_json(record, failure=failure, plan=plan)

    def get_run(self, run_id: str) -> Run:
        """Returns a run by id (or a unique prefix of 4+ hex digits).
        Raises NotFoundError for an unknown id."""
        return Run.from_json(self._call("GetRun", {"id": run_id}))

    def get_runs(self, limit: Optional[int] = None) -> List[Run]:
        """Lists runs, newest first (at most limit; None: all)."""
        body: Dict[str, Any] = {}
        if limit:
            body["limit"] = int(limit)
        return [Run.from_json(r) for r in self._call("ListRuns", body) or []]

    def get_run_logs(self, run_id: str, follow: bool = False, model: Optional[str] = None) -> Iterator[LogLine]:
        """Yields a run's log lines (tracebacks included): only model's
        (and the run's own) if model is given; with follow, keeps yielding
        new lines until the run ends."""
        body: Dict[str, Any] = {"id": run_id, "follow": bool(follow)}
        if model:
            body["model"] = model
        for line in self._do("RunLogs", body):
            yield LogLine.from_json(line)

    def cancel_run(self, run_id: str) -> Dict[str, Any]:
        """Asks a run to stop; its target branch stays untouched. Returns
        {"id", "status", "target"}."""
        return self._call("CancelRun", {"id": run_id})

    def delete_run(self, run_id: str) -> Dict[str, Any]:
        """Deletes an ended run's record (and a failed run's kept branch).
        Returns {"deleted", "deleted_branch"}."""
        return self._call("DeleteRun", {"id": run_id})


def _print_event(ev: Dict[str, Any]) -> None:
    typ = ev.get("type")
    model = ev.get("model") or ""
    if typ == "log":
        print("%s | %s" % (model, ev.get("text", "")) if model else ev.get("text", ""), file=sys.stderr)
    elif typ in ("message", "warning", "notice", "print"):
        print(ev.get("text", ""), file=sys.stderr)
    elif typ == "state":
        print("%s: %s" % (model, ev.get("state", "")), file=sys.stderr)
    elif typ == "finished" and isinstance(ev.get("error"), dict):
        print("run failed: %s" % ev["error"].get("message", ""), file=sys.stderr)


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
