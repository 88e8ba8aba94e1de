"""Named training recipes: the lesson's own (3 + 3 epochs with `set_lrs`) and faster modern ones.

Notebooks 03 and 04.

The notebooks and `benchmarks/bench.py` train through these: a recipe's numbers are written once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pooch
import torch
from filelock import FileLock
from torch import nn

from lesson5 import models, schedules, train
from lesson5.atomic import atomic_write
from lesson5.data import MAX_RATING, MIN_RATING, Ratings
from lesson5.device import get_device

# What torch.load and load_state_dict raise on a truncated, foreign or older file.
UNREADABLE = (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError)


@dataclass(frozen=True)
class Recipe:
    """A model, an optimizer and a list of (epochs, learning rate) stages with `set_lr` between them."""

    model: str
    optimizer: str  # "sgd" (momentum 0.9), "adam" or "adamw"
    stages: tuple[tuple[int, float], ...]
    wd: float = 0.0
    decay_biases: bool = True  # False: biases get no weight decay (train.param_groups)
    sched: schedules.CosineRestarts | schedules.OneCycle | None = None  # for every `fit` call
    bs: int = 64
    beta2: float = 0.999  # Adam's second-moment decay
    model_kwargs: dict = field(default_factory=dict)
    # Room below and above the data's ratings in `y_range`; None: the model's own rule
    # (none for EmbeddingDotBias, half a star each side for EmbeddingNet).
    y_room: tuple[float, float] | None = None
    note: str = ""

    @property
    def epochs(self) -> int:
        return sum(e for e, _ in self.stages)

    def for_batch_size(self, bs: int) -> Recipe:
        """This recipe at batch size `bs`: rates (and AdamW's decay) times sqrt(bs / self.bs)."""
        if bs == self.bs:
            return self
        k = bs / self.bs
        stages = tuple((e, lr * math.sqrt(k)) for e, lr in self.stages)
        wd = self.wd * math.sqrt(k) if self.optimizer == "adamw" else self.wd
        return dataclasses.replace(self, bs=bs, stages=stages, wd=wd)

    def y_range(self, rating_range: tuple[float, float] | None = None) -> tuple[float, float]:
        """The model's `y_range`: the data's ratings (MovieLens's without them) widened by `y_room`."""
        if "y_range" in self.model_kwargs:
            return tuple(self.model_kwargs["y_range"])
        lo, hi = rating_range if rating_range is not None else (MIN_RATING, MAX_RATING)
        net = self.model == "EmbeddingNet"
        below, above = self.y_room if self.y_room is not None else (0.5, 0.5) if net else (0, 0)
        return (lo - below, hi + above)

    def build(
        self,
        n_users: int,
        n_movies: int,
        seed: int = 42,
        rating_range: tuple[float, float] | None = None,
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """A freshly initialised model (seeded) and its optimizer at the first stage's rate."""
        kwargs = dict(self.model_kwargs)
        if "y_range" not in kwargs and self.model != "EmbeddingDot":
            kwargs["y_range"] = self.y_range(rating_range)
        torch.manual_seed(seed)
        model = models.MODELS[self.model](n_users, n_movies, **kwargs)
        params = model.parameters() if self.decay_biases else train.param_groups(model, self.wd)
        lr = self.stages[0][1]
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr, momentum=0.9, weight_decay=self.wd)
        elif self.optimizer in ("adam", "adamw"):
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
            params = list(params)
            try:  # the fused kernel updates all tensors in one pass: ~3x faster here than the default loop
                opt = cls(params, lr, betas=(0.9, self.beta2), weight_decay=self.wd, fused=True)
            except (RuntimeError, TypeError, ValueError):  # a device without a fused kernel
                opt = cls(params, lr, betas=(0.9, self.beta2), weight_decay=self.wd)
        else:
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        return model, opt

    def run(
        self, data: Ratings, *, seed: int = 42, **fit_kwargs
    ) -> tuple[nn.Module, train.History]:
        """Build and train on `data` (a Ratings), stage by stage with `set_lr` between: (model, history)."""
        model, opt = self.build(data.n_users, data.n_movies, seed, data.rating_range)
        hist = None
        for i, (epochs, lr) in enumerate(self.stages):
            train.set_lr(opt, lr)
            kw = dict(bs=self.bs, history=hist, sched=self.sched, **fit_kwargs)
            hist = train.fit(model, data, epochs, opt, seed=seed + i, **kw)
        return model, hist

    def run_once(
        self,
        data: Ratings,
        *,
        seed: int = 42,
        folder: str | os.PathLike | None = None,
        **fit_kwargs,
    ) -> tuple[nn.Module, train.History]:
        """`run`, trained once: a second call loads what the first saved (fastbook's learn.load).

        Kept in `folder` (default: the cache's `models/`) under a key of the recipe, seed, data,
        device type, CPU kernels (baseline and AVX2 differ in the last bits), the code and torch's
        version: a change to any retrains.
        """
        device = get_device(fit_kwargs.get("device"))
        folder = Path(folder) if folder is not None else Path(pooch.os_cache("lesson5")) / "models"
        path = folder / f"{self.model}-{self._key(data, seed, device)}.pt"
        # Two notebooks or test workers at once: one trains, the other loads; either way the
        # global generator is left as it was, so what follows does not depend on which.
        with (
            _locked(path),
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        ):
            if path.is_file():
                try:
                    saved = torch.load(path, map_location="cpu", weights_only=True)
                    model, _ = self.build(data.n_users, data.n_movies, seed, data.rating_range)
                    model.load_state_dict(saved["state"])
                    hist = train.History(saved["epochs"], [tuple(r) for r in saved["steps"]])
                    return model.to(device), hist
                except UNREADABLE:
                    pass  # unreadable or from other code: train afresh and overwrite it
            model, hist = self.run(data, seed=seed, **fit_kwargs)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            record = {"state": state, "epochs": hist.epoch_rows, "steps": hist.step_rows}
            with contextlib.suppress(OSError):  # a read-only cache: trained, just not kept
                atomic_write(path, lambda tmp: torch.save(record, tmp))
            return model, hist

    def _key(self, data: Ratings, seed: int, device: torch.device) -> str:
        cpu = torch.backends.cpu.get_cpu_capability()  # "DEFAULT" under ATEN_CPU_CAPABILITY=default
        h = hashlib.sha256(repr((self, seed, device.type, cpu, torch.__version__)).encode())
        for name in ("models", "train", "schedules", "smooth", "device", "recipes"):  # the numbers
            h.update(Path(sys.modules[f"lesson5.{name}"].__file__).read_bytes())
        for array in (data.user_idx, data.movie_idx, data.train_idx, data.valid_idx):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(data.ratings.rating.to_numpy(np.float32).tobytes())
        return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):  # a read-only cache keeps nothing: no one to wait for
        yield
        return
    with FileLock(f"{path}.lock"):
        yield


# The onecycle ones, tuned over 3 seeds (docs/api.md, "Accuracy over seeds"): batches of 256 train
# 5x faster an epoch than 64 and, with beta2 0.99, as well; room above 5 lets the sigmoid reach 5.
RECIPES: dict[str, Recipe] = {
    # The lesson's cells, as taught on the 2016 release (batch size 64).
    "lesson-dot": Recipe("EmbeddingDot", "sgd", ((3, 0.1), (3, 0.01)), wd=1e-5,
                         note="SGD momentum 0.9, wd 1e-5, 3 epochs at 0.1 then 3 at 0.01"),
    "lesson-bias": Recipe("EmbeddingDotBias", "sgd", ((3, 0.1), (3, 0.01)), wd=2e-4,
                          note="SGD momentum 0.9, wd 2e-4, 3 epochs at 0.1 then 3 at 0.01"),
    "lesson-net": Recipe("EmbeddingNet", "adam", ((3, 1e-3), (3, 1e-3)), wd=1e-5,
                         note="Adam, wd 1e-5, 3 + 3 epochs at 1e-3"),
    "lesson-learner": Recipe("EmbeddingDotBias", "adam", ((3, 1e-2),), wd=2e-4,
                             sched=schedules.CosineRestarts(cycle_len=1, cycle_mult=2),
                             note="Adam 1e-2, wd 2e-4, SGDR (cycle_len=1, cycle_mult=2), 3 epochs"),
    "onecycle-bias": Recipe(
        "EmbeddingDotBias", "adamw", ((5, 6e-3),), wd=0.4, decay_biases=False,
        sched=schedules.OneCycle(), bs=256, beta2=0.99, y_room=(0.0, 0.5),
        note="bs 256, y_range (0.5, 5.5); AdamW 6e-3 (beta2 0.99), wd 0.4 on factors only, "
        "one-cycle, 5 epochs"),
    "onecycle-net": Recipe(
        "EmbeddingNet", "adamw", ((5, 3e-3),), wd=0.2, decay_biases=False,
        sched=schedules.OneCycle(), beta2=0.99, model_kwargs=dict(nh=500, p1=0.5, p2=0.5),
        note="nh 500, dropouts 0.5/0.5; AdamW 3e-3 (beta2 0.99), wd 0.2 on weights only, "
        "one-cycle, 5 epochs"),
}  # fmt: skip


def get(name: str) -> Recipe:
    """The recipe called `name`, or a KeyError listing the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}") from None
