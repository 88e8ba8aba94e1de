"""The training loop `fit(model, data, epochs, opt, loss)`, with evaluation and `set_lr`.

Notebooks 03-05.

The data lives as tensors on the device; each epoch is one seeded permutation cut into batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lesson5 import schedules
from lesson5.data import Ratings
from lesson5.device import get_device, training_threads
from lesson5.smooth import EWMA

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
# What fit trains on: the lesson split, or (train, valid) tensors.
Data = Ratings | tuple[Triple, Triple]
EPOCH_COLUMNS = ["epoch", "train_loss", "valid_mse", "valid_rmse", "lr", "seconds"]
STEP_COLUMNS = ["step", "epoch", "loss", "smooth_loss", "lr"]


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the epoch and batch."""


@dataclass
class History:
    """What `fit` measured: one row per epoch and one row per optimizer step."""

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


def as_triple(triple, device: torch.device | str = "cpu", name: str = "train") -> Triple:
    """(users, movies, ratings) as long, long and float32 tensors on `device`, of one length."""
    try:
        u, m, y = (torch.as_tensor(t) for t in triple)
    except (TypeError, ValueError):
        raise TypeError(
            "data must be a lesson5.data.Ratings or (users, movies, ratings) tensors"
        ) from None
    if not (len(u) == len(m) == len(y)):
        raise ValueError(
            f"{name} tensors differ in length: users {len(u)}, movies {len(m)}, ratings {len(y)}"
        )
    return u.to(device, torch.long), m.to(device, torch.long), y.to(device, torch.float32)


def split_data(data: Data, device: torch.device | str = "cpu") -> tuple[Triple, Triple]:
    """(train, valid) triples on `device`, from a Ratings or a tuple of two triples."""
    if isinstance(data, Ratings):
        return data.tensors("train", device), data.tensors("valid", device)
    try:
        train, valid = data
    except (TypeError, ValueError):
        raise TypeError(
            "data must be a lesson5.data.Ratings or ((users, movies, ratings) train, "
            "(users, movies, ratings) valid)"
        ) from None
    return as_triple(train, device, "train"), as_triple(valid, device, "valid")


def batches(n: int, bs: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Row numbers of each mini-batch of one fresh shuffle of n rows (the last batch shorter)."""
    return torch.randperm(n, generator=gen, device=gen.device).split(bs)


def param_groups(model: nn.Module, wd: float) -> list[dict]:
    """Two optimizer groups: weights with decay `wd`, biases without.

    Decaying a bias pulls predictions toward the middle, which biases exist to move away from.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        # A bias is a vector, or a table one column wide, whatever the layer is called.
        is_bias = p.ndim == 1 or p.shape[-1] == 1
        (no_decay if is_bias else decay).append(p)
    return [dict(params=decay, weight_decay=wd), dict(params=no_decay, weight_decay=0.0)]


def set_lr(opt: torch.optim.Optimizer, lr: float | Sequence[float]) -> None:
    """Set each parameter group's learning rate (one, or one per group): the lesson's `set_lrs`."""
    lrs = [lr] * len(opt.param_groups) if np.isscalar(lr) else list(lr)
    if len(lrs) != len(opt.param_groups):
        raise ValueError(
            f"got {len(lrs)} learning rates for {len(opt.param_groups)} parameter groups"
        )
    for group, value in zip(opt.param_groups, lrs):
        group["lr"] = float(value)


def predictions(
    model: nn.Module, users: torch.Tensor, movies: torch.Tensor, bs: int = 65_536
) -> list[torch.Tensor]:
    """The model's outputs, `bs` rows at a time, in eval mode (dropout off), without gradients."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [model(u, m) for u, m in zip(users.split(bs), movies.split(bs))]
    finally:
        model.train(was_training)


def evaluate(
    model: nn.Module,
    users: torch.Tensor,
    movies: torch.Tensor,
    ratings: torch.Tensor,
    bs: int = 65_536,
) -> float:
    """Mean squared error of `model` over (users, movies, ratings), in eval mode."""
    if len(ratings) == 0:
        raise ValueError("cannot evaluate on an empty set")
    total = torch.zeros((), dtype=torch.float64, device=ratings.device)
    for pred, y in zip(predictions(model, users, movies, bs), ratings.split(bs)):
        err = pred.double() - y.double()
        total += (err * err).sum()
    return float(total) / len(ratings)


def _check(model: nn.Module, train: Triple, valid: Triple) -> None:
    """Refuse an empty validation set, an empty parameter or out-of-range row numbers, before training."""
    if len(valid[2]) == 0:  # say so now, not after a whole epoch of training
        raise ValueError("the validation set is empty: fit reports validation MSE/RMSE every epoch")
    for name, p in model.named_parameters():
        if p.numel() == 0:
            raise ValueError(
                f"parameter {name} has no elements (shape {tuple(p.shape)}): is n_factors 0?"
            )
    for what, k, attr in (("user", 0, "u"), ("movie", 1, "m")):
        idx, emb = torch.cat([train[k], valid[k]]), getattr(model, attr, None)
        if isinstance(emb, nn.Embedding) and len(idx):
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= emb.num_embeddings:
                bad = lo if lo < 0 else hi
                raise IndexError(
                    f"{what} row number {bad} is outside the model's {emb.num_embeddings} {what}s "
                    f"(0..{emb.num_embeddings - 1}): build the model with the data's n_{what}s"
                )


class Run:
    """What `fit` does around a training step: batches, schedule, log, progress bar.

    The caller's learning rates and momenta come back at the end, so `set_lr` works between fits.
    """

    def __init__(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        ratings: torch.Tensor,
        epochs: int,
        bs: int,
        sched: schedules.Schedule | None,
        seed: int | None,
        history: History | None,
        progress: bool,
        on_step: Callable | None,
    ):
        n, device = len(ratings), ratings.device
        if epochs < 1 or bs < 1:
            raise ValueError(f"need epochs >= 1 and bs >= 1; got epochs={epochs}, bs={bs}")
        if n == 0:
            raise ValueError("the training set is empty")
        self.model, self.opt, self.on_step = model, opt, on_step
        self.n, self.n_epochs, self.bs, self.device = n, epochs, bs, device
        self.steps_per_epoch = math.ceil(n / bs)
        self.base_lrs = [g["lr"] for g in opt.param_groups]
        self.base_moms = [(g.get("betas"), g.get("momentum")) for g in opt.param_groups]
        self.sched = schedules.build(sched, opt, self.steps_per_epoch, epochs)
        if seed is not None:
            torch.manual_seed(seed)  # dropout draws from the global generator
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(torch.randint(0, 2**62, (1,))) if seed is None else seed)
        self.history = history if history is not None else History()
        self.epoch = self.history.n_epochs - 1
        self.step = self.history.n_steps
        self.smooth = EWMA(0.98)
        self.bar = _progress_bar(epochs * self.steps_per_epoch, progress)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        for g, lr, (betas, mom) in zip(self.opt.param_groups, self.base_lrs, self.base_moms):
            restore = dict(lr=lr, betas=betas, momentum=mom)
            g.update({k: v for k, v in restore.items() if v is not None})

    def epochs(self):
        """The epoch numbers of this call (continuing a history's count)."""
        first = self.epoch + 1
        for self.epoch in range(first, first + self.n_epochs):  # noqa: B020 (the attribute is the counter)
            self.start, self.losses, self.lrs = time.perf_counter(), [], []
            yield self.epoch

    def batches(self):
        return batches(self.n, self.bs, self.gen)

    def after_step(self, loss: torch.Tensor) -> None:
        """Keep the batch's loss (as a tensor: no wait for the device) and its rate; then step the schedule."""
        self.losses.append(loss.detach())
        self.lrs.append(self.opt.param_groups[0]["lr"])
        if self.on_step is not None:
            self.on_step(self.step + len(self.losses) - 1, self.model, self.opt, loss.item())
        if self.sched is not None:
            self.sched.step()
        if self.bar is not None:
            self.bar.update(1)

    def after_epoch(self, valid_mse: float) -> None:
        """Log the epoch's steps and validation error; stop with DivergenceError on a NaN or infinite loss."""
        seconds = time.perf_counter() - self.start
        losses = torch.stack(self.losses).tolist()  # one transfer per epoch
        for batch, (value, lr) in enumerate(zip(losses, self.lrs)):
            if not math.isfinite(value):
                raise DivergenceError(
                    f"loss is {value} at epoch {self.epoch} (0-based), batch {batch} of {self.steps_per_epoch} "
                    f"(step {self.step}, lr {lr:.3g}): lower the learning rate"
                )
            self.history.step_rows.append(
                (self.step, self.epoch, value, self.smooth.update(value), lr)
            )
            self.step += 1
        if not math.isfinite(valid_mse):
            raise DivergenceError(
                f"validation MSE is {valid_mse} after epoch {self.epoch} (0-based): "
                "lower the learning rate"
            )
        row = dict(epoch=self.epoch, train_loss=self.smooth.value, valid_mse=valid_mse)
        row |= dict(valid_rmse=math.sqrt(valid_mse), lr=self.lrs[-1], seconds=seconds)
        self.history.epoch_rows.append(row)
        if self.bar is not None:
            self.bar.write(
                f"epoch {self.epoch}: train_loss {row['train_loss']:.5f}  valid_mse {valid_mse:.5f}"
                f"  valid_rmse {row['valid_rmse']:.5f}"
            )


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
    loss_fn: Callable = F.mse_loss,
    *,
    bs: int = 64,
    sched: schedules.Schedule | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_step: Callable | None = None,
    history: History | None = None,
    threads: int | None = None,
) -> History:
    """Train `model` for `epochs` epochs of mini-batches; validation error after each epoch.

    `threads`: torch's intra-op threads; None: one for small CPU batches unless you set a count.
    """
    device = get_device(device)
    model.to(device)  # the parameters go to the GPU when there is one...
    (users, movies, ratings), valid = split_data(data, device)  # ...and so does the data, once
    _check(model, (users, movies, ratings), valid)
    with (
        training_threads(threads, bs, device),
        Run(model, opt, ratings, epochs, bs, sched, seed, history, progress, on_step) as run,
    ):
        for epoch in run.epochs():
            model.train()  # dropout on
            for idx in run.batches():  # a shuffled mini-batch of row numbers
                preds = model(users[idx], movies[idx])  # forward: the whole mini-batch at once
                loss = loss_fn(preds, ratings[idx])
                opt.zero_grad()
                loss.backward()  # the gradient of the loss for every parameter
                opt.step()  # the optimizer moves each parameter
                run.after_step(loss)
            run.after_epoch(evaluate(model, *valid))  # dropout off
    return run.history


def basic_fit(
    model: nn.Module,
    data: Data,
    epochs: int,
    opt: torch.optim.Optimizer,
    loss_fn: Callable = F.mse_loss,
    bs: int = 64,
    seed: int = 42,
    device: torch.device | str | None = None,
) -> None:
    """The lesson's loop alone: shuffled mini-batches, a step each, validation MSE.

    Notebook 03.

    It shuffles as `fit` does: from one start, both reach the same weights.
    """
    device = get_device(device)
    model.to(device)  # the parameters go to the GPU when there is one, the data too
    (users, movies, ratings), valid = split_data(data, device)
    torch.manual_seed(seed)  # dropout draws from the global generator
    gen = torch.Generator(device=device).manual_seed(seed)  # the shuffles, from this one
    for epoch in range(epochs):
        model.train()  # dropout on
        perm = torch.randperm(len(ratings), generator=gen, device=device)
        for idx in perm.split(bs):  # a mini-batch of row numbers, in the order drawn
            loss = loss_fn(model(users[idx], movies[idx]), ratings[idx])  # forward, loss
            opt.zero_grad()
            loss.backward()  # the gradient of the loss for every parameter
            opt.step()  # the optimizer moves each parameter
        print(f"epoch {epoch}: valid_mse {evaluate(model, *valid):.5f}")  # dropout off
