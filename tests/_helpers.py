"""Shared by the tests: a prerequisite's skip (a failure in CI), files and zips written, a child
Python run on this checkout, its stderr read as one line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def need(condition: bool, reason: str) -> None:
    """Skip on a developer's machine, but fail in CI, where every prerequisite must be present."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI run lacks a prerequisite: {reason}")
    pytest.skip(reason)


def write(folder: Path, content: str | bytes | None, name: str = "ratings.csv") -> Path:
    """Write a file (None: make a folder of that name)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def zip_of(members: dict[str, str | bytes]) -> bytes:
    """The bytes of a deflated zip holding `members` (name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def one_line(stderr: str) -> str:
    """The one non-blank line of `stderr`, which holds no traceback."""
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def python(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """`python *args` in a child that imports this checkout; text output, 300 s at most."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    kw = {"capture_output": True, "text": True, "timeout": 300, **kw}
    return subprocess.run([sys.executable, *args], env=env, **kw)
