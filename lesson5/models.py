"""The lesson's collaborative-filtering models, as plain `nn.Module`s.

Notebooks 03 and 04.

`model(users, movies)` takes index tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from lesson5.data import MAX_RATING, MIN_RATING


class DotProduct(nn.Module):
    """The row-wise dot product of two matrices: the lesson's first custom module.

    Notebook 03.
    """

    def forward(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (u * m).sum(1)


def get_emb(n: int, k: int, low: float = -0.01, high: float = 0.01) -> nn.Embedding:
    """An n x k embedding whose weights start uniform in (low, high).

    Notebook 03.
    """
    emb = nn.Embedding(n, k)
    # Small random starts: factors that begin different can learn different things,
    # and dot products start near zero.
    nn.init.uniform_(emb.weight, low, high)
    return emb


class EmbeddingDot(nn.Module):
    """A user's factors dotted with a movie's factors, and nothing else.

    Notebook 03.
    """

    def __init__(self, n_users: int, n_movies: int, n_factors: int = 50):
        super().__init__()
        # The lesson's all-positive starts: the first dot products are small and positive.
        self.u = get_emb(n_users, n_factors, 0.0, 0.05)
        self.m = get_emb(n_movies, n_factors, 0.0, 0.05)

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return (self.u(users) * self.m(movies)).sum(1)


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Squash any number into (low, high) with a sigmoid.

    Notebook 03.
    """
    return torch.sigmoid(x) * (high - low) + low


class EmbeddingDotBias(nn.Module):
    """Dot product plus a user bias and a movie bias, squashed into `y_range`.

    Notebook 03.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        n_factors: int = 50,
        y_range: tuple[float, float] = (MIN_RATING, MAX_RATING),
    ):
        super().__init__()
        self.y_range = y_range
        self.u, self.m = get_emb(n_users, n_factors), get_emb(n_movies, n_factors)
        self.ub, self.mb = get_emb(n_users, 1), get_emb(n_movies, 1)

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        dot = (self.u(users) * self.m(movies)).sum(1)  # shape (batch,)
        # A bias lookup has shape (batch, 1); squeeze it to (batch,) before adding. Added
        # unsqueezed, broadcasting would build a (batch, batch) table of every pair.
        res = dot + self.ub(users).squeeze(1) + self.mb(movies).squeeze(1)
        return sigmoid_range(res, *self.y_range)


class EmbeddingNet(nn.Module):
    """User and movie factors side by side, through a hidden layer, into `y_range`.

    Notebook 04.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        n_factors: int = 50,
        nh: int = 10,
        p1: float = 0.05,
        p2: float = 0.5,
        y_range: tuple[float, float] = (MIN_RATING - 0.5, MAX_RATING + 0.5),
    ):
        super().__init__()
        # Half a star of room each side: 0.5 and 5 are reachable with finite inputs.
        self.y_range = y_range
        self.u, self.m = get_emb(n_users, n_factors), get_emb(n_movies, n_factors)
        self.lin1 = nn.Linear(n_factors * 2, nh)
        self.lin2 = nn.Linear(nh, 1)
        self.drop1, self.drop2 = nn.Dropout(p1), nn.Dropout(p2)

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        # The two rows side by side: (batch, 2 * n_factors).
        x = self.drop1(torch.cat([self.u(users), self.m(movies)], dim=1))
        x = self.drop2(torch.relu(self.lin1(x)))  # (batch, nh)
        return sigmoid_range(self.lin2(x).squeeze(1), *self.y_range)


MODELS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (EmbeddingDot, EmbeddingDotBias, EmbeddingNet)
}


def hparams(model: nn.Module) -> dict:
    """The constructor arguments that rebuild `model`, read off its layers (for saving a model)."""
    name = type(model).__name__
    if name not in MODELS:
        raise TypeError(f"not one of the lesson's models {sorted(MODELS)}: {name}")
    u, m = model.u, model.m
    out = dict(n_users=u.num_embeddings, n_movies=m.num_embeddings, n_factors=u.embedding_dim)
    if name != "EmbeddingDot":
        out["y_range"] = tuple(float(v) for v in model.y_range)
    if name == "EmbeddingNet":
        out.update(nh=model.lin1.out_features, p1=model.drop1.p, p2=model.drop2.p)
    return out
