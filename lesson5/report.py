"""Where a lesson run puts its outputs, and the results notebooks hand back to `lesson5 run`.

`python -m lesson5 run` sets $LESSON5_OUT (the output folder) and $LESSON5_NOTEBOOK (the
notebook being executed) for each kernel. Notebooks call:

- `output_path("collab_filter.xlsx")`: where to write a file the lesson produces (the
  workbooks); $LESSON5_OUT, else the uncommitted `build/lesson` folder;
- `record(name, **fields)`: one JSON line in $LESSON5_OUT/results.jsonl (a trained model's
  valid_rmse and seconds, a workbook's path); a no-op outside a run, so nbval leaves no trace;
- `save_figure(fig, name)`: a PNG in $LESSON5_OUT/figures; also a no-op outside a run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from lesson5.atomic import atomic_write

OUT_ENV, NOTEBOOK_ENV, RESULTS = "LESSON5_OUT", "LESSON5_NOTEBOOK", "results.jsonl"


def _default_out() -> Path:
    """build/lesson in the checkout when running from one, else in the current folder."""
    root = Path(__file__).resolve().parent.parent
    return (root if (root / "pyproject.toml").exists() else Path.cwd()) / "build" / "lesson"


def out_dir() -> Path:
    """The output folder of this run: $LESSON5_OUT, else build/lesson (never a committed folder)."""
    env = os.environ.get(OUT_ENV)
    return Path(env).expanduser() if env else _default_out()


def output_path(name: str) -> Path:
    """Path for a file the lesson writes (e.g. a workbook) inside out_dir(), its folder created."""
    path = out_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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
    raise TypeError(f"record(): value {value!r} of type {type(value).__name__} is not a number, string or path")


def record(name: str, **fields) -> dict | None:
    """Append {"name", "notebook", **fields} to results.jsonl when a lesson run is going on; else do nothing."""
    if not os.environ.get(OUT_ENV):
        return None
    row = {"name": name, "notebook": os.environ.get(NOTEBOOK_ENV, "")}
    row.update({k: _plain(v) for k, v in fields.items()})
    path = output_path(RESULTS)
    # One write of one short line in append mode: a reader never sees half a record.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return row


def save_figure(fig, name: str) -> Path | None:
    """Save a matplotlib figure as figures/<name>.png during a lesson run (temporary file, then rename)."""
    if not os.environ.get(OUT_ENV):
        return None
    path = output_path(f"figures/{name}.png")
    # savefig picks the format from the name's suffix; the temporary name ends in .tmp.
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))


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
