"""Execute the lesson's notebooks in order, each in a fresh kernel (README: `make lesson`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_paths(only: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose names start with a prefix."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return paths


def execute(path: Path, out: Path, timeout: int = 1800):
    """Run one notebook top to bottom in a fresh kernel (cwd = its folder); write it to `out`."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # "python3" is the native kernel: the interpreter running this code, whatever the
    # notebook's metadata names, so a missing kernelspec cannot stop the run.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(out)
    return nb


def main(args: argparse.Namespace) -> int:
    """`lesson5 run`: execute the notebooks into --out (or in place) with a line per notebook."""
    paths = notebook_paths(args.only)
    if not paths:
        print(f"no notebooks found in {NOTEBOOKS}")
        return 1
    out_dir = Path(args.out)
    start = time.perf_counter()
    for i, path in enumerate(paths, 1):
        target = path if args.inplace else out_dir / path.name
        t0 = time.perf_counter()
        print(f"[{i}/{len(paths)}] {path.name} ...", end="", flush=True)
        execute(path, target, timeout=args.timeout)
        print(f" done in {time.perf_counter() - t0:.1f} s -> {target}", flush=True)
    print(f"all {len(paths)} notebooks ran in {time.perf_counter() - start:.1f} s")
    return 0
