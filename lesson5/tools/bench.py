"""The speed and accuracy benchmark behind `python -m lesson5 bench`, its only entry point (benchmarks/README.md).

Every (row, run) trains in a fresh Python process, so its peak memory is its own: on CPU the peak
resident set size of that process (Python, torch and the data included), on CUDA the peak of
`torch.cuda.max_memory_allocated`. A row runs `--runs` times with seeds 0, 1, 2, ...; the table
shows medians with min-max. "epoch s" is training time per epoch (fastai's excludes its validation
pass, ours includes one evaluation of the 20k validation rows, a few ms); "fit s" is all epochs;
"to target" sums epoch times up to the first epoch at or below the target RMSE, which is computed
in the same run from the peers (the best median final RMSE of the fastai and Surprise rows) and
printed; no peer rows, no target. Every run is written as one JSON line (`--results`), with the
versions, threads, device, CPU model, load average and date, and `--table FILE` turns such a file
into the table in benchmarks/README.md. On a machine shared with other busy processes, `--threads 1` gives
steadier numbers: two intra-op threads fighting for one free core make these small steps slower.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCALE_N, SCALE_USERS, SCALE_MOVIES = 32_000_000, 200_000, 87_000  # MovieLens 32M's shape
# Targets for the scale rows, set from a profile on a 2-core, 23 GB machine (benchmarks/README.md);
# the read's were lowered from 180 s and 16 GB when the reader learned to parse numbers typed.
SCALE_TARGETS = {
    "scale-train": dict(epoch_s=60.0, peak_gb=8.0),
    "scale-read": dict(seconds=60.0, peak_gb=8.0),
}
# The accuracy targets: median final RMSE over the seeds, on the lesson's split.
ACCURACY_TARGETS = {"EmbeddingDotBias": 0.840, "EmbeddingNet": 0.855}
SCALE_READ_CAP_GB = 18.0  # address-space cap of the read row's process
README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"

INSTALL_HINTS = {
    "fastai": "make bench  (a .venv-bench with the peers of benchmarks/requirements.txt)",
    "surprise": "make bench  (or pip install scikit-surprise==1.1.5)",
}


# ---------------------------------------------------------------- one run of a row, in its own proc


def _peak_memory_mb(device) -> float:
    """Peak memory of this process: CUDA's allocator peak, or the resident set's peak on CPU.

    Not taught; benchmarks/README.md.
    """
    import resource

    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    # Linux's VmHWM is this program's own peak. ru_maxrss is not: it keeps the parent's resident
    # size at fork, so a child of a parent that grew (writing the 32M csv) reported the parent's.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _naive_loop(recipe, ds, bs: int, device, seed: int) -> tuple[list[float], list[float]]:
    """The in-project baseline: the same model and optimizer fed by a shuffling DataLoader.

    Not taught; benchmarks/README.md.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from lesson5 import schedules, train

    model, opt = recipe.build(ds.n_users, ds.n_movies, seed, ds.rating_range)
    model.to(device)
    loader = DataLoader(
        TensorDataset(*ds.tensors("train")),
        batch_size=bs,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    valid = ds.tensors("valid", device)
    sched = schedules.build(
        schedules.OneCycle() if recipe.one_cycle else None, opt, len(loader), recipe.epochs
    )
    seconds, rmse = [], []
    for _ in range(recipe.epochs):
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
        seconds.append(time.perf_counter() - start)
        rmse.append(math.sqrt(train.evaluate(model, *valid)))
    return seconds, rmse


def _recipe_for(spec: dict):
    """The row's recipe moved to its batch size (or given its own lr and wd), with its epochs.

    Not taught; benchmarks/README.md.
    """
    from lesson5 import recipes

    recipe = recipes.get(spec["recipe"])
    bs = spec["bs"]
    # Another batch size scales the rate and the weight decay (Recipe.for_batch_size), unless the
    # row sets them itself (the scale row: far outside the range that rule was tried on).
    recipe = recipe.for_batch_size(bs) if "lr" not in spec else dataclasses.replace(recipe, bs=bs)
    epochs = spec.get("epochs", recipe.stages[0][0])
    return dataclasses.replace(
        recipe,
        stages=((epochs, spec.get("lr", recipe.stages[0][1])),),
        wd=spec.get("wd", recipe.wd),
    )


def _load(spec: dict):
    """The row's ratings: MovieLens (`source`), or synthetic data of the shape `synthetic` gives.

    Not taught; benchmarks/README.md.
    """
    from lesson5 import data

    if spec.get("synthetic"):
        return data.synthetic(**spec["synthetic"], seed=0)
    return data.load(spec.get("source"))


def _train(spec: dict, ds, device, seed: int) -> dict:
    """Train one run of a row and return what it measured (seconds and RMSE per epoch, ...).

    Not taught; benchmarks/README.md.
    """
    kind = spec["kind"]
    recipe = _recipe_for(spec)
    out = dict(model=recipe.model, device=str(device), lr=recipe.stages[0][1], wd=recipe.wd)
    if kind == "lesson5":
        _, hist = recipe.run(ds, seed=seed, progress=False, device=device)
        return dict(
            out, seconds=hist.epochs.seconds.tolist(), valid_rmse=hist.epochs.valid_rmse.tolist()
        )
    if kind == "dataloader":
        seconds, rmse = _naive_loop(recipe, ds, spec["bs"], device, seed)
        return dict(out, seconds=seconds, valid_rmse=rmse)
    from lesson5.tools import peers

    if kind == "fastai":
        ours = spec.get("peer_recipe") == "ours"
        res = peers.fastai_row(
            ds,
            spec["bs"],
            use_nn=spec.get("use_nn", False),
            seed=seed,
            recipe=recipe if ours else None,
        )
        lr_wd = (recipe.stages[0][1], recipe.wd) if ours else (peers.FASTAI_LR, peers.FASTAI_WD)
        return dict(res, lr=lr_wd[0], wd=lr_wd[1])
    if kind == "surprise":
        res = peers.surprise_row(ds, seed=seed, tuned=spec.get("peer_recipe") == "tuned")
        return dict(
            res, lr=res["params"].get("lr_all", 0.005), wd=res["params"].get("reg_all", 0.02)
        )
    raise ValueError(f"unknown row kind {kind!r}")


def _read_csv_row(spec: dict) -> dict:
    """Time `lesson5.read.load_ratings` on the ratings.csv at spec['path'] and keep its peak memory.

    Not taught; benchmarks/README.md.
    """
    from lesson5 import read

    start = time.perf_counter()
    ratings = read.load_ratings(spec["path"])
    seconds = time.perf_counter() - start
    return dict(
        model="read.load_ratings",
        device="cpu",
        seconds=[seconds],
        valid_rmse=[math.nan],
        rows=len(ratings),
        file_mb=os.path.getsize(spec["path"]) / 2**20,
    )


def run_row(spec: dict) -> dict:
    """Run one (row, seed) and measure it (inside the child process).

    Not taught; benchmarks/README.md.
    """
    if spec["kind"] == "read_csv":  # torch is never imported: the peak is the reader's own
        res = _read_csv_row(spec)
        return dict(
            res,
            bs=0,
            seed=spec.get("seed", 0),
            threads=0,
            load_s=0.0,
            peak_mb=_peak_memory_mb(None),
            loadavg=os.getloadavg(),
        )
    import torch

    # Importing lesson5.device flushes subnormals to zero for every row, the peers' included, as it
    # does for the lesson (README, "Speed"); the record says whether it did.
    from lesson5.device import FLUSHES_SUBNORMALS, get_device

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = get_device(spec.get("device"))
    seed = spec.get("seed", 42)
    t0 = time.perf_counter()
    ds = _load(spec)
    load_s = time.perf_counter() - t0
    res = _train(spec, ds, device, seed)
    peak_device = torch.device(res["device"]) if res["device"].startswith("cuda") else device
    return dict(
        res,
        bs=spec["bs"],
        seed=seed,
        threads=torch.get_num_threads(),
        flush_denormal=FLUSHES_SUBNORMALS,
        load_s=load_s,
        peak_mb=_peak_memory_mb(peak_device),
        loadavg=os.getloadavg(),
    )


class RowFailed(RuntimeError):
    """A row's child process ended without a result; the message is its one-line error."""


def _cpu_jiffies() -> tuple[int, int] | None:
    """(steal, total) CPU time from /proc/stat since boot; None where there is no such file.

    Not taught; benchmarks/README.md.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Percent of the CPU time between two `_cpu_jiffies` readings that the hypervisor gave away.

    Not taught; benchmarks/README.md.
    On a virtual machine, steal is time a neighbour on the same host ran instead of us: it slows
    a row the way the load average cannot show.
    """
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])


def _run_in_child(spec: dict, timeout: float) -> dict:
    """Run `spec` in a fresh interpreter and return its JSON result, or raise RowFailed.

    Not taught; benchmarks/README.md.
    """
    cmd = [sys.executable, "-m", "lesson5.tools.bench", "--row", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RowFailed(
            f"no result within {timeout:g} s (raise --timeout to wait longer)"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RowFailed(
            lines[-1].strip()
            if lines
            else f"the row's process exited with status {done.returncode}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row_main(spec_json: str) -> int:
    """The child's side: one JSON line of results on stdout, or one line of error on stderr.

    Not taught; benchmarks/README.md.
    """
    try:
        spec = json.loads(spec_json)
        if spec["kind"] == "read_csv":
            import resource

            # A cap on this child alone: past it the row fails with MemoryError instead of the
            # kernel's OOM killer picking some process on a shared machine.
            cap = int(SCALE_READ_CAP_GB * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(json.dumps(run_row(spec)))
    except Exception as e:  # noqa: BLE001 (the parent shows this line and goes on to the next row)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"{type(e).__name__}: {first}" if first else type(e).__name__, file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- the environment of a record


def _version(name: str) -> str | None:
    """The installed version of distribution `name`, or None.

    Not taught; benchmarks/README.md.
    """
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux).

    Not taught; benchmarks/README.md.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    """The short commit of the lesson5 checkout, or None outside git.

    Not taught; benchmarks/README.md.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def environment() -> dict:
    """What a reader needs to judge a record: versions, CPU, cores, host and date.

    Not taught; benchmarks/README.md.
    """
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "pandas", "fastai", "fastcore", "scikit-surprise"):
        versions[name] = _version(name)
    versions["lesson5"] = _git_commit()
    return dict(
        versions=versions,
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        host=platform.node(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


# ---------------------------------------------------------------- the rows


def default_rows(device: str | None, scale: bool, threads: int | None) -> list[tuple[str, dict]]:
    """(label, spec) of every row: peers first (they set the target), then ours, then scale.

    Not taught; benchmarks/README.md.
    Peer rows whose package is not importable are dropped by `run`.
    """
    from lesson5 import recipes

    common = dict(device=device, threads=threads)
    rows = []
    for bs in (64, 1024):
        rows.append(
            (
                "fastai, own recipe",
                dict(kind="fastai", peer_recipe="own", recipe="onecycle-bias", bs=bs, **common),
            )
        )
        rows.append(
            (
                "fastai, our recipe",
                dict(kind="fastai", peer_recipe="ours", recipe="onecycle-bias", bs=bs, **common),
            )
        )
    rows.append(
        (
            "fastai NN, own recipe",
            dict(
                kind="fastai",
                peer_recipe="own",
                recipe="onecycle-net",
                bs=1024,
                use_nn=True,
                **common,
            ),
        )
    )
    for which in ("default", "tuned"):
        rows.append(
            (
                f"Surprise SVD, {which}",
                dict(kind="surprise", peer_recipe=which, recipe="onecycle-bias", bs=1, **common),
            )
        )
    for name in ("onecycle-bias", "onecycle-net"):
        # 64 and 1024 as the peers have them, and the recipe's own batch size (its accuracy target)
        for bs in sorted({64, recipes.get(name).bs, 1024}):
            rows.append(("lesson5 fit", dict(kind="lesson5", recipe=name, bs=bs, **common)))
    for bs in (64, 1024):
        rows.append(
            ("DataLoader loop", dict(kind="dataloader", recipe="onecycle-bias", bs=bs, **common))
        )
    if scale:
        rows.extend(scale_rows(SCALE_N, common))
    return rows


def scale_rows(n: int, common: dict) -> list[tuple[str, dict]]:
    """The two scale rows, run once each: one epoch at MovieLens 32M's shape, and reading a csv.

    Not taught; benchmarks/README.md.
    The epoch trains on synthetic data of that shape (smaller `n`, fewer users and movies); the
    read row times `lesson5.read.load_ratings` on a generated ratings.csv of `n` rows.
    """
    users, movies = min(SCALE_USERS, max(n // 100, 1000)), min(SCALE_MOVIES, max(n // 300, 500))
    shape = dict(n_users=users, n_movies=movies, n_ratings=n)
    return [
        (
            f"scale: {n / 1e6:g}M synthetic, 1 epoch",
            dict(
                kind="lesson5",
                recipe="onecycle-bias",
                bs=65_536,
                epochs=1,
                lr=1e-2,
                wd=0.2,
                synthetic=shape,
                runs=1,
                scale="scale-train",
                **common,
            ),
        ),
        (
            f"scale: read {n / 1e6:g}M-row ratings.csv",
            dict(kind="read_csv", recipe="-", bs=0, n=n, runs=1, scale="scale-read", **common),
        ),
    ]


def write_ratings_csv(
    path: Path,
    n: int,
    n_users: int = SCALE_USERS,
    n_movies: int = SCALE_MOVIES,
    seed: int = 0,
    chunk: int = 4_000_000,
) -> None:
    """A MovieLens-format ratings.csv of `n` distinct (user, movie) pairs, sorted as MovieLens is.

    Not taught; benchmarks/README.md.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    space = n_users * n_movies
    if n > space // 4:
        raise ValueError(f"{n} ratings do not fit sparsely in {n_users} users x {n_movies} movies")
    codes = np.unique(
        rng.integers(0, space, n + n // 50 + 1000)
    )  # ~0.1% repeats at 32M: drawn extra
    if len(codes) < n:
        raise RuntimeError(f"drew only {len(codes)} distinct pairs of the {n} asked for")
    codes = np.sort(rng.choice(codes, n, replace=False))
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for i in range(0, n, chunk):
            c = codes[i : i + chunk]
            pd.DataFrame(
                {
                    "userId": c // n_movies + 1,
                    "movieId": c % n_movies + 1,
                    "rating": rng.integers(1, 11, len(c)) / 2,
                    "timestamp": 1_000_000_000 + rng.integers(0, 10**9, len(c)),
                }
            ).to_csv(f, header=False, index=False)


# ---------------------------------------------------------------- from raw records to a table


def _median_range(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of the finite values; nans when there are none.

    Not taught; benchmarks/README.md.
    """
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return math.nan, math.nan, math.nan
    return statistics.median(clean), min(clean), max(clean)


def time_to_target(seconds: list[float], rmse: list[float], target: float) -> float:
    """Training seconds until the first epoch at or below `target` (nan if never).

    Not taught; benchmarks/README.md.
    """
    total = 0.0
    for s, r in zip(seconds, rmse):
        total += s
        if r is not None and not math.isnan(r) and r <= target:
            return total
    return math.nan


def _row_key(rec: dict) -> tuple:
    """What makes runs the same row: label, model and batch size.

    Not taught; benchmarks/README.md.
    """
    return rec["label"], rec["model"], rec["bs"]


def summarize(records: list[dict]) -> list[dict]:
    """One summary per row (label, model, bs), in first-seen order: medians and min-max over runs.

    Not taught; benchmarks/README.md.
    """
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(_row_key(rec), []).append(rec)
    out = []
    for (label, model, bs), recs in groups.items():
        first = recs[0]
        out.append(
            dict(
                label=label,
                model=model,
                bs=bs,
                kind=first.get("kind"),
                runs=len(recs),
                devices=sorted({r["device"] for r in recs}),
                threads=first.get("threads"),
                epoch_s=_median_range([statistics.median(r["seconds"]) for r in recs]),
                fit_s=_median_range([sum(r["seconds"]) for r in recs]),
                rmse=_median_range([r["valid_rmse"][-1] for r in recs]),
                peak_mb=_median_range([r["peak_mb"] for r in recs]),
                loadavg=_median_range([r["loadavg"][0] for r in recs]),
                records=recs,
            )
        )
    return out


def peer_target(rows: list[dict]) -> tuple[float, str] | None:
    """(target RMSE, the row it comes from): the best median final RMSE among the peer rows.

    Not taught; benchmarks/README.md.
    None when the run has no peer rows (fastai or Surprise) with a finite RMSE.
    """
    peers = [
        r for r in rows if r["kind"] in ("fastai", "surprise") and not math.isnan(r["rmse"][0])
    ]
    if not peers:
        return None
    best = min(peers, key=lambda r: r["rmse"][0])
    return best["rmse"][0], f"{best['label']} ({best['model']}, bs {best['bs']})"


def to_target(row: dict, target: float | None) -> str:
    """A row's median seconds to `target` over its runs, 'never', or 'k/n: s' when some runs miss.

    Not taught; benchmarks/README.md.
    """
    if target is None or row["records"][0].get("scale"):  # synthetic data: another target
        return "-"
    times = [time_to_target(r["seconds"], r["valid_rmse"], target) for r in row["records"]]
    hit = [t for t in times if not math.isnan(t)]
    if not hit:
        return "never"
    s = f"{statistics.median(hit):.2f}"
    return s if len(hit) == len(times) else f"{len(hit)}/{len(times)}: {s}"


def _fmt(mr: tuple[float, float, float], digits: int) -> str:
    """A median with its min-max in brackets (only the median when they agree).

    Not taught; benchmarks/README.md.
    """
    med, lo, hi = mr
    if math.isnan(med):
        return "-"
    if lo == hi:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def scale_verdicts(rows: list[dict]) -> list[str]:
    """One line per scale row: its measured time and peak against SCALE_TARGETS, PASS or MISS.

    Not taught; benchmarks/README.md.
    """
    lines = []
    for row in rows:
        which = row["records"][0].get("scale")
        if which not in SCALE_TARGETS:
            continue
        target = SCALE_TARGETS[which]
        seconds = row["epoch_s"][0]
        limit_s = target.get("epoch_s", target.get("seconds"))
        peak_gb = row["peak_mb"][0] / 1024
        ok = seconds <= limit_s and peak_gb <= target["peak_gb"]
        lines.append(
            f"{'PASS' if ok else 'MISS'} {row['label']}: {seconds:.1f} s "
            f"(target <= {limit_s:g} s), "
            f"peak {peak_gb:.2f} GB (target <= {target['peak_gb']:g} GB)"
        )
    return lines


def accuracy_verdicts(rows: list[dict]) -> list[str]:
    """One line per `lesson5 fit` row: its median RMSE over seeds against ACCURACY_TARGETS.

    Not taught; benchmarks/README.md.
    """
    lines = []
    for r in rows:
        target = ACCURACY_TARGETS.get(r["model"])
        if r["kind"] != "lesson5" or target is None or r["records"][0].get("scale"):
            continue
        med = r["rmse"][0]
        lines.append(
            f"{'PASS' if med <= target else 'MISS'} {r['label']} {r['model']} bs {r['bs']}: median "
            f"{med:.4f} over {r['runs']} seeds (target <= {target:.3f})"
        )
    return lines


def markdown_table(records: list[dict], source: str = "") -> str:
    """The README's table (markdown) from raw records, with the target and run conditions above it.

    Not taught; benchmarks/README.md.
    """
    rows = summarize(records)
    target = peer_target(rows)
    env = records[0] if records else {}
    loads = [r["loadavg"][0] for r in records]
    steals = [r["steal_pct"] for r in records if r.get("steal_pct") is not None]
    head = [
        f"<!-- generated by `python -m lesson5 bench --table {source} --readme benchmarks/README.md`: "
        "do not edit -->",
        f"Generated from {len(records)} runs in `{source or '?'}`, {env.get('date', '?')}, "
        f"{env.get('cpu', '?')} ({env.get('cores', '?')} cores), "
        f"torch {env.get('versions', {}).get('torch')}, "
        f"fastai {env.get('versions', {}).get('fastai')}, "
        f"Surprise {env.get('versions', {}).get('scikit-surprise')}; "
        f"1-min load average {min(loads, default=0):.2f}-{max(loads, default=0):.2f}"
        + (f"; CPU steal {min(steals):.1f}-{max(steals):.1f}%" if steals else "")
        + ("; **quick run** (fewer runs or rows)" if any(r.get("quick") for r in records) else "")
        + ".",
        "",
        (
            f"Target RMSE {target[0]:.4f}: the best peer's median final RMSE, {target[1]}."
            if target
            else "No peer rows in this run, so no target RMSE."
        ),
        "",
        "| row | model | bs | device | thr | runs | epoch s | fit s | valid RMSE | to target s "
        "| peak MB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rmse = "-" if r["kind"] == "read_csv" else _fmt(r["rmse"], 4)
        head.append(
            f"| {r['label']} | {r['model']} | {r['bs'] or '-'} | {', '.join(r['devices'])} | "
            f"{r['threads'] or '-'} | {r['runs']} | {_fmt(r['epoch_s'], 3)} | "
            f"{_fmt(r['fit_s'], 2)} | "
            f"{rmse} | {to_target(r, target[0] if target else None)} | {_fmt(r['peak_mb'], 0)} |"
        )
    extras = [
        f"- {r['label']}, seed {rec['seed']}: {rec['params']}"
        for r in rows
        for rec in r["records"]
        if rec.get("params")
    ]
    if extras:
        head += [
            "",
            "Surprise tuned: parameters chosen on a holdout of the training rows, per seed:",
            *extras,
        ]
    accuracy = accuracy_verdicts(rows)
    if accuracy:
        head += [
            "",
            "Accuracy targets (median final RMSE over the seeds):",
            *[f"- {v}" for v in accuracy],
        ]
    verdicts = scale_verdicts(rows)
    if verdicts:
        head += ["", "Scale targets:", *[f"- {v}" for v in verdicts]]
    return "\n".join(head)


def _no_nan(value):
    """`value` with every float nan replaced by None, so each line is strict JSON.

    Not taught; benchmarks/README.md.
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def read_records(path: str | os.PathLike) -> list[dict]:
    """The raw records of a results file (JSON lines).

    Not taught; benchmarks/README.md.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"results file {p} does not exist (write one with `lesson5 bench --results`)"
        )
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def replace_readme_table(readme: str, table: str) -> str:
    """`readme` with the text between the bench markers replaced by `table`.

    Not taught; benchmarks/README.md.
    """
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} section to fill")
    return readme[: start + len(README_BEGIN)] + "\n" + table + "\n" + readme[end:]


def readme_table(readme: str) -> str:
    """The table currently between the README's bench markers.

    Not taught; benchmarks/README.md.
    """
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} section")
    return readme[start + len(README_BEGIN) : end].strip("\n")


# ---------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (README); `--row JSON` runs a single row (internal).

    Not taught; benchmarks/README.md.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.row:
        return _row_main(args.row)
    from lesson5.tools.cli import guarded

    return guarded(lambda: run(args))


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's options, added to `parser` (the `lesson5 bench` subparser) or a new one.

    Not taught; benchmarks/README.md.
    """
    from lesson5.tools.cli import positive_int, positive_seconds  # stdlib-only module

    parser = parser or argparse.ArgumentParser(
        prog="lesson5 bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch threads per row (default: torch's)",
    )
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs of each row, seeds 0, 1, ... (default 3)"
    )
    parser.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="skip the scale rows (one epoch on 32M synthetic ratings; reading a 32M-row csv)",
    )
    parser.add_argument(
        "--scale-ratings", type=positive_int, default=SCALE_N, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 run per row, no batch-size-64 rows, no scale rows (records say quick)",
    )
    parser.add_argument(
        "--results",
        default=None,
        metavar="FILE",
        help="append one JSON line per run to FILE (e.g. benchmarks/results/DATE-HOST.jsonl)",
    )
    parser.add_argument(
        "--table", default=None, metavar="FILE", help="print the markdown table of a results file"
    )
    parser.add_argument(
        "--readme",
        default=None,
        metavar="README",
        help="with --table: write the table between the bench markers of README",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=1800, help="seconds allowed per run"
    )
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    return parser


def _scale_file(spec: dict, tmp: str) -> dict:
    """Write the ratings.csv a read row times (outside the timed child) and point the spec at it.

    Not taught; benchmarks/README.md.
    """
    path = Path(tmp) / "ratings.csv"
    if not path.exists():
        start = time.perf_counter()
        write_ratings_csv(path, spec["n"])
        print(
            f"  wrote {path.stat().st_size / 2**20:.0f} MB ratings.csv "
            f"in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return dict(spec, path=str(path))


def run(args: argparse.Namespace) -> int:
    """Run every row `--runs` times, print the table and write the records; or print a file's table.

    Not taught; benchmarks/README.md.
    A row that fails prints its one-line error and the next row runs; the exit status is then 1.
    """
    if getattr(args, "table", None):
        table = markdown_table(read_records(args.table), args.table)
        if getattr(args, "readme", None):
            p = Path(args.readme)
            p.write_text(replace_readme_table(p.read_text(), table))
        print(table)
        return 0
    if args.device or os.environ.get(
        "LESSON5_DEVICE"
    ):  # a bad device fails here once, not in every row
        from lesson5.device import get_device

        get_device(args.device)
    quick = getattr(args, "quick", False)
    runs = 1 if quick else getattr(args, "runs", 1)  # the CLI defaults to 3
    rows = default_rows(args.device, args.scale and not quick, args.threads)
    if args.scale and not quick and getattr(args, "scale_ratings", SCALE_N) != SCALE_N:
        rows = [r for r in rows if "scale" not in r[1]] + scale_rows(
            args.scale_ratings, dict(device=args.device, threads=args.threads)
        )
    if quick:  # the batch-size-64 rows are the slow ones; every row keeps its full recipe
        rows = [(label, spec) for label, spec in rows if spec["bs"] != 64]
    rows = [
        (label, spec)
        for label, spec in rows
        if spec["kind"] not in ("fastai", "surprise")
        or importlib.util.find_spec(spec["kind"]) is not None
    ]
    env = environment()
    records, failed = [], 0
    out = Path(args.results) if getattr(args, "results", None) else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    # Rounds: seed 0 of every row, then seed 1 of every row, ...: a machine whose speed drifts
    # (other jobs, a neighbour on the same host) then slows every row alike, not some rows only.
    rounds = [
        (label, spec, seed)
        for seed in range(runs)
        for label, spec in rows
        if seed < spec.get("runs", runs)
    ]
    with tempfile.TemporaryDirectory(prefix="lesson5-bench-") as tmp:
        for label, spec, seed in rounds:
            spec_run = dict(spec, seed=seed)
            print(
                f"running: {label} ({spec['recipe']}, bs {spec['bs']}), seed {seed} ...",
                file=sys.stderr,
                flush=True,
            )
            try:
                if spec["kind"] == "read_csv":
                    spec_run = _scale_file(spec_run, tmp)
                jiffies = _cpu_jiffies()
                res = _run_in_child(spec_run, args.timeout)
                res["steal_pct"] = steal_pct(jiffies, _cpu_jiffies())
            except (RowFailed, OSError, ValueError, RuntimeError, MemoryError) as e:
                failed += 1
                print(
                    f"{label} ({spec['recipe']}, bs {spec['bs']}) failed: {e}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            rec = dict(
                env,
                label=label,
                kind=spec["kind"],
                recipe=spec["recipe"],
                peer_recipe=spec.get("peer_recipe"),
                scale=spec.get("scale"),
                quick=quick,
                **res,
            )
            records.append(rec)
            if out is not None:
                with out.open("a") as f:
                    f.write(json.dumps(_no_nan(rec), allow_nan=False) + "\n")
    if records:
        print(markdown_table(records, str(out) if out else ""))
    missing = [n for n in INSTALL_HINTS if importlib.util.find_spec(n) is None]
    for name in missing:
        print(
            f"{name} is not installed, so its rows are missing; to add them: {INSTALL_HINTS[name]}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
