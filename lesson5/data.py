"""The data a model trains on: MovieLens ratings with ids encoded and the lesson's split.

Notebook 00.

Users and movies are numbered in order of first appearance.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lesson5 import read
from lesson5.download import DataError as DataError  # every data error, whichever room raised it
from lesson5.download import shown
from lesson5.read import MAX_RATING, MIN_RATING

if TYPE_CHECKING:  # torch is imported only when tensors are asked for
    import torch


class ArgumentError(ValueError):
    """Raised for an argument outside what it may be; the message names the argument and its value."""


@dataclass(frozen=True)
class IdMap:
    """Raw ids <-> contiguous indices 0..n-1, in order of first appearance."""

    name: str
    ids: np.ndarray

    @classmethod
    def from_values(cls, name: str, values: Iterable[int]) -> IdMap:
        """Index the distinct values in order of first appearance, as the lesson's `unique()` does."""
        return cls(name, pd.unique(np.asarray(values)))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    def encode(self, raw: Iterable[int] | int) -> np.ndarray:
        """Indices of raw ids; an id never seen raises KeyError naming it."""
        arr = np.atleast_1d(np.asarray(raw))
        idx = self._index.get_indexer(arr)
        if (idx < 0).any():
            bad = arr[int(np.argmax(idx < 0))].item()
            raise KeyError(
                f"unknown {self.name} {bad!r}: it is not among the {len(self)} {self.name}s seen in training"
            )
        return idx

    def decode(self, idx: Iterable[int] | int) -> np.ndarray:
        """Raw ids of indices; an index out of range raises IndexError naming it."""
        arr = np.atleast_1d(np.asarray(idx))
        bad = (arr < 0) | (arr >= len(self))
        if bad.any():
            raise IndexError(
                f"{self.name} index {arr[int(np.argmax(bad))].item()} is out of range 0..{len(self) - 1}"
            )
        return self.ids[arr]


def _check_valid_pct(valid_pct: float) -> None:
    # `not 0 < x < 1` also refuses nan, which every comparison fails.
    if not isinstance(valid_pct, (int, float, np.number)) or not 0 < valid_pct < 1:
        raise ArgumentError(
            f"valid_pct={valid_pct!r}: the validation share must be between 0 and 1 (e.g. 0.2)"
        )


def split_indices(n: int, valid_pct: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) row indices: valid is exactly the lesson's `get_cv_idxs(n)` pick."""
    _check_valid_pct(valid_pct)
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ArgumentError(f"seed={seed!r}: a seed is a whole number from 0 to 2**32 - 1")
    # get_cv_idxs: `np.random.seed(seed); np.random.permutation(n)[:int(valid_pct * n)]`; a
    # private RandomState draws the same legacy MT19937 numbers without the global state.
    valid = np.random.RandomState(seed).permutation(n)[: int(valid_pct * n)]
    mask = np.ones(n, dtype=bool)
    mask[valid] = False
    return np.flatnonzero(mask), valid


@dataclass
class Ratings:
    """Everything a model needs: the raw table, titles, id maps, encoded indices and the split."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    users_map: IdMap
    movies_map: IdMap
    train_idx: np.ndarray
    valid_idx: np.ndarray
    source: str = ""
    truth: dict = field(default_factory=dict)

    @cached_property
    def user_idx(self) -> np.ndarray:
        return self.users_map.encode(self.ratings.userId.to_numpy())

    @cached_property
    def movie_idx(self) -> np.ndarray:
        return self.movies_map.encode(self.ratings.movieId.to_numpy())

    @property
    def n_users(self) -> int:
        return len(self.users_map)

    @property
    def n_movies(self) -> int:
        return len(self.movies_map)

    @property
    def rating_range(self) -> tuple[float, float]:
        return float(self.ratings.rating.min()), float(self.ratings.rating.max())

    def title(self, movie_id: int) -> str:
        """The title of a raw movie id ('movie <id>' when the titles table lacks it)."""
        hit = self.movies.loc[self.movies.movieId == movie_id, "title"]
        return str(hit.iloc[0]) if len(hit) else f"movie {movie_id}"

    def tensors(
        self, part: str, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(users, movies, ratings) tensors of the 'train', 'valid' or 'all' rows, on `device`."""
        import torch

        rows = {"train": self.train_idx, "valid": self.valid_idx, "all": slice(None)}[part]
        u = torch.tensor(self.user_idx[rows], dtype=torch.long, device=device)
        m = torch.tensor(self.movie_idx[rows], dtype=torch.long, device=device)
        y = torch.tensor(self.ratings.rating.to_numpy()[rows], dtype=torch.float32, device=device)
        return u, m, y


def build(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    *,
    valid_pct: float = 0.2,
    seed: int = 42,
    source: str = "",
    truth: dict | None = None,
) -> Ratings:
    """Index ids in order of first appearance and split off the lesson's validation rows."""
    ratings = ratings.reset_index(drop=True)
    train, valid = split_indices(len(ratings), valid_pct, seed)
    maps = (IdMap.from_values(c, ratings[c]) for c in ("userId", "movieId"))
    return Ratings(ratings, movies, *maps, train, valid, source, truth or {})


def load(
    source: str | os.PathLike | None = None, *, valid_pct: float = 0.2, seed: int = 42
) -> Ratings:
    """Load MovieLens (fetched, or from a zip/folder/ratings.csv) ready for training.

    `source`: also "synthetic"; None: `$LESSON5_DATA` decides ("synthetic", a MovieLens zip,
    folder or ratings.csv, or the folder the zip is cached in; `lesson5 run --data X` sets it).
    """
    if source is None:
        source = _source_from_env()
    if isinstance(source, str) and source == "synthetic":
        return synthetic()
    _check_valid_pct(valid_pct)
    ratings, movies, path = read.movielens(source)
    return build(ratings, movies, valid_pct=valid_pct, seed=seed, source=str(path))


def _source_from_env() -> str | Path | None:
    """What $LESSON5_DATA names when it is not a cache folder: "synthetic" or a MovieLens copy."""
    setting = os.environ.get("LESSON5_DATA", "").strip()
    if setting == "synthetic":
        return setting
    path = Path(setting).expanduser()
    ratings = (path / name for name in read.file_names("ratings"))  # any release's layout
    if setting and (path.is_file() or any(p.is_file() for p in ratings)):
        return path
    return None  # the cache folder (or none set): read.movielens fetches into it


def synthetic(
    n_users: int = 300,
    n_movies: int = 500,
    n_ratings: int = 20_000,
    n_factors: int = 5,
    noise: float = 0.3,
    seed: int = 0,
    *,
    valid_pct: float = 0.2,
) -> Ratings:
    """Ratings with planted structure: mean + user bias + movie bias + user·movie factors + noise.

    MovieLens's schema (sparse raw ids, skewed popularity, half stars in [0.5, 5]); truth in `.truth`.
    """
    _check_valid_pct(valid_pct)
    if n_ratings > n_users * n_movies:
        raise ValueError(f"n_ratings={n_ratings} exceeds n_users * n_movies = {n_users * n_movies}")
    rng = np.random.default_rng(seed)
    user_f = rng.normal(0, 1 / np.sqrt(n_factors), (n_users, n_factors))
    movie_f = rng.normal(0, 1 / np.sqrt(n_factors), (n_movies, n_factors))
    user_b = rng.normal(0, 0.35, n_users)
    movie_b = rng.normal(0, 0.45, n_movies)
    mean = 3.5
    # Skewed activity and popularity, as in MovieLens: a few users and movies have most ratings.
    pu = rng.pareto(1.5, n_users) + 1
    pm = rng.pareto(1.2, n_movies) + 1
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < n_ratings:
        k = 2 * (n_ratings - len(codes)) + 16
        users = rng.choice(n_users, k, p=pu / pu.sum())
        draw = users * n_movies + rng.choice(n_movies, k, p=pm / pm.sum())
        codes = np.concatenate([codes, draw])
        _, first = np.unique(codes, return_index=True)
        codes = codes[np.sort(first)]  # drop repeated pairs, keep order of drawing
    codes = codes[:n_ratings]
    u, m = codes // n_movies, codes % n_movies
    clean = mean + user_b[u] + movie_b[m] + (user_f[u] * movie_f[m]).sum(1) * 1.5
    noisy = clean + rng.normal(0, noise, len(u))
    y = np.clip(np.round(noisy * 2) / 2, MIN_RATING, MAX_RATING).astype(np.float32)
    user_ids = 1 + 3 * np.arange(n_users)  # deliberately not 0..n-1
    movie_ids = 10 + 7 * np.arange(n_movies)
    stamps = 1_500_000_000 + rng.integers(0, 10**7, len(u))
    ratings = pd.DataFrame(
        dict(userId=user_ids[u], movieId=movie_ids[m], rating=y, timestamp=stamps)
    )
    titles = [f"Synthetic movie {i} (2000)" for i in movie_ids]
    movies = pd.DataFrame({"movieId": movie_ids, "title": titles, "genres": "(no genres listed)"})
    truth = dict(user_factors=user_f, movie_factors=movie_f, user_bias=user_b, movie_bias=movie_b)
    truth.update(mean=mean, noise=noise, user_ids=user_ids, movie_ids=movie_ids)
    return build(ratings, movies, valid_pct=valid_pct, seed=42, source="synthetic", truth=truth)


def summary(data: Ratings) -> str:
    """A short text summary: counts, sparsity and a histogram of ratings (`lesson5 data`)."""
    r = data.ratings
    lines = [
        f"source:  {shown(data.source)}",
        f"ratings: {len(r):,}",
        f"users:   {data.n_users:,}",
        f"movies:  {data.n_movies:,} rated ({len(data.movies):,} with titles)",
        f"density: {len(r) / (data.n_users * data.n_movies):.2%} of the user x movie matrix",
        f"split:   {len(data.train_idx):,} train / {len(data.valid_idx):,} valid (seed 42)",
        f"mean rating: {r.rating.mean():.3f}",
        "rating histogram:",
    ]
    counts = r.rating.value_counts().sort_index()
    width = 40 / counts.max()
    for value, count in counts.items():
        lines.append(f"  {value:3.1f} {count:7,d} {'#' * max(1, round(count * width))}")
    return "\n".join(lines)
