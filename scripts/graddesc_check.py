"""Print every sheet's (a, b) after 1 and 5 epochs, and the largest relative differences found
against torch.optim and against LibreOffice's recalculation of graddesc.xlsx.

    PYTHONPATH=. python scripts/graddesc_check.py [--no-libreoffice]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from lesson5 import graddesc, optim

CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.9)),
    ("RMSprop", dict(lr=0.003, centered=True, momentum=0.5)),
    ("Adam", dict(lr=0.01, betas=(0.7, 0.9), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


def torch_gap(seeds=range(5), steps=200) -> dict[str, float]:
    """Largest |ours - torch| / |torch| over every parameter and step, per optimizer."""
    torch.set_num_threads(1)
    worst: dict[str, float] = {}
    for name, kw in CASES:
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            x, y = torch.randn(32, 4, generator=g, dtype=torch.float64), torch.randn(32, generator=g, dtype=torch.float64)
            init = [torch.randn(4, 8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)]
            paths = []
            for module in (optim, torch.optim):
                ps = [p.clone().requires_grad_() for p in init]
                opt = getattr(module, name)(ps, **kw)
                path = []
                for _ in range(steps):
                    opt.zero_grad()
                    ((torch.tanh(x @ ps[0]) @ ps[1] - y) ** 2).mean().backward()
                    opt.step()
                    path.append(torch.cat([p.detach().flatten() for p in ps]))
                paths.append(torch.stack(path))
            gap = float(((paths[0] - paths[1]).abs() / paths[1].abs()).max())
            worst[name] = max(worst.get(name, 0.0), gap)
    return worst


def libreoffice_gap() -> float:
    """Largest relative difference between any recalculated workbook cell and the Python tables."""
    from lesson5.excel import graddesc as xg
    from lesson5.excel.recalc import recalculated_values

    with tempfile.TemporaryDirectory() as tmp:
        path = xg.write(Path(tmp) / "graddesc.xlsx")
        values = recalculated_values([path], Path(tmp) / "out")[0]
    worst = 0.0
    for name in graddesc.SHEETS:
        table, _ = graddesc.run(name, xg.EPOCHS)
        for col in graddesc.columns(name):
            for i, want in enumerate(table[col].to_numpy(float)):
                got = values[name][xg.row_cell(name, col, i)]
                if want != got:
                    worst = max(worst, abs(got - want) / max(abs(want), 1e-300))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-libreoffice", action="store_true")
    args = parser.parse_args()
    print(f"{'sheet':<12} {'a (1 epoch)':>14} {'b (1 epoch)':>14} {'a (5 epochs)':>14} {'b (5 epochs)':>14}")
    for name in graddesc.SHEETS:
        _, one = graddesc.run(name, 1)
        _, five = graddesc.run(name, 5)
        print(f"{name:<12} {one['a']:>14.8f} {one['b']:>14.8f} {five['a']:>14.8f} {five['b']:>14.8f}")
    print()
    for name, gap in torch_gap().items():
        print(f"largest relative difference, lesson5.optim.{name} vs torch.optim: {gap:.2e}")
    if not args.no_libreoffice:
        print(f"largest relative difference, LibreOffice vs Python, every cell: {libreoffice_gap():.2e}")


if __name__ == "__main__":
    main()
