"""Learning-rate schedules for `fit`: torch's schedulers, configured once the run's length is known.

Notebooks 03 and 05.

The scheduler steps after every optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim import lr_scheduler


@dataclass(frozen=True)
class CosineRestarts:
    """Cosine annealing with warm restarts (SGDR): fastai 0.7's `cycle_len` and `cycle_mult`."""

    cycle_len: float = 1.0  # epochs in the first cycle
    cycle_mult: int = 1  # each next cycle is this many times longer

    def __post_init__(self):
        if self.cycle_len <= 0 or int(self.cycle_mult) != self.cycle_mult or self.cycle_mult < 1:
            raise ValueError(
                "need cycle_len > 0 and a whole cycle_mult >= 1; "
                f"got {self.cycle_len}, {self.cycle_mult}"
            )

    def build(self, opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int):
        first = max(1, round(self.cycle_len * steps_per_epoch))
        return lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=first, T_mult=int(self.cycle_mult))


@dataclass(frozen=True)
class OneCycle:
    """One cycle over the whole `fit` call, as fastai 2's `fit_one_cycle`: torch's OneCycleLR.

    Warm up from rate/div to the caller's rate over `pct_start` of the steps, then anneal to
    rate/(div*final_div); momentum (Adam's beta1) runs the other way through `moms`.
    """

    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e5
    moms: tuple[float, float] | None = (0.95, 0.85)

    def __post_init__(self):
        if not 0 < self.pct_start < 1 or self.div < 1 or self.final_div < 1:
            raise ValueError(f"need 0 < pct_start < 1, div >= 1, final_div >= 1; got {self}")

    def build(self, opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int):
        # Plain SGD without momentum has nothing to cycle; switching it on would change the method.
        cycle = self.moms is not None and any(
            "betas" in g or g.get("momentum", 0) > 0 for g in opt.param_groups
        )
        high, low = self.moms or (0.95, 0.85)
        moms = dict(cycle_momentum=cycle, base_momentum=low, max_momentum=high)
        total, pct = steps_per_epoch * epochs, self.pct_start
        if pct * total == 1:  # a warm-up of exactly one step makes OneCycleLR divide 0 by 0
            pct = math.nextafter(pct, 1.0)
        divs = dict(div_factor=self.div, final_div_factor=self.final_div)
        lrs = [g["lr"] for g in opt.param_groups]
        return lr_scheduler.OneCycleLR(opt, lrs, total_steps=total, pct_start=pct, **divs, **moms)


Schedule = CosineRestarts | OneCycle | Callable[[int], float]


def build(
    sched: Schedule | None, opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> lr_scheduler.LRScheduler | None:
    """The torch scheduler for one `fit` call: None, a schedule's, or LambdaLR for a callable."""
    if sched is None:
        return None
    # A scheduler keeps the rate it started from in the group; a stale one from an earlier
    # `fit` call would win over the rate the caller set with `set_lr` since.
    for group in opt.param_groups:
        group.pop("initial_lr", None)
    if hasattr(sched, "build"):
        return sched.build(opt, steps_per_epoch, epochs)
    if callable(sched):
        return lr_scheduler.LambdaLR(opt, sched)
    raise TypeError(
        f"sched must be None, a callable step -> multiplier or a schedule; got {sched!r}"
    )
