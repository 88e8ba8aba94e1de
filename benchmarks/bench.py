"""lesson5's speed and accuracy against fastai and Surprise (`make bench`, benchmarks/README.md).

`python benchmarks/bench.py [--quick] [--results FILE]` runs every row; `--table FILE [--readme
README]` prints (and writes between README's bench markers) the table of a results file. Every
(row, seed) trains in a fresh process (multiprocessing's spawn), so its peak memory is its own:
the peak resident set on CPU, the CUDA allocator's peak on a GPU. Rows run in rounds of seeds;
each run is one strict JSON line with the environment. The target RMSE is the best peer row's
median final RMSE in the same run; without peer rows there is none.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from lesson5.tools.cli import Parser, positive_int  # stdlib only: a read row's peak stays its own

SCALE_N, SCALE_USERS, SCALE_MOVIES = 32_000_000, 200_000, 87_000  # MovieLens 32M's shape
# (seconds, peak GB), set from a profile on a 2-core, 23 GB machine (README, "Targets").
SCALE_TARGETS = {"scale-train": (60.0, 8.0), "scale-read": (60.0, 8.0)}
ACCURACY_TARGETS = {"EmbeddingDotBias": 0.840, "EmbeddingNet": 0.855}  # median over the seeds
READ_CAP_GB = 18.0  # the read row's address space: past it MemoryError, not the OOM killer
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PEERS = {  # kind: how to get its rows
    "fastai": "make bench  (a .venv-bench with the peers of benchmarks/requirements.txt)",
    "surprise": "make bench  (or pip install scikit-surprise==1.1.5)",
}
NEEDED = ("label", "kind", "model", "bs", "seed", "device", "threads", "seconds", "valid_rmse")
NEEDED += ("peak_mb", "loadavg")
OPTIONAL = dict(scale=None, params=None, steal_pct=None, quick=False)  # older records lack them


def default_rows(device: str | None, threads: int | None, scale_n: int = SCALE_N) -> list:
    """(label, spec) of every row: peers first (they set the target), ours, then scale (0: none)."""
    from lesson5 import recipes

    c = dict(device=device, threads=threads)
    bias = dict(c, recipe="onecycle-bias")
    rows = [
        (f"fastai, {who} recipe", dict(bias, kind="fastai", peer_recipe=p, bs=bs))
        for bs in (64, 1024)
        for who, p in (("own", "own"), ("our", "ours"))
    ]
    net = dict(c, recipe="onecycle-net", bs=1024, use_nn=True)
    rows.append(("fastai NN, own recipe", dict(net, kind="fastai", peer_recipe="own")))
    rows += [
        (f"Surprise SVD, {w}", dict(bias, kind="surprise", peer_recipe=w, bs=1))
        for w in ("default", "tuned")
    ]
    # 64 and 1024 as the peers have them, and the recipe's own batch size (its accuracy target)
    rows += [
        ("lesson5 fit", dict(c, kind="lesson5", recipe=name, bs=bs))
        for name in ("onecycle-bias", "onecycle-net")
        for bs in sorted({64, recipes.get(name).bs, 1024})
    ]
    rows += [("DataLoader loop", dict(bias, kind="dataloader", bs=bs)) for bs in (64, 1024)]
    if scale_n:
        n = scale_n
        shape = dict(n_users=min(SCALE_USERS, max(n // 100, 1000)), n_ratings=n)
        shape["n_movies"] = min(SCALE_MOVIES, max(n // 300, 500))
        once = dict(runs=1, epochs=1, bs=65_536, lr=1e-2, wd=0.2)  # its own lr, wd: see _recipe
        train = dict(bias, kind="lesson5", synthetic=shape, scale="scale-train", **once)
        read = dict(c, kind="read_csv", recipe="-", bs=0, n=n, runs=1, scale="scale-read")
        rows += [(f"scale: {n / 1e6:g}M synthetic, 1 epoch", train)]
        rows += [(f"scale: read {n / 1e6:g}M-row ratings.csv", read)]
    return rows


def write_ratings_csv(path, n: int, n_users=SCALE_USERS, n_movies=SCALE_MOVIES, chunk=4_000_000):
    """A MovieLens-format ratings.csv of `n` distinct (user, movie) pairs, sorted as MovieLens is."""
    import numpy as np
    import pandas as pd

    rng, space = np.random.default_rng(0), n_users * n_movies
    if n > space // 4:
        raise ValueError(f"{n} ratings do not fit sparsely in {n_users} users x {n_movies} movies")
    codes = np.unique(rng.integers(0, space, n + n // 50 + 1000))  # ~0.1% repeat at 32M
    if len(codes) < n:
        raise RuntimeError(f"drew only {len(codes)} distinct pairs of the {n} asked for")
    codes = np.sort(rng.choice(codes, n, replace=False))
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for c in (codes[i : i + chunk] for i in range(0, n, chunk)):
            cols = dict(userId=c // n_movies + 1, movieId=c % n_movies + 1)
            cols.update(rating=rng.integers(1, 11, len(c)) / 2)
            cols.update(timestamp=1_000_000_000 + rng.integers(0, 10**9, len(c)))
            pd.DataFrame(cols).to_csv(f, header=False, index=False)


# ---------------------------------------------------------------- one run, in its own process


def _peak_mb(device=None) -> float:
    """This process's peak memory in MB: CUDA's allocator peak, else the resident set's."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    try:  # VmHWM: ru_maxrss would count the resident size of the parent at fork
        return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _recipe(spec: dict):
    """The row's recipe at its batch size, with its epochs (and its own lr and wd if it sets them)."""
    from lesson5 import recipes

    r = recipes.get(spec["recipe"])
    # Another batch size scales lr and wd (Recipe.for_batch_size), unless the row sets them (the
    # scale row: far outside the range that rule was tried on).
    r = r.for_batch_size(spec["bs"]) if "lr" not in spec else dataclasses.replace(r, bs=spec["bs"])
    stage = (spec.get("epochs", r.stages[0][0]), spec.get("lr", r.stages[0][1]))
    return dataclasses.replace(r, stages=(stage,), wd=spec.get("wd", r.wd))


def _dataloader_loop(recipe, ds, bs: int, device, seed: int) -> dict:
    """The in-project baseline: the same model and optimizer fed by torch's shuffling DataLoader."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from lesson5 import schedules, train

    model, opt = recipe.build(ds.n_users, ds.n_movies, seed, ds.rating_range)
    model.to(device)
    shuffle = torch.Generator().manual_seed(seed)
    data = TensorDataset(*ds.tensors("train"))
    loader = DataLoader(data, batch_size=bs, shuffle=True, generator=shuffle)
    valid = ds.tensors("valid", device)
    sched = schedules.build(recipe.sched, opt, len(loader), recipe.epochs)
    seconds, rmse = [], []
    for _ in range(recipe.epochs):
        model.train()
        start = time.perf_counter()
        for u, m, y in loader:
            loss = F.mse_loss(model(u.to(device), m.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
        rmse.append(math.sqrt(train.evaluate(model, *valid)))
    return dict(seconds=seconds, valid_rmse=rmse)


def run_row(spec: dict) -> dict:
    """Run one (row, seed) in this process and return what it measured."""
    kind, seed, start = spec["kind"], spec.get("seed", 0), time.perf_counter()
    if kind not in ("lesson5", "dataloader", "read_csv", *PEERS):
        raise ValueError(f"unknown row kind {kind!r}")
    if kind == "read_csv":  # torch is never imported: the peak is the reader's own
        from lesson5 import read

        rows = len(read.load_ratings(spec["path"]))
        out = dict(model="read.load_ratings", seconds=[time.perf_counter() - start], rows=rows)
        out.update(valid_rmse=[math.nan], device="cpu", bs=0, threads=0, load_s=0.0)
        mb = os.path.getsize(spec["path"]) / 2**20
        return dict(out, seed=seed, file_mb=mb, peak_mb=_peak_mb(), loadavg=os.getloadavg())
    import torch

    # Importing lesson5.device flushes subnormals to zero for every row, the peers' included, as it
    # does for the lesson (README, "Speed"); the record says whether it did.
    from lesson5 import data
    from lesson5.device import FLUSHES_SUBNORMALS, get_device, training_threads

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device, shape = get_device(spec.get("device")), spec.get("synthetic")
    ds = data.synthetic(**shape, seed=0) if shape else data.load(spec.get("source"))
    load_s, recipe = time.perf_counter() - start, _recipe(spec)
    out = dict(model=recipe.model, device=str(device), lr=recipe.stages[0][1], wd=recipe.wd)
    threads = torch.get_num_threads()
    if kind == "lesson5":  # fit picks its threads (one for small CPU batches): record that choice
        with training_threads(None, spec["bs"], device) as threads:
            _, hist = recipe.run(ds, seed=seed, progress=False, device=device)
        out.update(seconds=hist.epochs.seconds.tolist(), valid_rmse=hist.epochs.valid_rmse.tolist())
    elif kind == "dataloader":
        out.update(_dataloader_loop(recipe, ds, spec["bs"], device, seed))
    else:
        import peers  # beside this script; its packages import only here

        if kind == "fastai":
            ours = recipe if spec.get("peer_recipe") == "ours" else None
            out = peers.fastai_row(ds, spec["bs"], spec.get("use_nn", False), seed, ours)
        else:
            out = peers.surprise_row(ds, seed, tuned=spec.get("peer_recipe") == "tuned")
    used = torch.device(out["device"]) if out["device"].startswith("cuda") else device
    out.update(bs=spec["bs"], seed=seed, threads=threads, load_s=load_s)
    out.update(flush_denormal=FLUSHES_SUBNORMALS, peak_mb=_peak_mb(used))
    return dict(out, loadavg=os.getloadavg())


class RowFailed(RuntimeError):
    """A row's process ended without a result; the message is its one-line error."""


def _child(spec: dict, conn) -> None:
    """The row's process: send ("ok", result) or ("error", one line) back to the parent."""
    try:
        if spec["kind"] == "read_csv":
            import resource

            cap = int(READ_CAP_GB * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        conn.send(("ok", run_row(spec)))
    except Exception as e:  # noqa: BLE001 (the parent shows this line and goes on)
        first = (str(e).strip().splitlines() or [""])[0]
        conn.send(("error", f"{type(e).__name__}: {first}" if first else type(e).__name__))


def run_in_child(spec: dict, timeout: float) -> dict:
    """Run `spec` in a fresh interpreter (spawn) and return its result, or raise RowFailed."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(spec, send))
    proc.start()
    send.close()  # the child holds the only sending end: its death without a word reads as EOF
    status, value = "timeout", f"no result within {timeout:g} s (raise --timeout to wait longer)"
    try:
        if recv.poll(timeout):
            status, value = recv.recv()
    except EOFError:
        status = "died"
    finally:  # past the timeout, or Ctrl-C in the parent, the child is killed at once
        proc.join(60 if status != "timeout" else 0)
        proc.kill()
        proc.join()
        recv.close()
    if status == "died":
        value = f"the row's process exited with status {proc.exitcode} and no result"
    if status != "ok":
        raise RowFailed(value)
    return value


def _cpu_jiffies() -> tuple[int, int] | None:
    """(steal, total) CPU time since boot from /proc/stat; None where there is no such file."""
    try:  # user nice system idle iowait irq softirq steal (guest time is inside user)
        f = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (f[7] if len(f) > 7 else 0), sum(f)


def environment() -> dict:
    """What a reader needs to judge a record: versions, the lesson5 commit, CPU, cores, host, date."""
    import lesson5

    dists = {(d.name or "").lower().replace("_", "-"): d.version for d in metadata.distributions()}
    names = ("torch", "numpy", "pandas", "fastai", "fastcore", "scikit-surprise")
    versions = dict(python=platform.python_version(), **{n: dists.get(n) for n in names})
    git = ["git", "-C", str(Path(lesson5.__file__).parent), "rev-parse", "--short", "HEAD"]
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().split("model name", 1)[1]
        cpu = cpuinfo.split(":", 1)[1].split("\n", 1)[0].strip()
    except (OSError, IndexError):
        cpu = platform.processor() or platform.machine()
    try:
        done = subprocess.run(git, capture_output=True, text=True, timeout=10)
        versions["lesson5"] = done.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        versions["lesson5"] = None
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return dict(versions=versions, cpu=cpu, cores=os.cpu_count(), host=platform.node(), date=now)


# ---------------------------------------------------------------- from raw records to the table


def read_records(path) -> list[dict]:
    """The raw records of a results file (JSON lines); a bad one is a ValueError naming its line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file {p} does not exist (write one with --results)")
    records = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        try:
            rec = json.loads(line) if line.strip() else None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}, line {i}: not a JSON record ({e.msg})") from None
        missing = [k for k in NEEDED if k not in rec] if isinstance(rec, dict) else ["fields"]
        if rec is not None and (missing or not rec["seconds"] or not rec["valid_rmse"]):
            raise ValueError(f"{p}, line {i}: a record without {', '.join(missing) or 'epochs'}")
        records += [rec] if rec is not None else []
    if not records:
        raise ValueError(f"results file {p} holds no records")
    return records


def _cell(values, digits: int) -> str:
    """The median with its min-max in brackets (the median alone when they agree; '-' for none)."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return "-"
    med, lo, hi = (f"{x:.{digits}f}" for x in (statistics.median(v), min(v), max(v)))
    return med if min(v) == max(v) else f"{med} ({lo}-{hi})"


def _to_target(hits) -> str:
    """A row's median seconds to the target, 'never', or 'k/n: s' when only k of its n runs hit."""
    hit = hits.dropna()
    s = f"{hit.median():.2f}" if len(hit) else "never"
    return s if len(hit) in (0, len(hits)) else f"{len(hit)}/{len(hits)}: {s}"


def markdown_table(records: list[dict], source: str = "") -> str:
    """The README's table (markdown) from raw records, with the target and run conditions above it."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame([{**OPTIONAL, **r} for r in records])
    df["epoch_s"], df["fit_s"] = df.seconds.map(statistics.median), df.seconds.map(sum)
    df["rmse"] = df.valid_rmse.str[-1].astype(float)  # None (strict JSON's nan) reads as nan
    keys = ["label", "model", "bs"]
    peer = df[df.kind.isin(list(PEERS))].groupby(keys, sort=False).rmse.median().dropna()
    target = peer.min() if len(peer) else math.nan

    def hit_s(rec) -> float:  # training seconds up to the first epoch at or below the target
        at = np.flatnonzero(np.array(rec.valid_rmse, dtype=float) <= target)
        return np.cumsum(rec.seconds)[at[0]] if len(at) else math.nan

    df["hit_s"] = df.apply(hit_s, axis=1)
    cells = {"epoch s": ("epoch_s", 3), "fit s": ("fit_s", 2), "valid RMSE": ("rmse", 4)}
    cells["peak MB"] = ("peak_mb", 0)
    rows = df.groupby(keys, sort=False).agg(
        kind=("kind", "first"),
        scale=("scale", "first"),
        thr=("threads", "first"),
        runs=("seed", "size"),
        device=("device", lambda d: ", ".join(sorted(set(d)))),
        epoch=("epoch_s", "median"),
        median_rmse=("rmse", "median"),
        peak=("peak_mb", "median"),
        hits=("hit_s", _to_target),
        **{name: (col, functools.partial(_cell, digits=d)) for name, (col, d) in cells.items()},
    )
    rows = rows.reset_index().rename(columns={"label": "row"})
    rows["to target s"] = rows.hits.where(rows.scale.isna() & (not math.isnan(target)), "-")
    rows["bs"], rows["thr"] = (rows[c].astype(str).replace("0", "-") for c in ("bs", "thr"))
    rows["runs"] = rows.runs.astype(str)
    columns = ["row", "model", "bs", "device", "thr", "runs", *list(cells)[:3], "to target s"]
    align = ["left", "left", "right", "left"] + ["right"] * 7
    md = rows[[*columns, "peak MB"]].to_markdown(index=False, disable_numparse=True, colalign=align)
    loads, steal, env = df.loadavg.str[0], df.steal_pct.dropna(), records[0]
    ver, best = env.get("versions", {}), peer.idxmin() if len(peer) else None
    lines = [
        f"<!-- generated by `python benchmarks/bench.py --table {source} --readme "
        "benchmarks/README.md`: do not edit -->",
        f"Generated from {len(df)} runs in `{source or '?'}`, {env.get('date', '?')}, "
        f"{env.get('cpu', '?')} ({env.get('cores', '?')} cores), torch {ver.get('torch')}, "
        f"fastai {ver.get('fastai')}, Surprise {ver.get('scikit-surprise')}; "
        f"1-min load average {loads.min():.2f}-{loads.max():.2f}"
        + (f"; CPU steal {steal.min():.1f}-{steal.max():.1f}%" if len(steal) else "")
        + ("; **quick run** (fewer runs or rows)" if df.quick.eq(True).any() else "")
        + ".",
        "",
        f"Target RMSE {target:.4f}: the best peer's median final RMSE, {best[0]} ({best[1]}, "
        f"bs {best[2]})."
        if best
        else "No peer rows in this run, so no target RMSE.",
        "",
        md,
    ]
    tuned = [f"- {r.label}, seed {r.seed}: {r.params}" for r in df.itertuples() if r.params]
    if tuned:
        lines += [
            "",
            "Surprise tuned: parameters chosen on a holdout of the training rows, per seed:",
        ]
    acc = [r for r in rows.itertuples() if r.kind == "lesson5" and pd.isna(r.scale)]
    acc = [(r, ACCURACY_TARGETS[r.model]) for r in acc if r.model in ACCURACY_TARGETS]
    lines += tuned + (["", "Accuracy targets (median final RMSE over the seeds):"] if acc else [])
    lines += [
        f"- {'PASS' if r.median_rmse <= t else 'MISS'} {r.row} {r.model} bs {r.bs}: median "
        f"{r.median_rmse:.4f} over {r.runs} seeds (target <= {t:.3f})"
        for r, t in acc
    ]
    scale = [(r, *SCALE_TARGETS[r.scale]) for r in rows.itertuples() if r.scale in SCALE_TARGETS]
    lines += ["", "Scale targets:"] if scale else []
    lines += [
        f"- {'PASS' if r.epoch <= s and r.peak / 1024 <= gb else 'MISS'} {r.row}: {r.epoch:.1f} s "
        f"(target <= {s:g} s), peak {r.peak / 1024:.2f} GB (target <= {gb:g} GB)"
        for r, s, gb in scale
    ]
    return "\n".join(lines)


def write_readme(path, table: str) -> None:
    """Put `table` between the bench markers of the README at `path` (temporary file, then rename)."""
    from lesson5.atomic import atomic_write

    text = Path(path).read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {BEGIN} ... {END} section to fill")
    new = text[: start + len(BEGIN)] + "\n" + table + "\n" + text[end:]
    atomic_write(path, lambda tmp: tmp.write_text(new))


# ---------------------------------------------------------------- the command


def run(args: argparse.Namespace) -> int:
    """Every row `--runs` times; print the table. A failed row is one line, then exit status 1."""
    if args.device or os.environ.get("LESSON5_DEVICE"):  # a bad device fails once, not every row
        from lesson5.device import get_device

        get_device(args.device)
    runs, scale_n = (1, 0) if args.quick else (args.runs, args.scale_ratings if args.scale else 0)
    rows = [
        (label, spec)
        for label, spec in default_rows(args.device, args.threads, scale_n)
        if not (args.quick and spec["bs"] == 64)  # the slow rows; all keep their full recipe
        and (args.bs is None or spec["bs"] == args.bs)
        and (spec["kind"] not in PEERS or importlib.util.find_spec(spec["kind"]))
    ]
    env, records, failed = environment(), [], 0
    out = Path(args.results) if args.results else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    # Rounds: seed 0 of every row, then seed 1, ...: a machine whose speed drifts (other jobs, a
    # neighbour on the same host) then slows every row alike, not some rows only.
    rounds = [(*row, s) for s in range(runs) for row in rows if s < row[1].get("runs", runs)]
    with tempfile.TemporaryDirectory(prefix="lesson5-bench-") as tmp:
        for label, spec, seed in rounds:
            name, spec = f"{label} ({spec['recipe']}, bs {spec['bs']})", dict(spec, seed=seed)
            print(f"running: {name}, seed {seed} ...", file=sys.stderr, flush=True)
            try:
                if spec["kind"] == "read_csv":  # written outside the timed process, once
                    spec["path"] = os.path.join(tmp, "ratings.csv")
                    if not os.path.exists(spec["path"]):
                        write_ratings_csv(spec["path"], spec["n"])
                before = _cpu_jiffies()
                res, after = run_in_child(spec, args.timeout), _cpu_jiffies()
            except (RuntimeError, OSError, ValueError, MemoryError) as e:  # RowFailed included
                failed += 1
                print(f"{name} failed: {e}", file=sys.stderr, flush=True)
                continue
            # Steal: the share of CPU time the host gave a neighbour, which the load cannot show.
            ok = before and after and after[1] > before[1]
            steal = 100 * (after[0] - before[0]) / (after[1] - before[1]) if ok else None
            keep = {k: spec.get(k) for k in ("kind", "recipe", "peer_recipe", "scale")}
            rec = dict(env, label=label, **keep, quick=args.quick, **res, steal_pct=steal)
            records.append(rec)
            if out is not None:
                with out.open("a") as f:
                    # strict JSON: a nan (no RMSE for that epoch) is written as null
                    nan_free = json.loads(json.dumps(rec), parse_constant=lambda _: None)
                    f.write(json.dumps(nan_free, allow_nan=False) + "\n")
    if records:
        print(markdown_table(records, str(out) if out else ""))
    for kind, hint in PEERS.items():
        if importlib.util.find_spec(kind) is None:
            print(f"{kind} is not installed, so its rows are missing; to add them: {hint}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options; a bad value is one line naming it (lesson5's Parser)."""
    p = Parser(prog="benchmarks/bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--device", help="cpu or cuda (default: CUDA when available)")
    p.add_argument("--threads", type=positive_int, help="torch threads per row (default: torch's)")
    p.add_argument("--runs", type=positive_int, default=3, help="runs of each row, seeds 0, 1, ...")
    p.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="skip the scale rows (an epoch on 32M synthetic ratings; reading 32M rows)",
    )
    p.add_argument("--scale-ratings", type=positive_int, default=SCALE_N, help=argparse.SUPPRESS)
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 run per row, no batch-size-64 rows, no scale rows",
    )
    p.add_argument("--bs", type=positive_int, help="only the rows at this batch size")
    p.add_argument("--results", metavar="FILE", help="append one JSON line per run to FILE")
    p.add_argument("--table", metavar="FILE", help="print the markdown table of a results file")
    p.add_argument("--readme", metavar="README", help="with --table: write it into README")
    p.add_argument("--timeout", type=positive_int, default=1800, help="seconds allowed per run")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or (--table) print and write a results file's table; errors are one line."""
    args = build_parser().parse_args(argv)
    try:
        if not args.table:
            return run(args)
        table = markdown_table(read_records(args.table), args.table)
        if args.readme:
            write_readme(args.readme, table)
        print(table)
        return 0
    except KeyboardInterrupt:
        print("bench: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except (OSError, ValueError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    import signal

    # SIGTERM unwinds like Ctrl-C: the row's process is killed, the 32M csv's folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise SystemExit(main())
