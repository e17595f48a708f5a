"""The Python benchmark harnesses in bench/ run end to end at a small size,
so that the commands the docs give for their figures keep working. The
figures themselves come from full-size runs (see docs/clients/adbc.md and
python/README.md); here only the shape of the output is checked."""

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("script,rows", [("adbc_stream.py", "ADBC Flight SQL"), ("client_stream.py", "Client.query_to_reader")])
def test_bench_script_runs(lakehouse_bin, script, rows):
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", script), "--rows", "100000", "--repeat", "1"],
        env=dict(os.environ, LAKEHOUSE_BIN=lakehouse_bin), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "100000 rows x 4 int64 columns" in out.stdout, out.stdout
    assert rows in out.stdout, out.stdout
