"""Optional benchmark rows for fastai and Surprise, used only when they are importable (README).

Neither is a dependency of lesson5; `lesson5.tools.bench` imports this module inside a row's child
process only after `importlib.util.find_spec` has found the package. Both train on exactly the
lesson's split (the same `train_idx` / `valid_idx` positions). Each row returns its training
seconds per epoch and its validation RMSE per epoch (nan where the library does not evaluate).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and torch load only in the row's child process
    from lesson5.data import Ratings


def fastai_row(ds: Ratings, bs: int, use_nn: bool = False, epochs: int = 5, seed: int = 42) -> dict:
    """fastai 2's collab_learner, fit_one_cycle(5, 5e-3, wd=0.1): EmbeddingDotBias with 50 factors, or
    (`use_nn`) EmbeddingNN with one hidden layer of 100; y_range (0, 5.5) as in fastai's lesson."""
    from fastai.callback.core import Callback
    from fastai.collab import TabularCollab, collab_learner
    from fastai.tabular.core import Categorify
    from fastai.torch_core import set_seed

    df = ds.ratings[["userId", "movieId", "rating"]].copy()
    splits = ([int(i) for i in ds.train_idx], [int(i) for i in ds.valid_idx])  # positions (fastai uses iloc)
    to = TabularCollab(df, [Categorify], cat_names=["userId", "movieId"], y_names=["rating"], splits=splits)
    set_seed(seed)  # Python's, NumPy's and torch's generators: the loader's shuffle and the model's init
    dls = to.dataloaders(bs=bs)
    learn = collab_learner(dls, n_factors=50, use_nn=use_nn, layers=[100] if use_nn else None, y_range=(0, 5.5))

    class EpochTimer(Callback):
        """Training seconds of each epoch: its validation pass is left out, as in the project's rows."""

        def before_fit(self):
            self.times = []

        def before_epoch(self):
            self.start = time.perf_counter()

        def after_train(self):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, 5e-3, wd=0.1, cbs=[timer])
    # The recorder still keeps [train loss, valid loss] per epoch; its valid loss is the MSE over the
    # whole validation set (batch means weighted by batch size).
    rmse = [math.sqrt(float(v[1])) for v in learn.recorder.values]
    return dict(model="EmbeddingNN" if use_nn else "EmbeddingDotBias", seconds=timer.times, valid_rmse=rmse)


def surprise_row(ds: Ratings, epochs: int = 30, seed: int = 42) -> dict:
    """Surprise's SVD (biased matrix factorisation, SGD one rating at a time in Cython): 50 factors, 30 epochs."""
    import numpy as np
    from surprise import SVD, Dataset, Reader

    cols = ["userId", "movieId", "rating"]
    train_df = ds.ratings.iloc[ds.train_idx][cols]
    valid_df = ds.ratings.iloc[ds.valid_idx][cols]
    trainset = Dataset.load_from_df(train_df, Reader(rating_scale=ds.rating_range)).build_full_trainset()
    algo = SVD(n_factors=50, n_epochs=epochs, random_state=seed)
    start = time.perf_counter()
    algo.fit(trainset)
    total = time.perf_counter() - start
    pred = np.array([algo.predict(u, m).est for u, m in zip(valid_df.userId, valid_df.movieId)])
    rmse = float(np.sqrt(((pred - valid_df.rating.to_numpy()) ** 2).mean()))
    # fit() runs all epochs in one call: each epoch is credited an equal share of the total, and only the
    # last one has a validation RMSE.
    return dict(model="SVD (Surprise)", seconds=[total / epochs] * epochs,
                valid_rmse=[math.nan] * (epochs - 1) + [rmse])
