"""`lesson5 run` against notebooks that hang or kill their kernel (issue 23): each fails promptly.

The clock is the oracle: a 60 s cell under `--timeout 3`, and a kernel that exits mid-notebook,
must both end the notebook as FAILED within seconds, naming the cell, with the cells that ran
kept in the executed copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def notebook(folder, name, sources):
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, folder / name)


def run(tmp_path, *extra) -> subprocess.CompletedProcess:
    """`lesson5 run` in a child: a run that hangs fails the test at the timeout, never hangs it."""
    argv = ["run", "--notebooks", str(tmp_path / "nbs"), "--out", str(tmp_path / "out")]
    return subprocess.run(
        [sys.executable, "-m", "lesson5", *argv, "--no-workbooks", "--data", "synthetic", *extra],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_dead_kernel_fails_the_notebook_promptly_and_the_next_one_runs(tmp_path):
    nbs = tmp_path / "nbs"
    notebook(nbs, "00_dies.ipynb", ["print('before')", "import os; os._exit(1)", "print('after')"])
    notebook(nbs, "01_fine.ipynb", ["print('still here')"])
    start = time.perf_counter()
    proc = run(tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert time.perf_counter() - start < 60
    out = proc.stdout
    assert "00_dies.ipynb FAILED" in out and "code cell 2: the kernel died" in out
    assert "01_fine.ipynb done" in out
    executed = nbformat.read(tmp_path / "out" / "00_dies.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "before\n"
    assert executed.cells[2].outputs == []


def test_the_per_cell_timeout_stops_a_long_cell(tmp_path):
    notebook(tmp_path / "nbs", "00_slow.ipynb", ["x = 1", "import time; time.sleep(60)", "x = 2"])
    start = time.perf_counter()
    proc = run(tmp_path, "--timeout", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert time.perf_counter() - start < 40  # the cell alone would take 60 s
    out = proc.stdout
    assert "00_slow.ipynb FAILED" in out
    assert "code cell 2: still running after the per-cell timeout of 3 s" in out
    assert "raise --timeout" in out
