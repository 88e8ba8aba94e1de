"""Optional benchmark rows for fastai and Surprise, used only when they are importable (README).

Neither is a dependency of lesson5; `lesson5.tools.bench` imports this module inside a row's child
process only after `importlib.util.find_spec` has found the package (`make bench` builds a venv
with both, pinned in benchmarks/requirements.txt). Every row trains on exactly the lesson's split
(the same `train_idx` / `valid_idx` positions) and returns its training seconds per epoch, its
validation RMSE per epoch (nan where the library does not evaluate) and the device it really used.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and torch load only in the row's child process
    from lesson5.data import Ratings
    from lesson5.recipes import Recipe

# fastai's own collab recipe (its lesson and docs): fit_one_cycle(5, 5e-3, wd=0.1),
# y_range (0, 5.5).
FASTAI_LR, FASTAI_WD, FASTAI_Y_RANGE = 5e-3, 0.1, (0.0, 5.5)

# Surprise SVD's grid: values a user would try first (its docs' GridSearchCV example and around).
SVD_GRID = dict(
    n_factors=(50, 100), n_epochs=(20, 40), lr_all=(0.005, 0.01), reg_all=(0.02, 0.05, 0.1)
)


def _epoch_timer():
    """A fastai callback that keeps each epoch's training seconds (its validation pass left out).

    Not taught; README 'Benchmark'.
    """
    from fastai.callback.core import Callback

    class EpochTimer(Callback):
        def before_fit(self):
            self.times = []

        def before_epoch(self):
            self.start = time.perf_counter()

        def after_train(self):
            self.times.append(time.perf_counter() - self.start)

    return EpochTimer()


def _two_groups(model) -> list[list]:
    """fastai splitter: factor weights first, biases second, so a per-group wd skips the biases.

    Not taught; README 'Benchmark'.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if "bias" in name else decay).append(p)
    return [decay, no_decay]


def fastai_row(
    ds: Ratings, bs: int, use_nn: bool = False, seed: int = 42, recipe: Recipe | None = None
) -> dict:
    """fastai 2's collab_learner with fastai's own recipe, or (`recipe`) exactly one of ours.

    Not taught; README 'Benchmark'.
    Own recipe: EmbeddingDotBias with 50 factors (or `use_nn`: EmbeddingNN, one hidden layer of
    100), fastai's Adam, fit_one_cycle(5, 5e-3, wd=0.1) at every batch size, y_range (0, 5.5).
    Our recipe (EmbeddingDotBias only): torch's AdamW through fastai's OptimWrapper with the
    recipe's lr, betas and wd (already moved to `bs`), wd on the factors only, the same one cycle
    (pct_start 0.25, div 25, final lr base / (25 x 1e5), moms 0.95-0.85-0.95), the same epochs and
    y_range as our model's (`Recipe.y_range`).
    """
    from functools import partial

    import torch
    from fastai.collab import TabularCollab, collab_learner
    from fastai.optimizer import OptimWrapper
    from fastai.tabular.core import Categorify
    from fastai.torch_core import set_seed

    from lesson5 import schedules

    df = ds.ratings[["userId", "movieId", "rating"]].copy()
    splits = (
        [int(i) for i in ds.train_idx],
        [int(i) for i in ds.valid_idx],
    )  # positions (fastai uses iloc)
    to = TabularCollab(
        df, [Categorify], cat_names=["userId", "movieId"], y_names=["rating"], splits=splits
    )
    set_seed(
        seed
    )  # Python's, NumPy's and torch's generators: the loader's shuffle and the model's init
    dls = to.dataloaders(bs=bs)
    timer = _epoch_timer()
    if recipe is None:
        learn = collab_learner(
            dls,
            n_factors=50,
            use_nn=use_nn,
            layers=[100] if use_nn else None,
            y_range=FASTAI_Y_RANGE,
        )
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(5, FASTAI_LR, wd=FASTAI_WD, cbs=[timer])
        epochs = 5
    else:
        if use_nn or recipe.model != "EmbeddingDotBias":
            raise ValueError(
                f"fastai with our recipe is for EmbeddingDotBias only, not {recipe.model}"
            )
        cyc = schedules.OneCycle()
        ((epochs, lr),) = recipe.stages
        opt = partial(
            OptimWrapper, opt=partial(torch.optim.AdamW, betas=(0.9, recipe.beta2), eps=1e-8)
        )
        learn = collab_learner(
            dls,
            n_factors=50,
            y_range=recipe.y_range(ds.rating_range),
            opt_func=opt,
            splitter=_two_groups,
        )
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(
                epochs,
                lr,
                div=cyc.div,
                div_final=cyc.div * cyc.final_div,
                pct_start=cyc.pct_start,
                moms=(*cyc.moms, cyc.moms[0]),
                wd=[recipe.wd, 0.0],
                cbs=[timer],
            )
        groups = learn.opt.opt.param_groups
        if [g["weight_decay"] for g in groups] != [
            recipe.wd,
            0.0,
        ]:  # fastai maps wd per group: check it did
            raise RuntimeError(
                f"fastai set weight decay {[g['weight_decay'] for g in groups]}, not ours"
            )
    # The recorder keeps [train loss, valid loss] per epoch; its valid loss is the MSE over the
    # whole validation set (batch means weighted by batch size).
    rmse = [math.sqrt(float(v[1])) for v in learn.recorder.values]
    device = next(learn.model.parameters()).device
    return dict(
        model="EmbeddingNN" if use_nn else "EmbeddingDotBias",
        seconds=timer.times,
        valid_rmse=rmse,
        device=str(device),
        data_device=str(learn.dls.device),
        epochs=epochs,
    )


def _svd_rmse(params: dict, train_df, valid_df, rating_range, seed: int) -> tuple[float, float]:
    """(validation RMSE, fit seconds) of one Surprise SVD trained on `train_df`.

    Not taught; README 'Benchmark'.
    """
    import numpy as np
    from surprise import SVD, Dataset, Reader

    trainset = Dataset.load_from_df(
        train_df, Reader(rating_scale=rating_range)
    ).build_full_trainset()
    algo = SVD(random_state=seed, **params)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    pred = np.array([algo.predict(u, m).est for u, m in zip(valid_df.userId, valid_df.movieId)])
    return float(np.sqrt(((pred - valid_df.rating.to_numpy()) ** 2).mean())), seconds


def tune_svd(train_df, rating_range, seed: int, grid: dict = SVD_GRID) -> tuple[dict, float]:
    """(best params, seconds spent) of a grid search on an 80/20 split of the training rows only.

    Not taught; README 'Benchmark'.
    The lesson's validation rows are never seen: the holdout is carved out of `train_df`.
    """
    import numpy as np

    start = time.perf_counter()
    inner = np.random.RandomState(seed).permutation(len(train_df))
    cut = int(0.8 * len(inner))
    fit_df, hold_df = train_df.iloc[inner[:cut]], train_df.iloc[inner[cut:]]
    best, best_rmse = None, math.inf
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        rmse, _ = _svd_rmse(params, fit_df, hold_df, rating_range, seed)
        if rmse < best_rmse:
            best, best_rmse = params, rmse
    return best, time.perf_counter() - start


def surprise_row(ds: Ratings, seed: int = 42, tuned: bool = False, grid: dict = SVD_GRID) -> dict:
    """Surprise's SVD (biased MF, SGD one rating at a time in Cython): its defaults, or tuned.

    Not taught; README 'Benchmark'.
    Defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02. Tuned: the best of `grid` on a holdout
    carved from the training rows (`tune_svd`), then refit on all training rows.
    """
    cols = ["userId", "movieId", "rating"]
    train_df = ds.ratings.iloc[ds.train_idx][cols]
    valid_df = ds.ratings.iloc[ds.valid_idx][cols]
    params, tune_s = tune_svd(train_df, ds.rating_range, seed, grid) if tuned else ({}, 0.0)
    rmse, total = _svd_rmse(params, train_df, valid_df, ds.rating_range, seed)
    epochs = params.get("n_epochs", 20)  # Surprise's default
    # fit() runs all epochs in one call: each epoch is credited an equal share of the total, and
    # only the last one has a validation RMSE.
    return dict(
        model="SVD (Surprise)",
        seconds=[total / epochs] * epochs,
        valid_rmse=[math.nan] * (epochs - 1) + [rmse],
        device="cpu",
        params=params,
        tune_s=tune_s,
        epochs=epochs,
    )
