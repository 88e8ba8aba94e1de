"""The crosstab: the lesson's published 2016 output, the tie rule, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lesson5 import data
from lesson5.crosstab import (
    LESSON_MOVIES,
    LESSON_RATINGS,
    LESSON_USERS,
    CrosstabError,
    crosstab,
    rank_ids,
)


def test_2016_release_reproduces_the_lessons_crosstab(ml2016):
    """The lesson's published output, transcribed once in the package (notebook 01 checks it too)."""
    ct = crosstab(ml2016)
    assert ct.users.tolist() == list(LESSON_USERS)
    assert ct.movies.tolist() == list(LESSON_MOVIES)
    np.testing.assert_array_equal(ct.ratings, np.array(LESSON_RATINGS))
    assert ct.n_rated == int(np.isfinite(np.array(LESSON_RATINGS)).sum()) == 206
    # The tie the rule has to break: 1198 and 2858 both have 220 ratings, 15th place.
    counts = ml2016.ratings.groupby("movieId").size()
    assert counts[1198] == counts[2858] == 220
    assert (counts > 220).sum() == 14
    assert ct.titles[list(LESSON_MOVIES).index(2571)] == "Matrix, The (1999)"
    frame = ct.frame()
    assert frame.index.name == "userId" and frame.columns.name == "movieId"
    assert frame.loc[212, 608] != frame.loc[212, 608]  # NaN where unrated


def _stable_pandas_top(ratings: pd.DataFrame, column: str, n: int) -> list[int]:
    # An independent implementation of the rule: the lesson's pandas expression with a stable sort.
    g = ratings.groupby(column)["rating"].count()
    return sorted(g.sort_values(ascending=False, kind="stable")[:n].index.tolist())


@pytest.mark.parametrize("which", ["2018", "synthetic"])
def test_rule_agrees_with_a_stable_pandas_sort_and_values_with_pivot_table(which, request):
    ds = request.getfixturevalue("ml2018") if which == "2018" else data.load("synthetic")
    for n in (15, 40):
        ct = crosstab(ds, top_n=n)
        assert ct.users.tolist() == _stable_pandas_top(ds.ratings, "userId", n)
        assert ct.movies.tolist() == _stable_pandas_top(ds.ratings, "movieId", n)
        r = ds.ratings
        sub = r[r.userId.isin(ct.users) & r.movieId.isin(ct.movies)]
        pivot = sub.pivot_table(index="userId", columns="movieId", values="rating", aggfunc="sum")
        pivot = pivot.reindex(index=ct.users, columns=ct.movies)
        np.testing.assert_array_equal(ct.ratings, pivot.to_numpy(dtype=np.float64))
        long = ct.long()
        assert len(long) == ct.n_rated == len(sub)
        assert (long.rating.to_numpy() == ct.ratings[long.row, long.col]).all()


def test_tie_rule_on_a_hand_made_table():
    # Counts: id 9 -> 3, id 2 -> 2, id 7 -> 2, id 5 -> 2, id 1 -> 1.
    ids = np.array([7, 9, 5, 2, 9, 7, 1, 5, 9, 2])
    top, counts = rank_ids(ids, 3, "user")
    assert top.tolist() == [9, 2, 5] and counts.tolist() == [3, 2, 2]
    assert rank_ids(ids[::-1], 3, "user")[0].tolist() == [9, 2, 5]  # input order does not matter


def test_bad_input_gives_clear_errors():
    r = pd.DataFrame(dict(userId=[1, 1, 2, 3], movieId=[10, 11, 10, 12], rating=[4.0, 3, 5, 1]))
    # The most active user (1) never rated the most rated movie (9).
    disjoint = pd.DataFrame(dict(userId=[1, 1, 1, 2, 3, 4, 5], movieId=[1, 2, 3, 9, 9, 9, 9]))
    seven_users = pd.concat([r, r.assign(userId=[4, 5, 6, 7])])
    for ratings, n, pattern in (
        (r, 4, "top 4 users but the ratings hold only 3 users"),
        (seven_users, 5, "top 5 movies but the ratings hold only 3 movies"),
        (r.drop(columns="rating"), 2, r"lacks column\(s\) \['rating'\]"),
        (r, 0, "at least 1"),
        (disjoint.assign(rating=3.0), 1, "the top 1 users rated none of the top 1 movies"),
    ):
        with pytest.raises(CrosstabError, match=pattern):
            crosstab(ratings, top_n=n)
