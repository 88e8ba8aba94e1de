"""The lesson's Excel subset: the most active users x the most rated movies, ratings inside.

Notebook 01.

Tie rule: rank by number of ratings, ties to the smaller id, as the lesson's `sort_values` did in
2018 (today's unstable sort picks movie 2858 over 1198, both 220 ratings, on the 2016 release).
Rows and columns then show in ascending id order, as `pd.crosstab` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lesson5.data import Ratings

_N = np.nan
# What the lesson printed: `pd.crosstab(top_r.userId, top_r.movieId, top_r.rating, aggfunc=np.sum)` in the
# course notebook (fastai/fastai, courses/dl1/lesson5-movielens.ipynb, cell 5), run on the 2016 release.
# A transcription of a published output, kept to check the 2016 reproduction against (notebook 01).
LESSON_USERS = (15, 30, 73, 212, 213, 294, 311, 380, 452, 468, 509, 547, 564, 580, 624)
LESSON_MOVIES = (1, 110, 260, 296, 318, 356, 480, 527, 589, 593, 608, 1196, 1198, 1270, 2571)
LESSON_RATINGS = (
    (2.0, 3.0, 5.0, 5.0, 2.0, 1.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0, 4.0, 5.0, 5.0),
    (4.0, 5.0, 4.0, 5.0, 5.0, 5.0, 4.0, 5.0, 4.0, 4.0, 5.0, 4.0, 5.0, 5.0, 3.0),
    (5.0, 4.0, 4.5, 5.0, 5.0, 5.0, 4.0, 5.0, 3.0, 4.5, 4.0, 5.0, 5.0, 5.0, 4.5),
    (3.0, 5.0, 4.0, 4.0, 4.5, 4.0, 3.0, 5.0, 3.0, 4.0, _N, _N, 3.0, 3.0, 5.0),
    (3.0, 2.5, 5.0, _N, _N, 2.0, 5.0, _N, 4.0, 2.5, 2.0, 5.0, 3.0, 3.0, 4.0),
    (4.0, 3.0, 4.0, _N, 3.0, 4.0, 4.0, 4.0, 3.0, _N, _N, 4.0, 4.5, 4.0, 4.5),
    (3.0, 3.0, 4.0, 3.0, 4.5, 5.0, 4.5, 5.0, 4.5, 2.0, 4.0, 3.0, 4.5, 4.5, 4.0),
    (4.0, 5.0, 4.0, 5.0, 4.0, 5.0, 4.0, _N, 4.0, 5.0, 4.0, 4.0, _N, 3.0, 5.0),
    (3.5, 4.0, 4.0, 5.0, 5.0, 4.0, 5.0, 4.0, 4.0, 5.0, 5.0, 4.0, 4.0, 4.0, 2.0),
    (4.0, 3.0, 3.5, 3.5, 3.5, 3.0, 2.5, _N, _N, 3.0, 4.0, 3.0, 3.5, 3.0, 3.0),
    (3.0, 5.0, 5.0, 5.0, 4.0, 4.0, 3.0, 5.0, 2.0, 4.0, 4.5, 5.0, 5.0, 3.0, 4.5),
    (3.5, _N, _N, 5.0, 5.0, 2.0, 3.0, 5.0, _N, 5.0, 5.0, 2.5, 2.0, 3.5, 3.5),
    (4.0, 1.0, 2.0, 5.0, _N, 3.0, 5.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 3.0, 3.0),
    (4.0, 4.5, 4.0, 4.5, 4.0, 3.5, 3.0, 4.0, 4.5, 4.0, 4.5, 4.0, 3.5, 3.0, 4.5),
    (5.0, _N, 5.0, 5.0, _N, 3.0, 3.0, _N, 3.0, 5.0, 4.0, 5.0, 5.0, 5.0, 2.0),
)


class CrosstabError(ValueError):
    """The ratings cannot give the requested crosstab (too few users or movies, no ratings)."""


@dataclass(frozen=True)
class Crosstab:
    """Ratings of `users` (rows) x `movies` (columns), NaN where unrated; ids in ascending order."""

    users: np.ndarray
    movies: np.ndarray
    ratings: np.ndarray
    titles: tuple[str, ...]
    user_counts: np.ndarray
    movie_counts: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return ~np.isnan(self.ratings)

    @property
    def n_rated(self) -> int:
        return int(self.mask.sum())

    def frame(self) -> pd.DataFrame:
        """The crosstab as a DataFrame (index userId, columns movieId), like the lesson's `pd.crosstab`."""
        users, movies = pd.Index(self.users, name="userId"), pd.Index(self.movies, name="movieId")
        return pd.DataFrame(self.ratings, index=users, columns=movies)

    def long(self) -> pd.DataFrame:
        """One row per rating (userId, movieId, rating, row, col), ordered by user then movie."""
        rows, cols = np.nonzero(self.mask)
        ids = dict(userId=self.users[rows], movieId=self.movies[cols])
        return pd.DataFrame(dict(**ids, rating=self.ratings[rows, cols], row=rows, col=cols))


def rank_ids(ids: np.ndarray, top_n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, counts) of the `top_n` most frequent values: count descending, then id ascending."""
    values, counts = np.unique(np.asarray(ids), return_counts=True)  # ids ascending
    if len(values) < top_n:
        raise CrosstabError(
            f"asked for the top {top_n} {what}s but the ratings hold only {len(values)} {what}s"
        )
    order = np.lexsort((values, -counts))  # last key is primary: count descending, then id
    keep = order[:top_n]
    return values[keep], counts[keep]


def crosstab(
    data: Ratings | pd.DataFrame, top_n: int = 15, movies: pd.DataFrame | None = None
) -> Crosstab:
    """The top `top_n` users x top `top_n` movies by number of ratings, with the tie rule above."""
    if top_n < 1:
        raise CrosstabError(f"top_n must be at least 1, got {top_n}")
    if isinstance(data, Ratings):
        ratings, movies = data.ratings, data.movies if movies is None else movies
    else:
        ratings = data
    if missing := [c for c in ("userId", "movieId", "rating") if c not in ratings.columns]:
        raise CrosstabError(
            f"the ratings table lacks column(s) {missing}; found {list(ratings.columns)}"
        )
    users, user_counts = rank_ids(ratings.userId.to_numpy(), top_n, "user")
    movie_ids, movie_counts = rank_ids(ratings.movieId.to_numpy(), top_n, "movie")
    u_order, m_order = np.argsort(users), np.argsort(movie_ids)
    users, user_counts = users[u_order], user_counts[u_order]
    movie_ids, movie_counts = movie_ids[m_order], movie_counts[m_order]
    grid = np.full((top_n, top_n), np.nan)
    sub = ratings[ratings.userId.isin(users) & ratings.movieId.isin(movie_ids)]
    rows = np.searchsorted(users, sub.userId.to_numpy())
    cols = np.searchsorted(movie_ids, sub.movieId.to_numpy())
    grid[rows, cols] = sub.rating.to_numpy(dtype=np.float64)
    if np.isnan(grid).all():
        raise CrosstabError(f"the top {top_n} users rated none of the top {top_n} movies")
    titles = dict(zip(movies.movieId, movies.title)) if movies is not None else {}
    names = tuple(str(titles.get(m, f"movie {m}")) for m in movie_ids)
    return Crosstab(users, movie_ids, grid, names, user_counts, movie_counts)
