"""The student's wait: `pytest` and `python -m lesson5 run` as a newcomer runs them, in bare epochs.

A bare epoch is one epoch of the plainest training loop there is (EmbeddingDotBias, fused AdamW,
OneCycleLR, batches of 64, one thread, the 2018 release), timed in the same run, so the figures
hold on a machine whose speed drifts. Each command runs from this checkout with its `.venv`, in a
fresh home whose `~/.cache/lesson5/` holds only the 2018 zip (copied from $LESSON5_DATA).

    LESSON5_DATA=<folder with ml-latest-small.zip> .venv/bin/python benchmarks/wait.py

Prints a markdown table: seconds and bare epochs for each command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "make test (pytest, 2 workers)": "-m pytest -q -n 2 --dist loadfile --no-loadscope-reorder".split(),
    "python -m lesson5 run": "-m lesson5 run --out OUT".split(),
}


def bare_epoch(epochs: int = 3) -> float:
    """Median seconds of one epoch of the bare loop (after one warm-up epoch)."""
    import statistics

    import torch
    import torch.nn.functional as F

    from lesson5 import data, models

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as lesson5 does (lesson5.device): subnormals slow it 2.5x
    ds = data.load()
    u, m, y = ds.tensors("train")
    torch.manual_seed(0)
    model = models.EmbeddingDotBias(ds.n_users, ds.n_movies, 50, y_range=(0.5, 5.5))
    opt = torch.optim.AdamW(model.parameters(), 3e-3, fused=True)
    steps = (len(y) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps * (epochs + 1))
    times = []
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(y)).split(64):
            loss = F.mse_loss(model(u[idx], m[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def newcomer_home(zip_path: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="lesson5-newcomer-"))
    (home / ".cache" / "lesson5").mkdir(parents=True)
    shutil.copy(zip_path, home / ".cache" / "lesson5" / zip_path.name)
    return home


def main() -> None:
    from lesson5 import download

    zip_path = download.data_dir() / download.ZIP_NAME
    epoch = bare_epoch()
    rows = []
    for name, args in COMMANDS.items():
        home = newcomer_home(zip_path)
        env = {k: v for k, v in os.environ.items() if k != "LESSON5_DATA"}
        env.update(HOME=str(home), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        args = [a.replace("OUT", str(home / "out")) for a in args]
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True)
        seconds = time.perf_counter() - t0
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        rows.append((name, status, seconds))
        shutil.rmtree(home, ignore_errors=True)
    epoch = (epoch + bare_epoch()) / 2  # once before and once after, against drift
    print(f"bare epoch: {epoch:.3f} s (median of 3, one thread, batches of 64)\n")
    print("| command | result | seconds | bare epochs |")
    print("|---|---|---:|---:|")
    for name, status, seconds in rows:
        print(f"| {name} | {status} | {seconds:.0f} | {seconds / epoch:.0f} |")


if __name__ == "__main__":
    main()
