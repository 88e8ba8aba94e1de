"""Optional benchmark rows for fastai and Surprise, used only when they are importable (README).

Neither is a dependency of lesson5; `lesson5.bench` imports this module inside a row's child
process only after `importlib.util.find_spec` has found the package. Both train on exactly the
lesson's split (the same `train_idx` / `valid_idx`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and torch load only in the row's child process
    from lesson5.data import Ratings


def fastai_row(ds: Ratings, bs: int, epochs: int = 5) -> dict:
    """fastai 2's collab_learner (EmbeddingDotBias, 50 factors), fit_one_cycle(5, 5e-3, wd=0.1)."""
    from fastai.callback.core import Callback
    from fastai.collab import TabularCollab, collab_learner
    from fastai.tabular.core import Categorify

    df = ds.ratings[["userId", "movieId", "rating"]].copy()
    splits = (list(ds.train_idx), list(ds.valid_idx))
    to = TabularCollab(df, [Categorify], cat_names=["userId", "movieId"], y_names=["rating"], splits=splits)
    dls = to.dataloaders(bs=bs)
    learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))

    class EpochTimer(Callback):
        def before_fit(self):
            self.times = []

        def before_epoch(self):
            self.start = time.perf_counter()

        def after_train(self):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, 5e-3, wd=0.1, cbs=[timer])
        mse = float(learn.validate()[0])
    return dict(model="EmbeddingDotBias", seconds=timer.times, valid_rmse=math.sqrt(mse))


def surprise_row(ds: Ratings) -> dict:
    """Surprise's SVD (biased matrix factorisation, SGD in Cython): 50 factors, 30 epochs."""
    import numpy as np
    from surprise import SVD, Dataset, Reader

    cols = ["userId", "movieId", "rating"]
    train_df = ds.ratings.iloc[ds.train_idx][cols]
    valid_df = ds.ratings.iloc[ds.valid_idx][cols]
    trainset = Dataset.load_from_df(train_df, Reader(rating_scale=ds.rating_range)).build_full_trainset()
    algo = SVD(n_factors=50, n_epochs=30, random_state=0)
    start = time.perf_counter()
    algo.fit(trainset)
    total = time.perf_counter() - start
    pred = np.array([algo.predict(u, m).est for u, m in zip(valid_df.userId, valid_df.movieId)])
    rmse = float(np.sqrt(((pred - valid_df.rating.to_numpy()) ** 2).mean()))
    return dict(model="SVD (Surprise)", seconds=[total / 30] * 30, valid_rmse=rmse, total_s=total)
