"""Fixtures for tests/test_interpret.py: held-out users and a small EmbeddingDotBias trained on the rest."""

from __future__ import annotations

import torch

from lesson5 import data as D


def trained_model(
    ds: D.Ratings, n_factors: int, epochs: int, lr: float, y_range=None, wd: float = 1e-5
):
    """The package's EmbeddingDotBias trained by the package's fit (mini-batch Adam, seeded)."""
    from lesson5 import models, train

    torch.manual_seed(0)
    model = models.EmbeddingDotBias(ds.n_users, ds.n_movies, n_factors, y_range or ds.rating_range)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    train.fit(model, ds, epochs, opt, bs=1024, seed=0, device="cpu", progress=False)
    return model
