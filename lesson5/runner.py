"""`python -m lesson5 run`: the whole lesson, each notebook in a fresh kernel (README: `make lesson`).

For each numbered notebook, in order: execute it (nbclient), write the executed copy and an
HTML copy into the output folder, print one progress line. Notebooks write workbooks and
figures there too and report their numbers with `lesson5.report.record`; the run ends with a
summary table built from those records.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import time
from pathlib import Path

from lesson5 import report
from lesson5.atomic import atomic_write

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_paths(only: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose names start with a prefix."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return paths


def _write_atomic(text: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def execute(path: Path, out: Path, timeout: int = 1800, html: Path | None = None):
    """Run one notebook top to bottom in a fresh kernel (cwd = its folder); write it to `out` (and `html`).

    A cell that fails still leaves the executed-so-far notebook (with the traceback) at `out`,
    then the error is raised again.
    """
    import tempfile

    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # "python3" is the native kernel: the interpreter running this code, whatever the
    # notebook's metadata names, so a missing kernelspec cannot stop the run. IPC sockets in
    # a private folder instead of TCP: nothing listens on the network, and the kernel has
    # no reason to print its unencrypted-TCP warning into the run's output.
    with tempfile.TemporaryDirectory(prefix="lesson5-kernel-") as sockets:
        ipc = os.name == "posix"  # Windows has no IPC transport; TCP on localhost there
        km = KernelManager(kernel_name="python3", transport="ipc" if ipc else "tcp",
                           **({"ip": str(Path(sockets) / "kernel")} if ipc else {}))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        client.owns_km = True  # so it stops the kernel and its channels at the end, as with its own manager
        try:
            client.execute()
        finally:
            _save(nb, out, html)
    return nb


def _save(nb, out: Path, html: Path | None) -> None:
    """Write the executed (or partly executed) notebook and its HTML copy."""
    import nbformat

    _write_atomic(nbformat.writes(nb), out)
    if html is not None:
        _write_atomic(to_html(nb), html)


def to_html(nb) -> str:
    """The executed notebook as a standalone HTML page (nbconvert's default template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


@contextlib.contextmanager
def environment(**values: str | None):
    """Set (or, with None, unset) environment variables for the kernels started inside; restore after."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_data(source: str | None) -> str | None:
    """None when the lesson's data can be had (found, or downloaded now); else the reason, with the way out."""
    from lesson5 import data

    if source == "synthetic":
        return None
    try:
        if source is None:
            data.fetch(progress=False, timeout=30)
        else:
            data.load_ratings(source)
    except data.DataError as e:
        return (f"MovieLens is not available: {e}\n"
                "To run the whole lesson anyway, on a small synthetic data set with the same "
                "shape (no download needed):\n    python -m lesson5 run --data synthetic")
    return None


def _failure(e: Exception, executed: Path) -> str:
    """'code cell N, line L: Error: message' for a failed notebook cell (N counts code cells from 1)."""
    import nbformat

    plain = lambda text: re.sub(r"\x1b\[[0-9;]*m", "", text)  # noqa: E731 - drop terminal colours
    try:
        cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
        where, err = next((i, o) for i, c in enumerate(cells, 1) for o in c.get("outputs", [])
                          if o.output_type == "error")
    except (OSError, StopIteration, ValueError):
        return plain(f"{type(e).__name__}: {e}").strip().splitlines()[-1]
    # IPython marks the failing line of the cell with an arrow: "----> 4 assert x < y".
    arrows = [ln for ln in plain("\n".join(err.traceback)).splitlines() if re.match(r"-+> ", ln)]
    line = re.sub(r"^-+>\s*\d*\s*", "", arrows[-1]) if arrows else ""
    return f"code cell {where}: {err.ename}: {err.evalue or line}".strip()


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary(rows: list[dict], out_dir: Path) -> str:
    """The end-of-run table: each model's validation RMSE and training time, each workbook's path."""
    models = [r for r in rows if r.get("kind", "model") == "model"]
    files = [r for r in rows if r.get("kind") == "workbook"]
    lines = []
    if models:
        w = max(len("model"), *(len(r["name"]) for r in models))
        lines.append(f"{'notebook':<28} {'model':<{w}} {'valid RMSE':>10} {'train s':>8} {'epochs':>6}")
        for r in models:
            lines.append(f"{r.get('notebook', ''):<28} {r['name']:<{w}} {_fmt(r.get('valid_rmse'), '10.4f')} "
                         f"{_fmt(r.get('seconds'), '8.1f')} {_fmt(r.get('epochs'), '>6')}")
    else:
        lines.append("no model results were recorded")
    for r in files:
        lines.append(f"workbook  {r['name']:<22} {r.get('path', '')}")
    for r in rows:  # anything else a notebook reported: its fields as they are
        if r.get("kind", "model") not in ("model", "workbook"):
            fields = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in r.items() if k not in ("name", "notebook", "kind"))
            lines.append(f"{r['kind']:<9} {r['name']}: {fields}")
    figures = sorted((out_dir / "figures").glob("*.png"))
    lines.append(f"figures   {len(figures)} in {out_dir / 'figures'}")
    return "\n".join(lines)


def write_workbooks(folder: Path, source: str | None) -> list[str]:
    """Write every workbook of `lesson5.excel.EXPORTS` into `folder` and record each; names of those that failed.

    The notebooks build the workbooks to teach them (and may remove them again); the run
    writes its own copies with the same package functions as `python -m lesson5 excel`.
    """
    import importlib
    import io

    from lesson5.excel import EXPORTS

    folder.mkdir(parents=True, exist_ok=True)
    failed = []
    for entry in EXPORTS:
        module, func = entry.split(":")
        t0 = time.perf_counter()
        print(f"[workbooks] {entry} ...", end="", flush=True)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporters' own chatter
                paths = getattr(importlib.import_module(module), func)(folder, source=source)
        except Exception as e:  # noqa: BLE001 - report it, write the others, fail the run at the end
            failed.append(entry)
            print(f" FAILED ({type(e).__name__}: {e})", flush=True)
            continue
        for path in paths:
            report.record(Path(path).name, kind="workbook", path=str(path))
        print(f" done in {time.perf_counter() - t0:.1f} s -> {', '.join(Path(p).name for p in paths)}", flush=True)
    return failed


def main(args: argparse.Namespace) -> int:
    """`lesson5 run`: execute the notebooks into --out (or in place) with a line per notebook, then a summary."""
    folder = Path(getattr(args, "notebooks", None) or NOTEBOOKS)
    paths = notebook_paths(args.only, folder)
    if not paths:
        print(f"no notebooks found in {folder}")
        return 1
    from lesson5.data import SOURCE_ENV

    source = getattr(args, "data", None) or os.environ.get(SOURCE_ENV) or None
    if source not in (None, "synthetic"):
        # Each kernel runs in its notebook's folder: a path relative to here would point elsewhere there.
        source = str(Path(source).expanduser().resolve())
    problem = check_data(source)
    if problem:
        print(f"error: {problem}")
        return 2
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / report.RESULTS).unlink(missing_ok=True)  # the summary is about this run only
    print(f"running {len(paths)} notebooks on {'the synthetic data set' if source == 'synthetic' else source or 'MovieLens'}"
          f"; outputs in {out_dir}", flush=True)
    start, failed = time.perf_counter(), []
    for i, path in enumerate(paths, 1):
        target = path if args.inplace else out_dir / path.name
        html = out_dir / "html" / path.with_suffix(".html").name
        t0 = time.perf_counter()
        print(f"[{i}/{len(paths)}] {path.name} ...", end="", flush=True)
        with environment(**{report.OUT_ENV: str(out_dir), report.NOTEBOOK_ENV: path.stem,
                            SOURCE_ENV: source}):
            try:
                execute(path, target, timeout=args.timeout, html=html)
            except Exception as e:  # noqa: BLE001 - report any failure and go on to the next notebook
                failed.append(path.name)
                print(f" FAILED after {time.perf_counter() - t0:.1f} s ({_failure(e, target)}); see {target}",
                      flush=True)
                continue
        print(f" done in {time.perf_counter() - t0:.1f} s -> {target}", flush=True)
    if getattr(args, "workbooks", True) and not args.only:
        with environment(**{report.OUT_ENV: str(out_dir), report.NOTEBOOK_ENV: "lesson5 excel"}):
            failed += write_workbooks(out_dir / "workbooks", source)
    ran = len(paths) - sum(f.endswith(".ipynb") for f in failed)
    print(f"\n{ran} of {len(paths)} notebooks ran; the run took {time.perf_counter() - start:.1f} s "
          f"(HTML copies in {out_dir / 'html'})\n")
    print(summary(report.read_results(out_dir), out_dir))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0
