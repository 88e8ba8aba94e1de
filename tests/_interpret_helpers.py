"""Fixtures for tests/test_interpret.py: a small trained dot-product-with-bias model, torch only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from lesson5 import data as D


class TinyDotBias(nn.Module):
    """The lesson's EmbeddingDotBias written out again, so these tests do not lean on lesson5.models."""

    def __init__(self, n_users: int, n_movies: int, k: int, y_range: tuple[float, float]):
        super().__init__()
        self.u, self.m = nn.Embedding(n_users, k), nn.Embedding(n_movies, k)
        self.ub, self.mb = nn.Embedding(n_users, 1), nn.Embedding(n_movies, 1)
        for e in (self.u, self.m, self.ub, self.mb):
            nn.init.uniform_(e.weight, -0.01, 0.01)
        self.y_range = y_range

    def forward(self, users, movies):
        x = (self.u(users) * self.m(movies)).sum(1) + self.ub(users).squeeze(1) + self.mb(movies).squeeze(1)
        lo, hi = self.y_range
        return torch.sigmoid(x) * (hi - lo) + lo


def train(model: nn.Module, ds: D.Ratings, epochs: int = 3, bs: int = 1024, lr: float = 0.02, wd: float = 1e-5):
    """Mini-batch Adam on the training rows, shuffled with a fixed seed: deterministic and quick."""
    u, m, y = ds.tensors("train")
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    for _ in range(epochs):
        for b in torch.randperm(len(y), generator=g).split(bs):
            opt.zero_grad()
            nn.functional.mse_loss(model(u[b], m[b]), y[b]).backward()
            opt.step()
    return model


def hold_out_users(ds: D.Ratings, n_users: int, min_ratings: int, seed: int = 0):
    """(Ratings without the held-out users, {userId: DataFrame of their ratings on known movies})."""
    r = ds.ratings
    counts = r.userId.value_counts()
    pool = np.sort(counts[counts >= min_ratings].index.to_numpy())
    chosen = np.random.default_rng(seed).choice(pool, n_users, replace=False)
    rest = r[~r.userId.isin(chosen)]
    kept = D.build(rest, ds.movies, source=ds.source)
    known = set(kept.movies_map.ids.tolist())
    held = {int(uid): r[(r.userId == uid) & r.movieId.isin(known)].reset_index(drop=True) for uid in chosen}
    return kept, held


def fold_in_vs_fallback(model, kept: D.Ratings, held: dict, n_fold: int = 10, seed: int = 0):
    """Pooled RMSE on each held-out user's other ratings: (folding in n_fold ratings, bias-only fallback)."""
    from lesson5 import interpret

    rng = np.random.default_rng(seed)
    se_fold, se_base = [], []
    fallback = interpret.fold_in(model, kept, [])
    noise_var = interpret.residual_variance(model, kept)  # once, not once per user
    for uid, df in held.items():
        perm = rng.permutation(len(df))
        given, rest = df.iloc[perm[:n_fold]], df.iloc[perm[n_fold:]]
        user = interpret.fold_in(model, kept, list(zip(given.movieId, given.rating)), noise_var=noise_var)
        idx = kept.movies_map.encode(rest.movieId.to_numpy())
        y = rest.rating.to_numpy(dtype=np.float64)
        se_fold.append((interpret.predict_new_user(model, user, idx).numpy() - y) ** 2)
        se_base.append((interpret.predict_new_user(model, fallback, idx).numpy() - y) ** 2)
    return float(np.sqrt(np.concatenate(se_fold).mean())), float(np.sqrt(np.concatenate(se_base).mean()))
