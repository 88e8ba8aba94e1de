"""What a notebook hands back to `lesson5 run`: one JSON line per result in the run's output folder.

The runner passes each notebook its output folder as the parameter `out` (a cell tagged
`parameters`, papermill's convention). With `out = None`, a student's own run or nbval's,
`record` does nothing, so nothing is written outside the notebook. Figures need no call:
the runner saves every image a notebook shows.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

RESULTS = "results.jsonl"


def _plain(value):
    """JSON-friendly value: numpy/torch scalars to float/int, paths to str, nan to None."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(
        f"record(): value {value!r} of type {type(value).__name__} is not a number, string or path"
    )


def record(
    out: str | os.PathLike | None, name: str, *, notebook: str = "", **fields
) -> dict | None:
    """Append {"name", "notebook", **fields} to out/results.jsonl; with `out` None, do nothing."""
    if out is None:
        return None
    row = {"name": name, "notebook": notebook}
    row.update({k: _plain(v) for k, v in fields.items()})
    path = Path(out) / RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one short line in append mode: a reader never sees half a record.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return row


def read_results(folder: str | os.PathLike) -> list[dict]:
    """The records of a run, in order; a line that is not JSON raises ValueError naming file and line."""
    path = Path(folder) / RESULTS
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {n}: not a JSON record ({e})") from e
    return rows
