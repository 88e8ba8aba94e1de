"""Instruments for the race of optimizers: what a run did at each step, grids, and decay measured.

Notebook 05.

None of them changes the training it watches: a run with a `Recorder` is the run without one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lesson5 import train
from lesson5.data import Ratings


class AdamRow(NamedTuple):
    """One movie's factors and Adam's moments for them, after one step."""

    w: torch.Tensor  # the movie's factors
    exp_avg: torch.Tensor  # Adam's m (not yet bias-corrected)
    exp_avg_sq: torch.Tensor  # Adam's v (not yet bias-corrected)
    step: int  # Adam's step count t


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class Recorder:
    """`fit`'s on_step callback: how steps line up, one movie's bias, Adam's moments of movie rows."""

    def __init__(self, model: nn.Module, movies: dict[str, int], bias_movie: int):
        self.movies, self.bias_movie = movies, bias_movie
        self.cosines: list[float] = []  # per step: its change of all weights against the last's
        self.bias_steps: list[float] = []  # per step: movie `bias_movie`'s bias change
        self.rows: dict[str, list[AdamRow]] = {name: [] for name in movies}  # under Adam
        self._w, self._delta = _flat(model), None
        self._bias = float(model.mb.weight.detach()[bias_movie, 0])

    def __call__(self, step: int, model: nn.Module, opt: torch.optim.Optimizer, loss: float):
        w = _flat(model)
        delta = w - self._w.to(w.device)  # fit may have moved the model to the GPU
        if self._delta is not None:
            self.cosines.append(float(F.cosine_similarity(delta, self._delta, dim=0)))
        self._w, self._delta = w, delta
        bias = float(model.mb.weight.detach()[self.bias_movie, 0])
        self.bias_steps.append(bias - self._bias)
        self._bias = bias
        state = opt.state.get(model.m.weight, {})
        if "exp_avg_sq" in state:
            tensors = (model.m.weight, state["exp_avg"], state["exp_avg_sq"])
            for name, i in self.movies.items():
                w_i, m, v = (t.detach()[i].to("cpu", copy=True) for t in tensors)
                self.rows[name].append(AdamRow(w_i, m, v, int(state["step"])))


def sweep(
    make_model: Callable[[], nn.Module],
    make_opt: Callable[[Iterable[torch.Tensor], float], torch.optim.Optimizer],
    values: Sequence[float],
    data: Ratings,
    *,
    epochs: int = 2,
    bs: int = 1024,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> pd.Series:
    """Validation RMSE of `make_model()` trained with `make_opt(params, value)`; NaN: diverged."""
    out, same = {}, dict(bs=bs, seed=seed, device=device, progress=False)  # the same batches
    for value in values:
        model = make_model()
        opt = make_opt(model.parameters(), value)
        try:
            hist = train.fit(model, data, epochs, opt, **same)
            out[value] = hist.epochs.valid_rmse.iloc[-1]
        except train.DivergenceError:
            out[value] = math.nan
    return pd.Series(out, name="valid RMSE", dtype=float)


def decay_removes(
    model: nn.Module, opt: torch.optim.Optimizer, data: Ratings, tiny: float = 1e-3
) -> np.ndarray:
    """Per movie and factor, the share of the weight that one step's weight decay removes.

    Two copies take one full-batch step, with and without the (one group's) `weight_decay`:
    (after without - after with) / before, NaN where |before| < `tiny`. The originals stay.
    """
    device = model.m.weight.device
    users, movies, ratings = data.tensors("train", device)
    after = []
    for wd in (0.0, opt.param_groups[0]["weight_decay"]):
        twin = copy.deepcopy(model)
        twin_opt = type(opt)(twin.parameters())
        twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # step() updates moments in place
        for group in twin_opt.param_groups:
            group["weight_decay"] = wd
        twin.zero_grad()
        F.mse_loss(twin(users, movies), ratings).backward()
        twin_opt.step()
        after.append(twin.m.weight.detach().double())
    w = model.m.weight.detach().double()
    removed = torch.where(w.abs() >= tiny, (after[0] - after[1]) / w, torch.nan)
    return removed.cpu().numpy()
