"""Pipeline runs of lakehouse.Client (a mixin of Client).

``run`` packs the project folder as a gzip'd tar, sends it base64 in the
JSON body of the Run action, and reads the run's events (status changes,
log lines) as the action's results until the run ends; with detach it
returns as soon as the server has the run. See docs/protocol.md, Runs.
"""

import base64
import io
import os
import sys
import tarfile
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import errors as _errors
from .results import Run

#: The largest project the client sends (the server has its own limit).
MAX_PROJECT_BYTES = 64 << 20

# Folders never sent with a project.
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def pack_project(project_dir: str, limit: int = MAX_PROJECT_BYTES) -> bytes:
    """Returns the project folder as a gzip'd tar of its files (paths
    relative to the folder; VCS, cache and virtualenv folders left out).
    Raises InvalidArgumentError if it is not a project or is too large."""
    root = os.path.abspath(project_dir)
    if not os.path.isfile(os.path.join(root, "lakehouse.yml")):
        raise _errors.InvalidArgumentError(
            "%s is not a lakehouse project: it has no lakehouse.yml" % project_dir,
            hint="pass the folder of lakehouse.yml, or create one with `lakehouse init`",
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for f in sorted(filenames):
                full = os.path.join(dirpath, f)
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                tar.add(full, arcname=os.path.relpath(full, root).replace(os.sep, "/"), recursive=False)
                if buf.tell() > limit:
                    break
    data = buf.getvalue()
    if len(data) > limit:
        raise _errors.InvalidArgumentError(
            "the project %s is larger than %d MiB packed" % (project_dir, limit >> 20),
            hint="keep data files out of the project folder: import them with import_data",
        )
    return data


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
        on_event: Optional[Callable[[Dict[str, Any]], None]] = None,
        verbose: bool = False,
    ) -> Run:
        """Runs the pipeline project in project_dir on the server and
        returns its Run (id, status, tables, record).

        ref: the branch the run writes to (default: the server's default,
            main refuses writes). namespace: the project namespace.
        parameters: values of the project's parameters.
        detach: return once the server has the run (status "running");
            follow it with get_run / get_run_logs.
        strict: failed expectations and schema warnings fail the run.
        cache: reuse cached results of unchanged models.
        on_event: called with every event the server sends (status
            changes, log lines); verbose prints log lines to stderr.

        A failed run is returned with status "failed" and its error;
        errors before it starts (bad project, plan errors) raise.
        """
        body: Dict[str, Any] = {
            "project": base64.b64encode(pack_project(project_dir)).decode("ascii"),
            "detach": bool(detach),
            "strict": bool(strict),
            "no_cache": not cache,
            "dry_run": bool(dry_run),
        }
        if ref:
            body["ref"] = ref
        if namespace:
            body["namespace"] = namespace
        if parameters:
            body["parameters"] = {str(k): _param(v) for k, v in parameters.items()}
        if preview:
            body["preview"] = preview
        if priority is not None:
            body["priority"] = int(priority)
        return self._follow("Run", body, on_event, verbose)

    def _follow(self, action: str, body: Dict[str, Any], on_event: Optional[Callable[[Dict[str, Any]], None]],
                verbose: bool) -> Run:
        """Reads the events of a run action and returns the last run record."""
        run: Optional[Run] = None
        for ev in self._do(action, body):
            if on_event is not None:
                on_event(ev)
            if verbose and ev.get("line") is not None:
                print(ev["line"], file=sys.stderr)
            rec = ev.get("run")
            if isinstance(rec, dict):
                run = Run.from_json(rec)
        if run is None:
            raise _errors.InternalError("%s: the server sent no run" % action)
        return run

    def rerun(self, run_id: str, ref: Optional[str] = None, *, detach: bool = False,
              on_event: Optional[Callable[[Dict[str, Any]], None]] = None) -> Run:
        """Runs the code of an earlier run again from the commit it started
        at (or at ref) and returns the new Run."""
        body: Dict[str, Any] = {"id": run_id, "detach": bool(detach)}
        if ref:
            body["ref"] = ref
        return self._follow("Rerun", body, on_event, False)

    def get_run(self, run_id: str) -> Run:
        """Returns a run's record. Raises NotFoundError for an unknown id."""
        return Run.from_json(self._call("GetRun", {"id": run_id}))

    def get_runs(self, limit: Optional[int] = None, status: Optional[str] = None) -> List[Run]:
        """Lists runs, newest first (at most limit; only those with status)."""
        body: Dict[str, Any] = {}
        if limit:
            body["limit"] = int(limit)
        if status:
            body["status"] = status
        return [Run.from_json(r) for r in self._call("ListRuns", body) or []]

    def get_run_logs(self, run_id: str, follow: bool = False) -> Iterator[str]:
        """Yields a run's log lines (tracebacks included); with follow,
        keeps yielding until the run ends."""
        for ev in self._do("RunLogs", {"id": run_id, "follow": bool(follow)}):
            if ev.get("line") is not None:
                yield ev["line"]

    def cancel_run(self, run_id: str) -> Run:
        """Stops a run (its target branch stays untouched) and returns its record."""
        return Run.from_json(self._call("CancelRun", {"id": run_id}))


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
