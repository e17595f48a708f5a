import os
import sys

# Test the source tree without installing it.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Server:
    """A `lakehouse serve` started by the tests: its process, Flight
    address and data dir."""

    def __init__(self, binary, data_dir, args=(), env=None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = os.path.join(data_dir, "serve.log")
        self._log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", data_dir, "serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
             *args],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=dict(os.environ, **(env or {}), LAKEHOUSE_ADDR="", LAKEHOUSE_API_KEY=""),
        )
        self.addr = self._read_addr()
        # The CLI's own data dir (its profile: active branch, user), so
        # that no profile of the user running the tests leaks in.
        self.client_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-client-")

    def _read_addr(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"flight on (grpc(?:\+tls)?://[^,\s]+)", line or "")
            if m:
                return m.group(1)
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("lakehouse serve did not start:\n" + open(self.log_path).read())

    def lakehouse(self, *args, check=True):
        """Runs the lakehouse CLI against the server (--addr)."""
        env = dict(os.environ, LAKEHOUSE_DATA_DIR=self.client_dir)
        return subprocess.run([self.binary, "--addr", self.addr, *args], capture_output=True, text=True,
                              check=check, env=env)

    def stop(self):
        """Stops the server by its pid (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        if getattr(self, "client_dir", None):
            shutil.rmtree(self.client_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def lakehouse_bin(tmp_path_factory):
    """The lakehouse binary: $LAKEHOUSE_BIN, else built from this checkout
    once per session (go build reuses its cache, so it is never stale)."""
    path = os.environ.get("LAKEHOUSE_BIN")
    if path:
        return path
    out = str(tmp_path_factory.mktemp("bin") / "lakehouse")
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "")
    if "duckdb_arrow" not in flags:
        env["GOFLAGS"] = (flags + " -tags=duckdb_arrow").strip()
    subprocess.run(["go", "build", "-o", out, "."], cwd=REPO, env=env, check=True)
    return out


@pytest.fixture(scope="session")
def server(lakehouse_bin):
    """A `lakehouse serve` on 127.0.0.1 over a temporary data dir, shared
    by the session and stopped by pid at its end."""
    data_dir = tempfile.mkdtemp(prefix="lakehouse-pytest-")
    s = Server(lakehouse_bin, data_dir)
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
