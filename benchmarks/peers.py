"""The peers' rows of bench.py: fastai 2 and Surprise, imported only inside a row's own process.

Neither is a dependency of lesson5 (benchmarks/requirements.txt pins both for `make bench`). Every
row trains on exactly the lesson's split (the same `train_idx` / `valid_idx` positions) and returns
its training seconds and validation RMSE per epoch (nan where the library does not evaluate), the
device it really used, and its lr and wd.
"""

from __future__ import annotations

import itertools
import math
import time
from functools import partial

# fastai's own collab recipe (its lesson and docs): fit_one_cycle(5, 5e-3, wd=0.1), y_range (0, 5.5)
FASTAI_LR, FASTAI_WD, FASTAI_Y_RANGE = 5e-3, 0.1, (0.0, 5.5)
# Surprise SVD's grid: values a user would try first (its docs' GridSearchCV example and around)
SVD_GRID = dict(
    n_factors=(50, 100), n_epochs=(20, 40), lr_all=(0.005, 0.01), reg_all=(0.02, 0.05, 0.1)
)


def fastai_row(ds, bs: int, use_nn: bool = False, seed: int = 0, recipe=None) -> dict:
    """fastai 2's collab_learner with fastai's own recipe, or (`recipe`) exactly one of ours.

    Own: EmbeddingDotBias with 50 factors (`use_nn`: EmbeddingNN, one hidden layer of 100), fastai's
    Adam, fit_one_cycle(5, 5e-3, wd=0.1) at every batch size, y_range (0, 5.5). Ours (EmbeddingDotBias
    only): torch's AdamW through fastai's OptimWrapper with the recipe's lr, betas and wd, wd on the
    factors only, the same one cycle (lesson5.schedules.OneCycle), epochs and y_range as our model's.
    """
    import torch
    from fastai.callback.core import Callback
    from fastai.collab import TabularCollab, collab_learner
    from fastai.optimizer import OptimWrapper
    from fastai.tabular.core import Categorify
    from fastai.torch_core import set_seed

    from lesson5 import schedules

    class EpochTimer(Callback):  # each epoch's training seconds, its validation pass left out
        def before_fit(self):
            self.times = []

        def before_epoch(self):
            self.start = time.perf_counter()

        def after_train(self):
            self.times.append(time.perf_counter() - self.start)

    def two_groups(model) -> list[list]:  # factors, then biases: a per-group wd skips the biases
        named = list(model.named_parameters())
        return [[p for n, p in named if "bias" not in n], [p for n, p in named if "bias" in n]]

    df = ds.ratings[["userId", "movieId", "rating"]].copy()
    splits = ([int(i) for i in ds.train_idx], [int(i) for i in ds.valid_idx])  # fastai uses iloc
    cols = dict(cat_names=["userId", "movieId"], y_names=["rating"], splits=splits)
    to = TabularCollab(df, [Categorify], **cols)
    set_seed(seed)  # Python's, NumPy's and torch's generators: the shuffle and the model's init
    dls, timer = to.dataloaders(bs=bs), EpochTimer()
    if recipe is None:
        epochs, lr, wd, fit = 5, FASTAI_LR, FASTAI_WD, dict(wd=FASTAI_WD)
        model = dict(use_nn=use_nn, layers=[100] if use_nn else None, y_range=FASTAI_Y_RANGE)
    elif use_nn or recipe.model != "EmbeddingDotBias":
        raise ValueError(f"fastai with our recipe is for EmbeddingDotBias only, not {recipe.model}")
    else:
        ((epochs, lr),), wd, cyc = recipe.stages, recipe.wd, schedules.OneCycle()
        adamw = partial(torch.optim.AdamW, betas=(0.9, recipe.beta2), eps=1e-8)
        opt = partial(OptimWrapper, opt=adamw)
        model = dict(y_range=recipe.y_range(ds.rating_range), opt_func=opt, splitter=two_groups)
        # final lr base / (div x final_div); moms 0.95-0.85-0.95, as OneCycle's
        fit = dict(div=cyc.div, div_final=cyc.div * cyc.final_div, pct_start=cyc.pct_start)
        fit.update(moms=(*cyc.moms, cyc.moms[0]), wd=[wd, 0.0])
    learn = collab_learner(dls, n_factors=50, **model)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr, cbs=[timer], **fit)
    got = [g["weight_decay"] for g in learn.opt.opt.param_groups] if recipe else [wd, 0.0]
    if got != [wd, 0.0]:  # ours: fastai maps wd per group (factors, biases); check it did
        raise RuntimeError(f"fastai set weight decay {got}, not ours")
    # The recorder keeps [train loss, valid loss] per epoch; its valid loss is the MSE over the
    # whole validation set (batch means weighted by batch size).
    rmse = [math.sqrt(float(v[1])) for v in learn.recorder.values]
    out = dict(model="EmbeddingNN" if use_nn else "EmbeddingDotBias", seconds=timer.times)
    out.update(valid_rmse=rmse, epochs=epochs, lr=lr, wd=wd, data_device=str(learn.dls.device))
    return dict(out, device=str(next(learn.model.parameters()).device))


def _svd(params: dict, train_df, valid_df, rating_range, seed: int) -> tuple[float, float]:
    """(validation RMSE, fit seconds) of one Surprise SVD trained on `train_df`."""
    import numpy as np
    from surprise import SVD, Dataset, Reader

    reader = Reader(rating_scale=rating_range)
    trainset = Dataset.load_from_df(train_df, reader).build_full_trainset()
    algo = SVD(random_state=seed, **params)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    pred = np.array([algo.predict(u, m).est for u, m in zip(valid_df.userId, valid_df.movieId)])
    return float(np.sqrt(((pred - valid_df.rating.to_numpy()) ** 2).mean())), seconds


def surprise_row(ds, seed: int = 0, tuned: bool = False) -> dict:
    """Surprise's SVD (biased MF, SGD one rating at a time in Cython): its defaults, or tuned.

    Defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02. Tuned: the best of SVD_GRID on an 80/20
    split of the training rows only (the lesson's validation rows are never seen), then refit on
    all of them; `tune_s` is the search's seconds.
    """
    import numpy as np

    cols = ["userId", "movieId", "rating"]
    train_df, valid_df = ds.ratings.iloc[ds.train_idx][cols], ds.ratings.iloc[ds.valid_idx][cols]
    params, start = {}, time.perf_counter()
    if tuned:
        inner = np.random.RandomState(seed).permutation(len(train_df))
        fit_df, hold_df = (train_df.iloc[i] for i in np.split(inner, [int(0.8 * len(inner))]))
        trials = [dict(zip(SVD_GRID, v)) for v in itertools.product(*SVD_GRID.values())]
        params = min(trials, key=lambda p: _svd(p, fit_df, hold_df, ds.rating_range, seed)[0])
    tune_s = time.perf_counter() - start if tuned else 0.0
    rmse, total = _svd(params, train_df, valid_df, ds.rating_range, seed)
    epochs = params.get("n_epochs", 20)  # Surprise's default
    # fit() runs all epochs in one call: each epoch is credited an equal share of the total, and
    # only the last one has a validation RMSE.
    out = dict(model="SVD (Surprise)", seconds=[total / epochs] * epochs, device="cpu")
    out.update(valid_rmse=[math.nan] * (epochs - 1) + [rmse], params=params, tune_s=tune_s)
    return dict(out, epochs=epochs, lr=params.get("lr_all", 0.005), wd=params.get("reg_all", 0.02))
