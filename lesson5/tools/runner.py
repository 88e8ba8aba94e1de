"""`python -m lesson5 run`: each notebook in a fresh kernel, as a student's (`make lesson`).

`--data X` reaches the kernels as `LESSON5_DATA=X`; nothing is injected. The executed copy
(partial when a cell fails), an HTML copy and its figures land in --out; `--inplace` writes the
committed notebooks back clean (no widget state, no papermill metadata).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

from lesson5.atomic import atomic_write

# A wheel carries the notebooks inside the package; a checkout has them beside it.
_PACKAGE = Path(__file__).resolve().parents[1]
NOTEBOOKS = next(
    (p for p in (_PACKAGE / "notebooks", _PACKAGE.parent / "notebooks") if p.is_dir()),
    _PACKAGE.parent / "notebooks",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class NotebookFailed(RuntimeError):
    """A cell failed: 'code cell N: Error: message' (N counts the notebook's code cells from 1)."""


def _write_atomic(content: str | bytes, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    atomic_write(out, lambda tmp: tmp.write_bytes(data))


def clean(nb, *, keep_run_metadata: bool = True):
    """Drop widget state (a stale '0%' bar when untrusted) and, unless kept, papermill's metadata."""
    nb.metadata.pop("widgets", None)
    if not keep_run_metadata:
        nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        if not keep_run_metadata:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb


def _failure(nb, error) -> str:
    """'code cell N: Error: message' for the cell papermill's `error` names."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    n = next(
        (i for i, c in enumerate(code, 1) if any(o.output_type == "error" for o in c.outputs)), "?"
    )
    # IPython marks the failing line with an arrow, "----> 4 assert x < y", in terminal colours.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))
    arrows = [ln for ln in plain.splitlines() if re.match(r"-+> ", ln)]
    line = re.sub(r"^-+>\s*\d*\s*", "", arrows[-1]) if arrows else ""
    return f"code cell {n}: {error.ename}: {error.evalue or line}".strip()


def execute(path: Path, out: Path, *, timeout: int, html: Path, figures: Path, inplace: bool):
    """Run a notebook in a fresh kernel (cwd: its folder); a failed cell raises NotebookFailed."""
    import logging

    import nbformat
    import papermill as pm
    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbconvert import HTMLExporter

    # Its per-cell chatter and its "Kernel died" log lines: every failure is raised and reported.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lesson5-kernel-") as private:
        # IPC sockets in a private folder instead of TCP (on POSIX): nothing listens on the
        # network, and the kernel has no unencrypted-TCP warning to print into the output.
        socket = {"transport": "ipc", "ip": str(Path(private) / "kernel")}
        ipc = socket if os.name == "posix" else {}
        # The async manager, as nbclient's default: a blocking client's IOPub read blocks the
        # event loop, so neither the cell timeout nor the dead-kernel watch would ever run.
        km = AsyncKernelManager(kernel_name="python3", **ipc)
        partial = Path(private) / path.name  # saved after every cell; only whole files reach `out`
        error = stopped = None
        try:
            pm.execute_notebook(
                str(path),
                str(partial),
                kernel_name="python3",
                language="python",
                # The kernel's folder through nbclient's resources path: papermill's cwd=
                # changes this whole process's folder, wrong for two notebooks in threads.
                resources={"metadata": {"path": str(path.parent)}},
                progress_bar=False,
                execution_timeout=timeout,
                km=km,
                store_widget_state=False,
            )
        except pm.PapermillExecutionError as e:
            error = e
        except CellTimeoutError:
            stopped = (
                f"still running after the per-cell timeout of {timeout} s, so it was stopped; "
                "raise --timeout or make the cell faster"
            )
        except DeadKernelError:
            stopped = (
                "the kernel died (it crashed, or the system killed it for lack of memory); "
                "the cells after it did not run"
            )
        finally:
            if km.has_kernel:  # papermill leaves a kernel it did not start running; stop it here
                run_sync(km.shutdown_kernel)(now=True)
        raw = nbformat.read(partial, as_version=4)
        message = None if error is None else _failure(raw, error)
        if stopped is not None:  # no error output: the cell stopped is the last one started
            runs = [c.metadata.get("papermill", {}) for c in raw.cells if c.cell_type == "code"]
            started = [i for i, run in enumerate(runs, 1) if run.get("start_time")]
            message = f"code cell {started[-1] if started else '?'}: {stopped}"
        nb = clean(raw, keep_run_metadata=not inplace)
        if message is not None and inplace:
            raise NotebookFailed(f"{message} (the committed notebook was left as it was)")
        _write_atomic(nbformat.writes(nb), out)
        _write_atomic(HTMLExporter().from_notebook_node(nb)[0], html)  # a standalone page
        shown = [o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])]
        for i, png in enumerate((d["image/png"] for d in shown if d.get("image/png")), 1):
            _write_atomic(base64.b64decode(png), figures / f"{path.stem}_fig{i:02d}.png")
        if message is not None:
            raise NotebookFailed(message)
    return nb


def check_data(source: str | None) -> str | None:
    """None when the lesson's data can be had (found, or downloaded now); else the reason, with the way out."""
    from lesson5 import data, download, read

    if source == "synthetic":
        return None
    try:
        if source is None:
            download.fetch(progress=False, timeout=30)
        else:
            read.load_ratings(source)
    except data.DataError as e:
        return (
            f"MovieLens is not available: {e}\n"
            "To run the whole lesson anyway, on a small synthetic data set with the same "
            "shape (no download needed):\n    python -m lesson5 run --data synthetic"
        )
    return None


def summary(times: dict[str, float | None], workbooks: list[Path], out_dir: Path) -> str:
    """The end-of-run table: each notebook's seconds (or FAILED), each workbook, the figures."""
    w = max(len("notebook"), *(len(n) for n in times)) if times else len("notebook")
    lines = [f"{'notebook':<{w}}  {'seconds':>8}"]
    for name, seconds in times.items():
        lines.append(f"{name:<{w}}  {'FAILED' if seconds is None else f'{seconds:.1f}':>8}")
    lines += [f"workbook  {p}" for p in workbooks]
    figures = sorted((out_dir / "figures").glob("*.png"))
    lines.append(f"figures   {len(figures)} in {out_dir / 'figures'}")
    return "\n".join(lines)


def write_workbooks(folder: Path, source: str | None) -> list[Path] | None:
    """The run's own copies of the workbooks (`lesson5 excel`'s function); None if that failed."""
    import io

    from lesson5 import excel

    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print("[workbooks] lesson5.excel.write_all ...", end="", flush=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            paths = excel.write_all(folder, source=source)
    except Exception as e:  # noqa: BLE001 - report it and fail the run at the end
        print(f" FAILED ({type(e).__name__}: {e})", flush=True)
        return None
    names = ", ".join(p.name for p in paths)
    print(f" done in {time.perf_counter() - t0:.1f} s -> {names}", flush=True)
    return paths


def main(args: argparse.Namespace) -> int:
    """`lesson5 run`: the notebooks into --out (or in place), a line each, then a summary."""
    folder = Path(args.notebooks or NOTEBOOKS)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    paths = [p for p in paths if not args.only or p.name.startswith(tuple(args.only))]
    if not paths:
        print(
            f"no notebooks found in {folder}: pass --notebooks DIR (a folder of NN_*.ipynb), "
            "or run from a clone of the repository (README: Start here)"
        )
        return 1
    source = args.data
    if source not in (None, "synthetic"):  # each kernel runs in its notebook's folder
        source = str(Path(source).expanduser().resolve())
    if problem := check_data(source):
        print(f"error: {problem}")
        return 2
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    on = "the synthetic data set" if source == "synthetic" else source or "MovieLens"
    print(f"running {len(paths)} notebooks on {on}; outputs in {out_dir}", flush=True)
    start, times, figs = time.perf_counter(), {}, out_dir / "figures"

    def run_one(path: Path) -> None:
        target = path if args.inplace else out_dir / path.name
        html = out_dir / "html" / path.with_suffix(".html").name
        t0 = time.perf_counter()
        try:
            execute(
                path, target, timeout=args.timeout, html=html, figures=figs, inplace=args.inplace
            )
        except Exception as e:  # noqa: BLE001 - report any failure and go on to the next notebook
            times[path.name] = None
            print(f"{path.name} FAILED after {time.perf_counter() - t0:.1f} s ({e}); see {target}")
            return
        times[path.name] = time.perf_counter() - t0
        print(f"{path.name} done in {times[path.name]:.1f} s -> {target}", flush=True)

    # Two kernels of one training thread each keep both cores busy; they inherit LESSON5_DATA.
    setting = {"LESSON5_DATA": source} if source is not None else {}
    jobs = min(args.jobs, len(paths))
    with mock.patch.dict(os.environ, setting), ThreadPoolExecutor(jobs) as pool:
        list(pool.map(run_one, paths))
    times = {p.name: times[p.name] for p in paths}  # the table in the lesson's order
    failed = [name for name, seconds in times.items() if seconds is None]
    workbooks = []
    if args.workbooks and not args.only:
        workbooks = write_workbooks(out_dir / "workbooks", source)
    print(
        f"\n{len(paths) - len(failed)} of {len(paths)} notebooks ran; the run took "
        f"{time.perf_counter() - start:.1f} s (HTML copies in {out_dir / 'html'})\n"
    )
    print(summary(times, workbooks or [], out_dir))
    failed += [] if workbooks is not None else ["workbooks"]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0
