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
    """A notebook cell raised; the message is 'code cell N: Error: message' (N counts the notebook's code cells)."""


def notebook_paths(only: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose names start with a prefix."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return paths


def _write_atomic(text: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def clean(nb, *, keep_run_metadata: bool = True):
    """Drop widget state (a stale '0%' bar when opened untrusted) and, unless kept, papermill's bookkeeping."""
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


def save_figures(nb, folder: Path, stem: str) -> list[Path]:
    """Write every PNG the notebook shows to folder/<stem>_fig<N>.png, in order."""
    paths = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png:
                path = folder / f"{stem}_fig{len(paths) + 1:02d}.png"
                folder.mkdir(parents=True, exist_ok=True)
                content = base64.b64decode(png)
                atomic_write(path, lambda tmp, b=content: tmp.write_bytes(b))
                paths.append(path)
    return paths


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # drop terminal colours


def _failure(nb, ename: str, evalue: str, traceback: list[str]) -> str:
    """'code cell N: Error: message' for the failed cell (N counts the notebook's own code cells from 1)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    n = next(
        (i for i, c in enumerate(code, 1) if any(o.output_type == "error" for o in c.outputs)), "?"
    )
    # IPython marks the failing line of the cell with an arrow: "----> 4 assert x < y".
    arrows = [ln for ln in _plain("\n".join(traceback)).splitlines() if re.match(r"-+> ", ln)]
    line = re.sub(r"^-+>\s*\d*\s*", "", arrows[-1]) if arrows else ""
    return f"code cell {n}: {ename}: {evalue or line}".strip()


def execute(
    path: Path,
    out: Path,
    *,
    timeout: int = 1800,
    html: Path | None = None,
    figures: Path | None = None,
    inplace: bool = False,
):
    """Run one notebook top to bottom in a fresh kernel (cwd = its folder) with papermill; write it to `out`.

    A failing cell, a cell past `timeout` seconds or a kernel that dies still leaves the
    executed-so-far notebook at `out`; then NotebookFailed names the cell. Returns the notebook.
    """
    import logging

    import nbformat
    import papermill as pm
    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    # Its per-cell chatter and its "Kernel died" log lines: every failure is raised and reported.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lesson5-kernel-") as private:
        # IPC sockets in a private folder instead of TCP: nothing listens on the network, and
        # the kernel has no reason to print its unencrypted-TCP warning into the output.
        ipc = os.name == "posix"
        # The async manager, as nbclient's default: a blocking client's IOPub read blocks the
        # event loop, so neither the cell timeout nor the dead-kernel watch would ever run.
        km = AsyncKernelManager(
            kernel_name="python3",
            transport="ipc" if ipc else "tcp",
            **({"ip": str(Path(private) / "kernel")} if ipc else {}),
        )
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
        if error is not None:
            message = _failure(raw, error.ename, error.evalue, error.traceback)
        elif stopped is not None:
            # No error output to find: the cell stopped is the last one papermill started.
            code = [c for c in raw.cells if c.cell_type == "code"]
            started = [
                i
                for i, c in enumerate(code, 1)
                if c.metadata.get("papermill", {}).get("start_time")
            ]
            message = f"code cell {started[-1] if started else '?'}: {stopped}"
        else:
            message = None
        nb = clean(raw, keep_run_metadata=not inplace)
        if message is not None and inplace:
            raise NotebookFailed(f"{message} (the committed notebook was left as it was)")
        _write_atomic(nbformat.writes(nb), out)
        if html is not None:
            _write_atomic(to_html(nb), html)
        if figures is not None:
            save_figures(nb, figures, path.stem)
        if message is not None:
            raise NotebookFailed(message)
    return nb


def to_html(nb) -> str:
    """The executed notebook as a standalone HTML page (nbconvert's default template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


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
    """`lesson5 run`: execute the notebooks into --out (or in place) with a line per notebook, then a summary."""
    folder = Path(getattr(args, "notebooks", None) or NOTEBOOKS)
    paths = notebook_paths(args.only, folder)
    if not paths:
        print(
            f"no notebooks found in {folder}: pass --notebooks DIR (a folder of NN_*.ipynb), "
            "or run from a clone of the repository (README: Start here)"
        )
        return 1
    source = getattr(args, "data", None) or None
    if source not in (None, "synthetic"):
        # Each kernel runs in its notebook's folder: a path relative to here would point elsewhere there.
        source = str(Path(source).expanduser().resolve())
    problem = check_data(source)
    if problem:
        print(f"error: {problem}")
        return 2
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"running {len(paths)} notebooks on "
        f"{'the synthetic data set' if source == 'synthetic' else source or 'MovieLens'}"
        f"; outputs in {out_dir}",
        flush=True,
    )
    start, times = time.perf_counter(), {}

    def run_one(path: Path) -> None:
        target = path if args.inplace else out_dir / path.name
        html = out_dir / "html" / path.with_suffix(".html").name
        t0 = time.perf_counter()
        try:
            execute(
                path,
                target,
                timeout=args.timeout,
                html=html,
                figures=out_dir / "figures",
                inplace=args.inplace,
            )
        except Exception as e:  # noqa: BLE001 - report any failure and go on to the next notebook
            times[path.name] = None
            print(f"{path.name} FAILED after {time.perf_counter() - t0:.1f} s ({e}); see {target}")
            return
        times[path.name] = time.perf_counter() - t0
        print(f"{path.name} done in {times[path.name]:.1f} s -> {target}", flush=True)

    # Two kernels of one training thread each keep both cores busy; `--data X` reaches them
    # as LESSON5_DATA, since they inherit this process's environment.
    jobs = max(1, min(getattr(args, "jobs", 2), len(paths)))
    setting = {"LESSON5_DATA": source} if source is not None else {}
    with mock.patch.dict(os.environ, setting), ThreadPoolExecutor(jobs) as pool:
        list(pool.map(run_one, paths))
    times = {p.name: times[p.name] for p in paths}  # the table in the lesson's order
    workbooks: list[Path] | None = []
    if getattr(args, "workbooks", True) and not args.only:
        workbooks = write_workbooks(out_dir / "workbooks", source)
    failed = [name for name, seconds in times.items() if seconds is None]
    failed += [] if workbooks is not None else ["workbooks"]
    ran = len(paths) - len([n for n in failed if n != "workbooks"])
    print(
        f"\n{ran} of {len(paths)} notebooks ran; the run took {time.perf_counter() - start:.1f} s "
        f"(HTML copies in {out_dir / 'html'})\n"
    )
    print(summary(times, workbooks or [], out_dir))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0
