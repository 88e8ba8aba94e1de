"""Per-step learning-rate schedules for `train.fit`: constant, SGDR, one-cycle (notebooks 03-05).

A schedule gives a *multiplier* of each parameter group's base learning rate at a step
(counted from 0 within one `fit` call). Schedules that depend on the length of an epoch
have a `bind(steps_per_epoch, epochs)` method that `fit` calls first; a plain callable
`step -> multiplier` works too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

__all__ = ["Constant", "CosineRestarts", "OneCycle", "resolve"]

StepFn = Callable[[int], float]


@dataclass(frozen=True)
class Constant:
    """The base learning rate at every step (notebook 03)."""

    def bind(self, steps_per_epoch: int, epochs: int) -> StepFn:
        return lambda step: 1.0


@dataclass(frozen=True)
class CosineRestarts:
    """Cosine annealing with warm restarts (SGDR), fastai 0.7's `cycle_len`/`cycle_mult` (notebook 03).

    Each cycle anneals from the base rate down to `min_mult` times it along half a cosine and
    then jumps back up; the first cycle lasts `cycle_len` epochs and each next one `cycle_mult`
    times longer (cycle_len=1, cycle_mult=2 gives cycles of 1, 2, 4, ... epochs).
    """

    cycle_len: float = 1.0
    cycle_mult: float = 1.0
    min_mult: float = 0.0

    def __post_init__(self):
        if self.cycle_len <= 0 or self.cycle_mult < 1:
            raise ValueError(f"need cycle_len > 0 and cycle_mult >= 1; got {self.cycle_len}, {self.cycle_mult}")

    def bind(self, steps_per_epoch: int, epochs: int) -> StepFn:
        first = max(1, round(self.cycle_len * steps_per_epoch))

        def mult(step: int) -> float:
            length, start = first, 0
            while step >= start + length:  # find the cycle this step falls in
                start += length
                length = max(1, round(length * self.cycle_mult))
            t = (step - start) / length
            return self.min_mult + (1 - self.min_mult) * (1 + math.cos(math.pi * t)) / 2

        return mult


@dataclass(frozen=True)
class OneCycle:
    """One cycle over the whole `fit` call: warm up from base/div to base, then anneal to base/(div*final_div).

    Both halves follow half a cosine, as in fastai 2's `fit_one_cycle` (pct_start 0.25, div 25
    there too). fastai ends at base/div_final (1e5); here the end is base/(div*final_div), 25x
    lower; both are effectively zero for the last steps. `momentum(step)`
    gives the matching momentum (beta1) cycle, high -> low -> high, which `fit` applies when
    `moms` is set (notebook 05).
    """

    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e5
    moms: tuple[float, float] | None = (0.95, 0.85)

    def __post_init__(self):
        if not 0 <= self.pct_start < 1 or self.div < 1 or self.final_div < 1:
            raise ValueError(f"need 0 <= pct_start < 1, div >= 1, final_div >= 1; got {self}")

    def _phase(self, step: int, total: int) -> tuple[float, bool]:
        """(fraction of the current half done, whether it is the warm-up half)."""
        warm = round(self.pct_start * total)
        if step < warm:
            return step / warm, True
        return min(1.0, (step - warm) / max(1, total - warm - 1)), False

    @staticmethod
    def _cos(a: float, b: float, t: float) -> float:
        return b + (a - b) * (1 + math.cos(math.pi * t)) / 2

    def bind(self, steps_per_epoch: int, epochs: int) -> "BoundOneCycle":
        return BoundOneCycle(self, steps_per_epoch * epochs)


@dataclass(frozen=True)
class BoundOneCycle:
    """A `OneCycle` that knows the total number of steps of its `fit` call."""

    cycle: OneCycle
    total: int

    def __call__(self, step: int) -> float:
        c = self.cycle
        t, warming = c._phase(step, self.total)
        if warming:
            return c._cos(1 / c.div, 1.0, t)
        return c._cos(1.0, 1 / (c.div * c.final_div), t)

    def momentum(self, step: int) -> float | None:
        """The momentum (or Adam's beta1) at `step`, or None when the cycle leaves momentum alone."""
        c = self.cycle
        if c.moms is None:
            return None
        hi, lo = c.moms
        t, warming = c._phase(step, self.total)
        return c._cos(hi, lo, t) if warming else c._cos(lo, hi, t)


Schedule = Constant | CosineRestarts | OneCycle | StepFn  # what `fit(sched=...)` takes


def resolve(sched: Schedule | None, steps_per_epoch: int, epochs: int) -> StepFn:
    """A `step -> multiplier` function from None, a schedule object with `bind`, or a callable."""
    if sched is None:
        return Constant().bind(steps_per_epoch, epochs)
    if hasattr(sched, "bind"):
        return sched.bind(steps_per_epoch, epochs)
    if callable(sched):
        return sched
    raise TypeError(f"sched must be None, a callable step -> multiplier, or a schedule object; got {sched!r}")
