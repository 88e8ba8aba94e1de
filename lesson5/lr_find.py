"""The learning-rate range test, as fastai's `lr_find` runs it.

Notebook 05.

The rate grows geometrically every batch; model and optimizer are then restored exactly.
Suggestions (fastai 2): where the curve falls fastest, and a tenth of the rate at its minimum.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, count

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lesson5.data import Ratings
from lesson5.device import training_threads
from lesson5.smooth import EWMA
from lesson5.train import as_triple, batches, set_lr


def lr_at(i: int, start_lr: float, end_lr: float, num_it: int) -> float:
    """The rate of batch `i` (0-based): start_lr * (end_lr / start_lr) ** (i / num_it)."""
    return start_lr * (end_lr / start_lr) ** (i / num_it)


def _trimmed(lrs, losses, skip_start: int, skip_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop the first points (the average still settling) and the last (exploding)."""
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    end = len(lrs) - skip_end
    if end - skip_start < 2:
        raise ValueError(
            f"only {len(lrs)} points, too few to skip {skip_start} at the start and {skip_end} at the end"
        )
    return lrs[skip_start:end], losses[skip_start:end]


def steepest(lrs, losses, skip_start: int = 0, skip_end: int = 0) -> float:
    """The rate at which the loss falls fastest per unit of log(lr) (the left end of the steepest segment)."""
    x, y = _trimmed(lrs, losses, skip_start, skip_end)
    slopes = np.diff(y) / np.diff(np.log(x))
    return float(x[int(np.nanargmin(slopes))])


def min_over_10(lrs, losses, skip_start: int = 0, skip_end: int = 0) -> float:
    """A tenth of the rate at which the loss is lowest."""
    x, y = _trimmed(lrs, losses, skip_start, skip_end)
    return float(x[int(np.nanargmin(y))] / 10)


@dataclass
class LRFind:
    """What a range test measured: per batch its rate, raw loss and smoothed loss, and why it stopped."""

    lrs: np.ndarray
    losses: np.ndarray
    smooth: np.ndarray
    stopped: str  # "diverged" (smoothed loss > 4x its best, or not finite) or "end" (num_it batches done)
    num_it: int

    @property
    def skip(self) -> tuple[int, int]:
        """Points left out of suggestions and plots, as fastai does: the first tenth and the last five."""
        return self.num_it // 10, min(5, max(0, len(self.lrs) - self.num_it // 10 - 2))

    def suggestion(self, method: str = "steepest") -> float:
        """'steepest' or 'min/10' of the smoothed curve, without the skipped points."""
        if (fn := {"steepest": steepest, "min/10": min_over_10}.get(method)) is None:
            raise ValueError(f"method={method!r}: use 'steepest' or 'min/10'")
        return fn(self.lrs, self.smooth, *self.skip)

    def plot(self, ax=None, label: str | None = None, marks: bool = True):
        """Smoothed loss against the learning rate on a log axis, with both suggestions marked."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        a, b = self.skip
        x, y = self.lrs[a : len(self.lrs) - b], self.smooth[a : len(self.lrs) - b]
        (line,) = ax.semilogx(x, y, label=label)
        if marks:
            for method, marker in (("steepest", "o"), ("min/10", "v")):
                lr = self.suggestion(method)
                name = f"{label + ': ' if label else ''}{method} {lr:.2g}"
                at = np.interp(np.log(lr), np.log(x), y)
                ax.plot(lr, at, marker, color=line.get_color(), ms=8, label=name)
        ax.set(xlabel="learning rate (log scale)", ylabel="training loss (EWMA, debiased)")
        return ax


def lr_find(
    model: nn.Module,
    data,
    opt: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    bs: int = 64,
    beta: float = 0.98,
    stop_div: bool = True,
    seed: int | None = 0,
    device: torch.device | str | None = None,
) -> LRFind:
    """Train `num_it` batches at a growing rate, recording the smoothed loss, then restore.

    `data`: a `Ratings` (its training split) or a (users, movies, ratings) triple; batches are
    drawn as `fit` draws them. A non-finite loss ends the run; `stop_div` also 4x the best.
    """
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr):
        raise ValueError(
            f"need 0 < start_lr < end_lr, both finite; got start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    for name, value, least in (("num_it", num_it, 2), ("bs", bs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}={value!r}: need a whole number >= {least}")
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    model.to(device)
    triple = data.tensors("train", device) if isinstance(data, Ratings) else as_triple(data, device)
    users, movies, ratings = triple
    if (n := len(ratings)) == 0:
        raise ValueError("the training set is empty")

    # Deep copies: step() updates the optimizer's state tensors in place.
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    was_training = model.training
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch.randint(0, 2**62, (1,))) if seed is None else seed)
    smooth = EWMA(beta)
    lrs, losses, smoothed = [], [], []
    best, stopped = math.inf, "end"
    model.train()
    try:
        with training_threads(None, bs, device):  # small batches: one thread
            stream = chain.from_iterable(batches(n, bs, gen) for _ in count())  # epoch after epoch
            for i, idx in zip(range(num_it), stream):
                lr = lr_at(i, start_lr, end_lr, num_it)
                set_lr(opt, lr)  # every group the same
                loss = loss_fn(model(users[idx], movies[idx]), ratings[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = loss.item()
                lrs.append(lr)
                losses.append(value)
                smoothed.append(smooth.update(value))
                best = min(best, smoothed[-1])  # a NaN leaves best as it was
                if not math.isfinite(smoothed[-1]) or stop_div and smoothed[-1] > 4 * best:
                    stopped = "diverged"
                    break
    finally:
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        model.train(was_training)
    return LRFind(np.array(lrs), np.array(losses), np.array(smoothed), stopped, num_it)
