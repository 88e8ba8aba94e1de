"""The training loop: the lesson's `fit(model, data, epochs, opt, loss)` made fast and honest (notebooks 03-05).

The whole training set lives as three tensors on the device; each epoch draws one
permutation from a seeded generator and slices it into batches, so there is no per-sample
Python and no DataLoader. Also here: evaluation, `set_lr` (the lesson's `set_lrs`),
prediction for raw MovieLens ids, and saving/loading a model with its id maps.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

from lesson5 import schedules
from lesson5.atomic import atomic_write
from lesson5.data import IdMap, Ratings
from lesson5.device import get_device
from lesson5.smooth import EWMA

__all__ = ["History", "DivergenceError", "fit", "param_groups", "evaluate", "set_lr", "predict", "save", "load", "split_data"]

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Data = Ratings | tuple[Triple, Triple]  # what fit trains on: the lesson split, or (train, valid) tensors
Maps = Ratings | tuple[IdMap, IdMap] | tuple[IdMap, IdMap, float | None]  # raw-id maps (and mean rating)
EPOCH_COLUMNS = ["epoch", "train_loss", "valid_mse", "valid_rmse", "lr", "seconds"]
STEP_COLUMNS = ["step", "epoch", "loss", "smooth_loss", "lr"]


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the epoch and batch."""


@dataclass
class History:
    """What `fit` measured: one row per epoch and one row per optimizer step (notebook 03)."""

    epoch_rows: list[dict] = field(default_factory=list)
    step_rows: list[tuple] = field(default_factory=list)

    @property
    def epochs(self) -> pd.DataFrame:
        """epoch, train_loss (debiased EWMA, beta 0.98), valid_mse, valid_rmse, lr, seconds."""
        return pd.DataFrame(self.epoch_rows, columns=EPOCH_COLUMNS)

    @property
    def steps(self) -> pd.DataFrame:
        """step, epoch, loss, smooth_loss, lr: one row per optimizer step."""
        return pd.DataFrame(self.step_rows, columns=STEP_COLUMNS)

    @property
    def n_steps(self) -> int:
        return len(self.step_rows)

    @property
    def n_epochs(self) -> int:
        return len(self.epoch_rows)

    def __repr__(self) -> str:
        return f"History({self.n_epochs} epochs, {self.n_steps} steps)\n{self.epochs.to_string(index=False)}"


# ---------------------------------------------------------------- data as tensors


def split_data(data: Data, device: torch.device | str = "cpu") -> tuple[Triple, Triple]:
    """((users, movies, ratings) train, (...) valid) on `device`, from a Ratings or a tuple of two triples."""
    if isinstance(data, Ratings):
        return data.tensors("train", device), data.tensors("valid", device)
    try:
        train, valid = data
        parts = tuple(tuple(t) for t in (train, valid))
        if any(len(p) != 3 for p in parts):
            raise ValueError
    except (TypeError, ValueError):
        raise TypeError(
            "data must be a lesson5.data.Ratings or ((users, movies, ratings) train, (users, movies, ratings) valid)"
        ) from None
    out = []
    for name, (u, m, y) in zip(("train", "valid"), parts):
        u, m, y = (torch.as_tensor(t) for t in (u, m, y))
        if not (len(u) == len(m) == len(y)):
            raise ValueError(f"{name} tensors differ in length: users {len(u)}, movies {len(m)}, ratings {len(y)}")
        out.append((u.to(device, torch.long), m.to(device, torch.long), y.to(device, torch.float32)))
    return out[0], out[1]


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ---------------------------------------------------------------- learning rates and weight decay


def param_groups(model: nn.Module, wd: float) -> list[dict]:
    """Two optimizer groups: weights with decay `wd`, biases (`ub`, `mb`, linear biases) without (notebook 03).

    Decaying the biases pulls every prediction toward the middle of the rating range, which
    the biases exist to move away from; decaying the factors is what fights overfitting.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_bias = name.split(".")[0] in ("ub", "mb") or name.endswith(".bias")
        (no_decay if is_bias else decay).append(p)
    return [dict(params=decay, weight_decay=wd), dict(params=no_decay, weight_decay=0.0)]



def set_lr(opt: torch.optim.Optimizer, lr: float | Sequence[float]) -> None:
    """Set every parameter group's learning rate (one value, or one per group): the lesson's `set_lrs`."""
    lrs = [lr] * len(opt.param_groups) if np.isscalar(lr) else list(lr)
    if len(lrs) != len(opt.param_groups):
        raise ValueError(f"got {len(lrs)} learning rates for {len(opt.param_groups)} parameter groups")
    for group, value in zip(opt.param_groups, lrs):
        group["lr"] = float(value)


def _set_momentum(opt: torch.optim.Optimizer, mom: float) -> None:
    """Set SGD's `momentum` or Adam-style `betas[0]`, whichever the groups have."""
    for group in opt.param_groups:
        if "betas" in group:
            group["betas"] = (mom, group["betas"][1])
        elif "momentum" in group and group["momentum"] > 0:
            group["momentum"] = mom


# ---------------------------------------------------------------- the loop


@torch.no_grad()
def evaluate(model: nn.Module, users: torch.Tensor, movies: torch.Tensor, ratings: torch.Tensor,
             bs: int = 65_536) -> float:
    """Mean squared error of `model` over (users, movies, ratings), in eval mode (notebook 03)."""
    if len(ratings) == 0:
        raise ValueError("cannot evaluate on an empty set")
    was_training = model.training
    model.eval()
    try:
        total = torch.zeros((), dtype=torch.float64, device=ratings.device)
        for i in range(0, len(ratings), bs):
            err = model(users[i:i + bs], movies[i:i + bs]).double() - ratings[i:i + bs].double()
            total += (err * err).sum()
    finally:
        model.train(was_training)
    return float(total) / len(ratings)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="batch", leave=True, mininterval=0.5)


def fit(
    model: nn.Module,
    data: Data,
    epochs: int,
    opt: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
    *,
    bs: int = 64,
    sched: schedules.Schedule | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_step: Callable[[int, nn.Module, torch.optim.Optimizer, float], None] | None = None,
    history: History | None = None,
) -> History:
    """Train for `epochs` epochs, report the smoothed train loss and validation MSE/RMSE per epoch (notebook 03).

    `data` is a `Ratings` (its lesson split) or `((u, m, y) train, (u, m, y) valid)`. `sched`
    multiplies each group's current learning rate per step (see `lesson5.schedules`); the base
    rates are restored when the call ends, so `set_lr` between calls works as `set_lrs` did.
    Pass the returned `history` back in to continue its epoch and step counts. `seed` fixes
    the shuffling and dropout; without it both follow torch's global seed.
    """
    if epochs < 1 or bs < 1:
        raise ValueError(f"need epochs >= 1 and bs >= 1; got epochs={epochs}, bs={bs}")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    (u_tr, m_tr, y_tr), valid = split_data(data, device)
    n = len(y_tr)
    if n == 0:
        raise ValueError("the training set is empty")
    if len(valid[2]) == 0:  # say so now, not after a whole epoch of training
        raise ValueError("the validation set is empty: fit reports validation MSE/RMSE every epoch")
    steps_per_epoch = math.ceil(n / bs)
    mult = schedules.resolve(sched, steps_per_epoch, epochs)
    momentum = getattr(mult, "momentum", None)
    base_lrs = [g["lr"] for g in opt.param_groups]
    base_moms = [(g.get("betas"), g.get("momentum")) for g in opt.param_groups]

    if seed is not None:
        torch.manual_seed(seed)  # dropout draws from the global generator
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch.randint(0, 2**62, (1,))) if seed is None else seed)

    hist = history if history is not None else History()
    first_epoch, step = hist.n_epochs, hist.n_steps
    smooth = EWMA(0.98)
    bar = _progress_bar(epochs * steps_per_epoch, progress)
    local = 0
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            model.train()
            start = time.perf_counter()
            perm = torch.randperm(n, generator=gen, device=device)
            for batch, i in enumerate(range(0, n, bs)):
                idx = perm[i:i + bs]
                lr_mult = mult(local)
                for g, lr in zip(opt.param_groups, base_lrs):
                    g["lr"] = lr * lr_mult
                if momentum is not None and (mom := momentum(local)) is not None:
                    _set_momentum(opt, mom)
                loss = loss_fn(model(u_tr[idx], m_tr[idx]), y_tr[idx])
                value = loss.item()
                if not math.isfinite(value):
                    raise DivergenceError(
                        f"loss is {value} at epoch {epoch} (0-based), batch {batch} of {steps_per_epoch} "
                        f"(step {step}, lr {opt.param_groups[0]['lr']:.3g}): lower the learning rate"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sm = smooth.update(value)
                hist.step_rows.append((step, epoch, value, sm, opt.param_groups[0]["lr"]))
                if on_step is not None:
                    on_step(step, model, opt, value)
                step += 1
                local += 1
                if bar is not None:
                    bar.update(1)
                    if batch % 50 == 0:
                        bar.set_postfix(epoch=epoch, loss=f"{sm:.4f}", refresh=False)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            mse = evaluate(model, *valid)
            hist.epoch_rows.append(dict(epoch=epoch, train_loss=sm, valid_mse=mse, valid_rmse=math.sqrt(mse),
                                        lr=opt.param_groups[0]["lr"], seconds=seconds))
            if bar is not None:
                bar.write(f"epoch {epoch}: train_loss {sm:.5f}  valid_mse {mse:.5f}  valid_rmse {math.sqrt(mse):.5f}")
    finally:
        if bar is not None:
            bar.close()
        # Hand back the optimizer with the rates the caller set, ready for set_lr and another fit.
        for g, lr, (betas, mom) in zip(opt.param_groups, base_lrs, base_moms):
            g["lr"] = lr
            if betas is not None:
                g["betas"] = betas
            if mom is not None:
                g["momentum"] = mom
    return hist


# ---------------------------------------------------------------- raw ids, saving and loading


def _maps(data_or_maps: Maps) -> tuple[IdMap, IdMap, float | None]:
    if isinstance(data_or_maps, Ratings):
        mean = float(data_or_maps.ratings.rating.to_numpy()[data_or_maps.train_idx].mean())
        return data_or_maps.users_map, data_or_maps.movies_map, mean
    if isinstance(data_or_maps, tuple) and len(data_or_maps) in (2, 3):
        users_map, movies_map, *rest = data_or_maps
        return users_map, movies_map, (float(rest[0]) if rest else None)
    raise TypeError("data_or_maps must be a Ratings or a tuple (users_map, movies_map[, mean_rating])")


@torch.no_grad()
def predict(model: nn.Module, data_or_maps: Maps, user_ids: ArrayLike, movie_ids: ArrayLike, *,
            unknown: str | float = "error", bs: int = 65_536) -> np.ndarray:
    """Predicted ratings for raw (userId, movieId) pairs (notebook 03).

    An id not seen in training raises KeyError naming it (`unknown="error"`), or its pairs get
    NaN (`"nan"`), the mean training rating (`"mean"`; needs a Ratings or maps with a mean),
    or a number you give.
    """
    users_map, movies_map, mean = _maps(data_or_maps)
    u_raw, m_raw = np.atleast_1d(np.asarray(user_ids)), np.atleast_1d(np.asarray(movie_ids))
    if u_raw.shape != m_raw.shape:
        raise ValueError(f"user_ids and movie_ids differ in shape: {u_raw.shape} vs {m_raw.shape}")
    if unknown == "error":
        u_idx, m_idx = users_map.encode(u_raw), movies_map.encode(m_raw)  # KeyError names the id
        known = np.ones(len(u_raw), dtype=bool)
    else:
        if unknown == "nan":
            fill = float("nan")
        elif unknown == "mean":
            if mean is None:
                raise ValueError('unknown="mean" needs a Ratings or (users_map, movies_map, mean); or pass a number')
            fill = mean
        elif isinstance(unknown, (int, float)):
            fill = float(unknown)
        else:
            raise ValueError(f'unknown must be "error", "nan", "mean" or a number; got {unknown!r}')
        u_idx = pd.Index(users_map.ids).get_indexer(u_raw)
        m_idx = pd.Index(movies_map.ids).get_indexer(m_raw)
        known = (u_idx >= 0) & (m_idx >= 0)
    out = np.full(len(u_raw), np.nan, dtype=np.float64)
    if known.any():
        device = _model_device(model)
        u = torch.as_tensor(u_idx[known], dtype=torch.long, device=device)
        m = torch.as_tensor(m_idx[known], dtype=torch.long, device=device)
        was_training = model.training
        model.eval()
        try:
            preds = torch.cat([model(u[i:i + bs], m[i:i + bs]) for i in range(0, len(u), bs)])
        finally:
            model.train(was_training)
        out[known] = preds.double().cpu().numpy()
    if unknown != "error":
        out[~known] = fill
    return out


def save(path: str | os.PathLike, model: nn.Module, data_or_maps: Maps) -> Path:
    """Write a trained model with its id maps to `path` atomically (temp file, then rename) (notebook 03)."""
    from lesson5 import models

    name = type(model).__name__
    if name not in models.MODELS or not hasattr(model, "hparams"):
        raise TypeError(f"can only save the lesson's models {sorted(models.MODELS)}; got {name}")
    users_map, movies_map, mean = _maps(data_or_maps)
    payload = {
        "format": "lesson5-model-1",
        "class": name,
        "hparams": dict(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "user_ids": torch.as_tensor(np.asarray(users_map.ids, dtype=np.int64)),
        "movie_ids": torch.as_tensor(np.asarray(movies_map.ids, dtype=np.int64)),
        "mean_rating": mean,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, IdMap, IdMap]:
    """(model, users_map, movies_map) from a file written by `save`; the model is in eval mode (notebook 03).

    The training mean rating, when it was saved, is on `model.mean_rating` (for `unknown="mean"`,
    pass `(users_map, movies_map, model.mean_rating)` to `predict`).
    """
    from lesson5 import models

    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path} is not a lesson5 model file: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != "lesson5-model-1":
        raise ValueError(f"{path} is not a lesson5 model file (no 'lesson5-model-1' format tag)")
    cls = models.MODELS.get(payload["class"])
    if cls is None:
        raise ValueError(f"{path}: unknown model class {payload['class']!r}")
    model = cls(**payload["hparams"]).to(device)
    model.load_state_dict(payload["state_dict"])
    model.mean_rating = payload.get("mean_rating")
    model.eval()
    users_map = IdMap("userId", payload["user_ids"].cpu().numpy())
    movies_map = IdMap("movieId", payload["movie_ids"].cpu().numpy())
    return model, users_map, movies_map
