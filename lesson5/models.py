"""The lesson's four collaborative-filtering models, as plain `nn.Module`s (notebooks 03 and 04).

Every model is called with index tensors, `model(users, movies)`, or in the lesson's
`model(cats, conts)` form, where `cats[:, 0]` are users and `cats[:, 1]` movies and `conts`
(the continuous columns fastai 0.7's ColumnarModelData passes) is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lesson5.data import MAX_RATING, MIN_RATING

__all__ = ["DotProduct", "EmbeddingDot", "EmbeddingDotBias", "EmbeddingNet", "MODELS", "get_emb", "split_cats"]


def split_cats(users: torch.Tensor, movies: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(users, movies) from either call form: two 1-D index tensors, or the lesson's 2-D `cats` (notebook 03).

    A 2-D first argument is `cats`; the second argument is then the lesson's `conts` and is
    ignored, so `model(cats, conts)` and `model(users, movies)` both work.
    """
    if users.dim() == 2:
        if users.shape[1] < 2:
            raise ValueError(f"cats must have at least 2 columns (users, movies); got shape {tuple(users.shape)}")
        return users[:, 0], users[:, 1]
    if movies is None:
        raise TypeError("call the model as model(users, movies) with two index tensors, or model(cats, conts)")
    if users.shape != movies.shape:
        raise ValueError(f"users and movies must have the same shape; got {tuple(users.shape)} and {tuple(movies.shape)}")
    return users, movies


def get_emb(n: int, k: int, low: float = -0.01, high: float = 0.01) -> nn.Embedding:
    """An n x k embedding initialised uniform(low, high), the lesson's `get_emb` (notebook 03)."""
    e = nn.Embedding(n, k)
    # Small random starts break the symmetry between factors without saturating the sigmoid.
    nn.init.uniform_(e.weight, low, high)
    return e


def _check_range(y_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in y_range)
    if not lo < hi:
        raise ValueError(f"y_range must be (low, high) with low < high; got {y_range}")
    return lo, hi


class DotProduct(nn.Module):
    """The lesson's first custom layer: the row-wise dot product of two matrices (notebook 03)."""

    def forward(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (u * m).sum(1)


class EmbeddingDot(nn.Module):
    """A user factor row dotted with a movie factor row, nothing else (notebook 03)."""

    def __init__(self, n_users: int, n_movies: int, n_factors: int = 50):
        super().__init__()
        self.hparams = dict(n_users=n_users, n_movies=n_movies, n_factors=n_factors)
        # The lesson starts this model's factors in uniform(0, 0.05): all-positive, so early dot products are small and positive.
        self.u = get_emb(n_users, n_factors, 0.0, 0.05)
        self.m = get_emb(n_movies, n_factors, 0.0, 0.05)

    def forward(self, users: torch.Tensor, movies: torch.Tensor | None = None) -> torch.Tensor:
        users, movies = split_cats(users, movies)
        return (self.u(users) * self.m(movies)).sum(1)


class EmbeddingDotBias(nn.Module):
    """Dot product plus a user bias and a movie bias, squashed by a sigmoid into `y_range` (notebook 03)."""

    def __init__(self, n_users: int, n_movies: int, n_factors: int = 50,
                 y_range: tuple[float, float] = (MIN_RATING, MAX_RATING)):
        super().__init__()
        self.y_range = _check_range(y_range)
        self.hparams = dict(n_users=n_users, n_movies=n_movies, n_factors=n_factors, y_range=self.y_range)
        self.u, self.m = get_emb(n_users, n_factors), get_emb(n_movies, n_factors)
        self.ub, self.mb = get_emb(n_users, 1), get_emb(n_movies, 1)

    def forward(self, users: torch.Tensor, movies: torch.Tensor | None = None) -> torch.Tensor:
        users, movies = split_cats(users, movies)
        res = (self.u(users) * self.m(movies)).sum(1) + self.ub(users).squeeze(-1) + self.mb(movies).squeeze(-1)
        lo, hi = self.y_range
        return torch.sigmoid(res) * (hi - lo) + lo


class EmbeddingNet(nn.Module):
    """Concatenated embeddings -> dropout -> linear(nh) -> ReLU -> dropout -> linear -> scaled sigmoid (notebook 04).

    The default `y_range` is the rating range widened by half a star each side, as in the
    lesson, so the extreme ratings are reachable without an infinite pre-activation.
    """

    def __init__(self, n_users: int, n_movies: int, n_factors: int = 50, nh: int = 10,
                 p1: float = 0.05, p2: float = 0.5,
                 y_range: tuple[float, float] = (MIN_RATING - 0.5, MAX_RATING + 0.5)):
        super().__init__()
        self.y_range = _check_range(y_range)
        self.hparams = dict(n_users=n_users, n_movies=n_movies, n_factors=n_factors, nh=nh, p1=p1, p2=p2,
                            y_range=self.y_range)
        self.u, self.m = get_emb(n_users, n_factors), get_emb(n_movies, n_factors)
        self.lin1 = nn.Linear(n_factors * 2, nh)
        self.lin2 = nn.Linear(nh, 1)
        self.drop1 = nn.Dropout(p1)
        self.drop2 = nn.Dropout(p2)

    def forward(self, users: torch.Tensor, movies: torch.Tensor | None = None) -> torch.Tensor:
        users, movies = split_cats(users, movies)
        x = self.drop1(torch.cat([self.u(users), self.m(movies)], dim=1))
        x = self.drop2(F.relu(self.lin1(x)))
        lo, hi = self.y_range
        return torch.sigmoid(self.lin2(x).squeeze(-1)) * (hi - lo) + lo


MODELS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (EmbeddingDot, EmbeddingDotBias, EmbeddingNet)
}
