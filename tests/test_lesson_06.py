"""Notebook 06's claims on the notebook's own values (2018 release): its `onecycle-bias` model, the
recipe without weight decay and without 50 held-out users, with the notebook's seeds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _notebooks import run_notebook
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lesson5 import recipes


@pytest.fixture(scope="module")
def nb06(ml2018):
    """Notebook 06's variables after its last cell (its own asserts pass on the way)."""
    return SimpleNamespace(**run_notebook("06"))


def test_without_weight_decay_the_model_memorises(nb06):
    assert nb06.recipe == recipes.get("onecycle-bias")  # its target: tests/test_lesson_03.py
    assert nb06.model.u.weight.shape[1] == 50 and nb06.recipe.wd > 0
    assert (nb06.recipe.epochs, nb06.recipe.bs) == (5, 256)
    e, e0 = nb06.hist.epochs, nb06.hist_0.epochs
    assert e0.train_loss.iloc[-1] < e.train_loss.iloc[-1] - 0.05  # fits the training set better
    assert e0.valid_rmse.iloc[-1] > e.valid_rmse.iloc[-1] + 0.01  # and the rest worse
    assert e0.valid_rmse.iloc[-1] > e0.valid_rmse.min() + 0.005  # rising after its best epoch
    decay, none = nb06.norm_table.iloc[:, 0], nb06.norm_table["no weight decay"]
    assert len(nb06.norm_table) == 5 and (none > 1.3 * decay).all(), nb06.norm_table
    counts = nb06.counts
    assert nb06.n_params > len(nb06.ds.train_idx) and np.median(counts[counts > 0]) <= 5


def test_the_bias_follows_the_mean_rating_and_the_raters_bias_explains_more(nb06):
    biases = nb06.biases
    assert len(biases) == 1000
    assert (np.sign(biases.bias) == np.sign(biases.bias_stars)).all()
    assert biases.bias.corr(biases.mean_rating) > 0.7
    assert nb06.r2_both > nb06.r2_bias + 0.01 and nb06.coef[2] > 0


def test_the_components_follow_rating_popularity_and_year(nb06):
    pcs, p, both, reading = nb06.pcs, nb06.p, nb06.both, nb06.reading
    assert len(pcs) == 1500
    assert p.explained_ratio[0] > p.explained_ratio[1] >= p.explained_ratio[2]
    want = {"PC1": "mean_rating", "PC2": "log ratings", "PC3": "year"}
    assert reading.strongest.to_dict() == want, reading
    assert reading.loc["PC1", "mean_rating"] > 0.5
    assert reading.loc["PC2", "log ratings"] > 0.2 and reading.loc["PC3", "year"] > 0.2
    # The medians the notebook prints of the 50 movies at each end: PC2 by ratings, PC3 by year.
    low2, high2 = both.nsmallest(50, "PC2"), both.nlargest(50, "PC2")
    low3, high3 = both.nsmallest(50, "PC3"), both.nlargest(50, "PC3")
    assert high2.n_ratings.median() > 1.3 * low2.n_ratings.median()
    assert high3.year.median() > low3.year.median() + 5


def test_the_pca_scatter_shows_whole_titles_that_do_not_overlap(nb06):
    """The notebook's own labelled scatter: at most 2 titles hidden, none of the rest overlap."""
    texts = nb06.texts
    assert [t.get_text() for t in texts] == nb06.labelled.title.tolist()
    visible = [t for t in texts if t.get_visible()]
    assert len(visible) >= len(texts) - 2
    renderer = FigureCanvasAgg(nb06.fig).get_renderer()  # a fresh one: the figure as saved
    boxes = [t.get_window_extent(renderer) for t in visible]
    pairs = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not pairs, [(visible[i].get_text(), visible[j].get_text()) for i, j in pairs]


def test_toy_storys_nearest_movies_are_mostly_animated(nb06):
    assert nb06.anchor == 1 and nb06.ds.title(nb06.anchor) == "Toy Story (1995)"
    assert len(nb06.near) == 10
    assert nb06.animated >= 0.5 and nb06.animated > 5 * nb06.overall


def test_the_fan_loves_science_fiction_and_dislikes_romances(nb06):
    fan_table = nb06.fan_table
    loved, hated = fan_table[fan_table.rating >= 4.5], fan_table[fan_table.rating <= 1.5]
    assert len(fan_table) == 12 and len(loved) == 7 and len(hated) == 5
    assert loved.genres.str.contains("Sci-Fi").all()
    assert hated.genres.str.contains("Romance").all()


def test_the_fold_in_follows_acclaim_not_science_fiction(nb06):
    corr_pc1 = nb06.corr_pc1
    assert nb06.fan.factors.numel() + 1 == 51
    assert nb06.err_fan < nb06.err_avg
    assert corr_pc1 > 0.5 and abs(nb06.corr_scifi) < 0.5 * corr_pc1, (corr_pc1, nb06.corr_scifi)
    # A prior 100 times weaker fits the twelve ratings far better, and still not science fiction.
    assert nb06.err_loose < 0.5 * nb06.err_fan
    assert abs(nb06.corr_scifi_loose) < 0.5 * corr_pc1


def test_folding_in_beats_the_fallback_on_50_held_out_users(nb06):
    check = nb06.check
    assert len(nb06.held) == 50 and all(c["users"] == 50 for c in check.values())
    assert all(c["fold_in"] < c["fallback"] for c in check.values()), check
    assert check[20]["fold_in"] < check[10]["fold_in"] < check[3]["fold_in"], check
