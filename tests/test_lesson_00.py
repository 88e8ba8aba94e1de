"""The numbers notebook 00 shows and its prose reads (release counts and the split: test_data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lesson5 import data


def test_2018_matrix_is_sparse_and_its_summary_says_so(ml2018):
    density = len(ml2018.ratings) / (ml2018.n_users * ml2018.n_movies)
    assert density < 0.02  # "under 2% full"
    assert f"density: {density:.2%}" in data.summary(ml2018)


def test_2018_ratings_lean_high_and_whole_stars_dominate(ml2018):
    counts = ml2018.ratings.rating.value_counts()
    assert counts.idxmax() == 4.0 and counts.drop(4.0).idxmax() == 3.0  # 4 most common, then 3
    whole = counts[counts.index % 1 == 0].sum()
    half = counts[counts.index % 1 != 0].sum()
    assert whole > 2 * half
    assert 3.0 < ml2018.ratings.rating.mean() < 4.0  # "people rate around 3.5"


def test_2018_activity_is_skewed_differently_for_users_and_movies(ml2018):
    per_user = ml2018.ratings.groupby("userId").size()
    per_movie = ml2018.ratings.groupby("movieId").size()
    # Every user has at least 20 ratings (GroupLens's sampling rule), the busiest thousands.
    assert per_user.min() == 20 and per_user.max() > 1_000
    assert 20 < per_user.median() < 100  # "a few dozen"
    # The median movie has 3 ratings, about a third have one, the most rated a few hundred.
    assert per_movie.median() == 3 and per_movie.max() == 329
    assert 0.3 < (per_movie == 1).mean() < 0.4


@pytest.mark.parametrize("which", ["2018", "synthetic"])
def test_the_notebooks_split_check_holds_on_the_data_it_loads(which, request):
    ds = request.getfixturevalue("ml2018") if which == "2018" else data.load("synthetic")
    n = len(ds.ratings)
    # The notebook's np.random.seed(42); np.random.permutation(n): the same draw, no global state.
    lesson_pick = np.random.RandomState(42).permutation(n)[: int(0.2 * n)]
    np.testing.assert_array_equal(ds.valid_idx, lesson_pick)
    assert len(ds.train_idx) + len(ds.valid_idx) == n
