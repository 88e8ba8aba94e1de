"""Epoch times with subnormal floats flushed to zero (lesson5's default) and kept (IEEE).

README, "Speed". Each (recipe, mode) trains in a fresh process, because torch's worker threads
copy the setting when they start. Usage, from the repository root:

    .venv/bin/python benchmarks/subnormals.py [--recipes onecycle-net lesson-net] [--seed 42]
    .venv/bin/python benchmarks/subnormals.py --profile   # one bs-64 step, part by part
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, sys, time
from lesson5 import data, device, recipes
ds = data.load(None)
start = time.perf_counter()
_, hist = recipes.get(sys.argv[1]).run(ds, seed=int(sys.argv[2]), progress=False)
print(json.dumps(dict(
    flushed=device.FLUSHES_SUBNORMALS,
    seconds=hist.epochs.seconds.tolist(),
    rmse=float(hist.epochs.valid_rmse.iloc[-1]),
    total=time.perf_counter() - start,
)))
"""

PROFILE = """
import json, sys, time
import torch
import torch.nn.functional as F
from lesson5 import data, device, recipes
ds = data.load(None)
model, opt = recipes.get("onecycle-bias").for_batch_size(64).build(
    ds.n_users, ds.n_movies, int(sys.argv[1]), ds.rating_range
)
u, m, y = ds.tensors("train")
gen = torch.Generator().manual_seed(int(sys.argv[1]))
parts = dict(forward=0.0, backward=0.0, zero_grad=0.0, step=0.0)
for epoch in range(2):  # the first warms up; the second is measured
    perm = torch.randperm(len(y), generator=gen)
    start = time.perf_counter()
    for i in range(0, len(y), 64):
        idx = perm[i : i + 64]
        t0 = time.perf_counter()
        loss = F.mse_loss(model(u[idx], m[idx]), y[idx])
        t1 = time.perf_counter()
        opt.zero_grad()
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if epoch:
            for k, dt in zip(parts, (t1 - t0, t3 - t2, t2 - t1, t4 - t3)):
                parts[k] += dt
    seconds = time.perf_counter() - start
steps = -(-len(y) // 64)
print(json.dumps(dict(
    flushed=device.FLUSHES_SUBNORMALS,
    steps=steps,
    seconds=seconds,
    ms={k: 1e3 * v / steps for k, v in parts.items()},
)))
"""


def _child(code: str, mode: str, *argv: str) -> dict:
    """Run `code` in a fresh interpreter with LESSON5_SUBNORMALS=`mode`; its last line, as JSON."""
    env = {**os.environ, "LESSON5_SUBNORMALS": mode}
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile(seed: int) -> None:
    """Print the bs-64 step of onecycle-bias part by part, flushed and kept."""
    print("| subnormals | forward ms | backward ms | zero_grad ms | step ms | epoch s |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in ("flush", "keep"):
        r = _child(PROFILE, mode, str(seed))
        ms = r["ms"]
        label = "flushed" if r["flushed"] else "kept"
        print(
            f"| {label} | {ms['forward']:.3f} | {ms['backward']:.3f} | {ms['zero_grad']:.3f} "
            f"| {ms['step']:.3f} | {r['seconds']:.2f} |",
            flush=True,
        )


def measure(recipe: str, mode: str, seed: int) -> dict:
    """One training run of `recipe` in a child process with LESSON5_SUBNORMALS=`mode`."""
    return _child(CHILD, mode, recipe, str(seed))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["onecycle-net", "lesson-net"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true", help="profile one bs-64 step instead")
    args = parser.parse_args()
    if args.profile:
        profile(args.seed)
        return 0
    print("| recipe | subnormals | epoch s | total s | valid RMSE |")
    print("|---|---|---|---:|---:|")
    for recipe in args.recipes:
        for mode in ("flush", "keep"):
            r = measure(recipe, mode, args.seed)
            label = "flushed" if r["flushed"] else "kept"
            epochs = ", ".join(f"{s:.1f}" for s in r["seconds"])
            print(
                f"| {recipe} | {label} | {epochs} | {r['total']:.1f} | {r['rmse']:.5f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
