"""Two trainings at once against one alone: what torch's thread pools cost on a small machine.

Each row trains `onecycle-bias` moved to batches of 64 for one epoch on the 2018 release, in a
fresh process, once alone and then as two processes started together (two open notebooks, two
test workers). `threads` is what `lesson5.train.fit` was given: 2 is torch's default on this
machine before lesson5 chose one thread for small batches; "auto" is lesson5's default now.

    python benchmarks/threads.py [--rounds 2]

Prints a markdown table: seconds per epoch alone, each process's seconds when paired, the ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time


def one_epoch(threads: int | None, start: float) -> float:
    """Seconds for one epoch of onecycle-bias at bs 64, after waiting for the common start."""

    from lesson5 import data, recipes, train

    ds = data.load()
    recipe = recipes.get("onecycle-bias").for_batch_size(64)
    model, opt = recipe.build(ds.n_users, ds.n_movies, 42, ds.rating_range)
    time.sleep(max(0.0, start - time.time()))
    t0 = time.perf_counter()
    train.fit(model, ds, 1, opt, bs=64, seed=42, progress=False, device="cpu", threads=threads)
    return time.perf_counter() - t0


def timed(threads: int | None, copies: int) -> list[float]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(copies) as pool:
        start = time.time() + 8.0  # every child imports torch and loads the data first
        return pool.starmap(one_epoch, [(threads, start)] * copies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for threads in (2, None):
        alone, paired = [], []
        for _ in range(args.rounds):  # alternate, so a drifting machine slows both alike
            alone += timed(threads, 1)
            paired += timed(threads, 2)
        a, p = statistics.median(alone), statistics.median(paired)
        label = "auto" if threads is None else str(threads)
        rows.append(f"| {label} | {a:.2f} | {p:.2f} | {p / a:.2f} |")
    print("| threads | alone s | paired s (each) | paired / alone |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
