"""The speed and accuracy benchmark behind `python -m lesson5 bench`, its only entry point (README).

Every row runs in a fresh Python process, so its peak memory is its own: on CPU the peak
resident set size of that process (Python, torch and the data included), on CUDA the peak
of `torch.cuda.max_memory_allocated`. Epoch time is training only (no validation), the
median over the row's epochs; "fit s" is the sum of all its epoch times (for Surprise, whose
fit() runs every epoch in one call, its measured total); "to 0.870 s" sums epoch times up to the
first epoch whose validation RMSE is at most 0.870 (fastai and the project evaluate every epoch,
Surprise only at the end); "data s" is the time to load (or generate) the ratings.
On a machine shared with other busy processes, `--threads 1` gives steadier numbers: two
intra-op threads fighting for one free core can make these small steps many times slower.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time

TARGET_RMSE = 0.870  # "time to 0.870": fastai's and Surprise's accuracy on this split

INSTALL_HINTS = {
    "fastai": "pip install fastai  (adds a fastai collab_learner row: EmbeddingDotBias, fit_one_cycle(5, 5e-3, wd=0.1))",
    "surprise": "pip install scikit-surprise  (adds a Surprise SVD row: 50 factors, 30 epochs)",
}


# ---------------------------------------------------------------- one row, in its own process


def _peak_memory_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time_to_target(epochs) -> float:
    """Training seconds until the first epoch at or below TARGET_RMSE (nan if never)."""
    total = 0.0
    for seconds, rmse in zip(epochs.seconds, epochs.valid_rmse):
        total += seconds
        if rmse <= TARGET_RMSE:
            return total
    return float("nan")


def _naive_loop(recipe, ds, bs: int, device, seed: int):
    """The in-project baseline: the same model and optimizer fed by a shuffling DataLoader."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from lesson5 import schedules, train

    model, opt = recipe.build(ds.n_users, ds.n_movies, seed, ds.rating_range)
    model.to(device)
    loader = DataLoader(TensorDataset(*ds.tensors("train")), batch_size=bs, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    valid = ds.tensors("valid", device)
    sched = schedules.build(schedules.OneCycle() if recipe.one_cycle else None, opt, len(loader), recipe.epochs)
    rows = []
    for epoch in range(recipe.epochs):
        model.train()
        start = time.perf_counter()
        for u, m, y in loader:
            u, m, y = u.to(device), m.to(device), y.to(device)
            loss = F.mse_loss(model(u, m), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        rows.append(dict(seconds=seconds, valid_rmse=math.sqrt(train.evaluate(model, *valid))))
    import pandas as pd

    return pd.DataFrame(rows)


def run_row(spec: dict) -> dict:
    """Train one row of the table and measure it (runs inside the child process)."""
    import torch

    from lesson5 import data, recipes
    from lesson5.device import get_device

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = get_device(spec.get("device"))
    seed = spec.get("seed", 42)
    kind = spec["kind"]
    t0 = time.perf_counter()
    if spec.get("synthetic"):  # MovieLens-10M-like shape: 70,000 users, 10,000 movies
        ds = data.synthetic(n_users=70_000, n_movies=10_000, n_ratings=spec["synthetic"], seed=0)
    else:
        ds = data.load(spec.get("source"))
    load_s = time.perf_counter() - t0
    bs = spec["bs"]
    recipe = recipes.get(spec["recipe"])
    # Moving to another batch size scales the rate and the weight decay (Recipe.for_batch_size),
    # unless the row sets them itself (the 10M row: far outside the range that rule was tried on).
    recipe = recipe.for_batch_size(bs) if "lr" not in spec else dataclasses.replace(recipe, bs=bs)
    epochs_n = spec.get("epochs", recipe.stages[0][0])
    recipe = dataclasses.replace(recipe, stages=((epochs_n, spec.get("lr", recipe.stages[0][1])),),
                                 wd=spec.get("wd", recipe.wd))
    if kind == "lesson5":
        _, hist = recipe.run(ds, seed=seed, progress=False, device=device)
        epochs = hist.epochs
    elif kind == "dataloader":
        epochs = _naive_loop(recipe, ds, bs, device, seed)
    elif kind in ("fastai", "surprise"):
        import pandas as pd

        from lesson5.tools import peers

        res = (peers.fastai_row(ds, bs, use_nn=spec.get("use_nn", False), seed=seed) if kind == "fastai"
               else peers.surprise_row(ds, seed=seed))
        epochs = pd.DataFrame({"seconds": res["seconds"], "valid_rmse": res["valid_rmse"]})
        recipe = dataclasses.replace(recipe, model=res["model"])
        device = torch.device("cpu")
    else:
        raise ValueError(f"unknown row kind {kind!r}")
    return dict(
        model=recipe.model, bs=bs, device=str(device), threads=torch.get_num_threads(),
        epoch_s=statistics.median(epochs.seconds), epochs=len(epochs), fit_s=float(epochs.seconds.sum()),
        peak_mb=_peak_memory_mb(device), valid_rmse=float(epochs.valid_rmse.iloc[-1]),
        to_target_s=_time_to_target(epochs), load_s=load_s,
    )


class RowFailed(RuntimeError):
    """A row's child process ended without a result; the message is its one-line error."""


def _run_in_child(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "lesson5.tools.bench", "--row", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RowFailed(f"no result within {timeout:g} s (raise --timeout to wait longer)") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RowFailed(lines[-1].strip() if lines else f"the row's process exited with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row_main(spec_json: str) -> int:
    """The child's side: one JSON line of results on stdout, or one line of error on stderr (never a traceback)."""
    try:
        print(json.dumps(run_row(json.loads(spec_json))))
    except Exception as e:  # noqa: BLE001 (the parent shows this line and goes on to the next row)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{type(e).__name__}: {first}" if first else type(e).__name__, file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- the table


def default_rows(device: str | None, scale: bool, threads: int | None) -> list[tuple[str, dict]]:
    """(label, spec) of every row: the fast loop, the DataLoader baseline, and optionally the 10M scale row."""
    common = dict(device=device, threads=threads)
    rows = []
    for bs in (64, 1024):
        rows.append(("lesson5 fit", dict(kind="lesson5", recipe="onecycle-bias", bs=bs, **common)))
        rows.append(("DataLoader loop", dict(kind="dataloader", recipe="onecycle-bias", bs=bs, **common)))
    rows.append(("lesson5 fit, 3 epochs", dict(kind="lesson5", recipe="onecycle-bias", bs=2048, epochs=3, **common)))
    for bs in (64, 1024):
        rows.append(("lesson5 fit", dict(kind="lesson5", recipe="onecycle-net", bs=bs, **common)))
    if scale:
        rows.append(("lesson5 fit, 10M synthetic",
                     dict(kind="lesson5", recipe="onecycle-bias", bs=65_536, synthetic=10_000_000, epochs=3,
                          lr=1e-2, wd=0.2, **common)))
    return rows


def format_table(results: list[dict]) -> str:
    """A fixed-width text table of the results."""
    head = f"{'row':<27} {'model':<17} {'bs':>6} {'device':<6} {'thr':>3} {'epoch s':>8} {'fit s':>7} {'peak MB':>8} " \
           f"{'valid RMSE':>10} {'to 0.870 s':>10} {'data s':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        to_target = "-" if math.isnan(r.get("to_target_s", math.nan)) else f"{r['to_target_s']:.2f}"
        lines.append(f"{r['label']:<27} {r['model']:<17} {r['bs']:>6} {r['device']:<6} {r['threads']:>3} "
                     f"{r['epoch_s']:>8.3f} {r['fit_s']:>7.2f} {r['peak_mb']:>8.0f} {r['valid_rmse']:>10.4f} {to_target:>10} {r['load_s']:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (README); `--row JSON` runs a single row (internal)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.row:
        return _row_main(args.row)
    from lesson5.tools.cli import guarded

    return guarded(lambda: run(args))


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's options, added to `parser` (the `lesson5 bench` subparser) or a new one (README)."""
    from lesson5.tools.cli import positive_int, positive_seconds  # stdlib-only module

    parser = parser or argparse.ArgumentParser(prog="lesson5 bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads per row (default: torch's)")
    parser.add_argument("--no-scale", dest="scale", action="store_false",
                        help="skip the 10M-rating synthetic row at batch size 65,536 (about 35 s and 1.7 GB)")
    parser.add_argument("--timeout", type=positive_seconds, default=1800, help="seconds allowed per row")
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run every row, print the table and the install hints for the optional comparisons.

    A row that fails prints its one-line error and the next row runs; the exit status is then 1.
    """
    import os

    if args.device or os.environ.get("LESSON5_DEVICE"):  # a bad device fails here once, not in every row
        from lesson5.device import get_device

        get_device(args.device)
    results, failed = [], 0

    def attempt(label: str, spec: dict) -> None:
        nonlocal failed
        try:
            results.append({"label": label, **_run_in_child(spec, args.timeout)})
        except RowFailed as e:
            failed += 1
            print(f"{label} ({spec['recipe']}, bs {spec['bs']}) failed: {e}", file=sys.stderr, flush=True)

    for label, spec in default_rows(args.device, args.scale, args.threads):
        print(f"running: {label} ({spec['recipe']}, bs {spec['bs']}) ...", file=sys.stderr, flush=True)
        attempt(label, spec)
    external = [("fastai collab_learner", dict(kind="fastai", recipe="onecycle-bias", bs=bs)) for bs in (64, 1024)]
    external.append(("fastai collab_learner", dict(kind="fastai", recipe="onecycle-net", bs=1024, use_nn=True)))
    external.append(("Surprise SVD", dict(kind="surprise", recipe="onecycle-bias", bs=1)))  # SGD per rating
    for label, spec in external:
        if importlib.util.find_spec(spec["kind"]) is None:
            continue
        print(f"running: {label} ...", file=sys.stderr, flush=True)
        spec.update(device="cpu", threads=args.threads)
        attempt(label, spec)
    print(format_table(results))
    missing = [n for n in INSTALL_HINTS if importlib.util.find_spec(n) is None]
    for name in missing:
        print(f"{name} is not installed, so its row is missing; to add it: {INSTALL_HINTS[name]}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
