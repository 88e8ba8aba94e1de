"""lesson5.recipes: the lesson's cells as data, batch-size scaling in closed form, stages with set_lr."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lesson5 import data, recipes


def test_lesson_recipes_are_the_lessons_cells():
    dot, bias, net = (recipes.get(n) for n in ("lesson-dot", "lesson-bias", "lesson-net"))
    assert (dot.optimizer, dot.wd, dot.stages, dot.bs) == ("sgd", 1e-5, ((3, 0.1), (3, 0.01)), 64)
    assert (bias.optimizer, bias.wd, bias.stages) == ("sgd", 2e-4, ((3, 0.1), (3, 0.01)))
    assert (net.optimizer, net.wd, net.stages) == ("adam", 1e-5, ((3, 1e-3), (3, 1e-3)))
    model, opt = bias.build(10, 12)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["weight_decay"] == 2e-4 and len(opt.param_groups) == 1


def test_for_batch_size_keeps_decay_per_epoch():
    r = recipes.get("onecycle-bias")
    big = r.for_batch_size(4 * r.bs)
    ((epochs, lr),) = big.stages
    assert big.bs == 4 * r.bs and epochs == r.stages[0][0]
    assert math.isclose(lr, r.stages[0][1] * 2) and math.isclose(big.wd, r.wd * 2)
    # lr x wd x steps per epoch is unchanged (up to the last short batch).
    n = 80_000
    assert math.isclose(lr * big.wd * n / big.bs, r.stages[0][1] * r.wd * n / r.bs)
    assert r.for_batch_size(r.bs) is r
    sgd = recipes.get("lesson-bias").for_batch_size(256)
    assert sgd.wd == 2e-4 and sgd.stages == ((3, 0.2), (3, 0.02))  # coupled decay is left alone


def test_onecycle_recipe_decays_weights_not_biases():
    model, opt = recipes.get("onecycle-bias").build(10, 12)
    decayed, plain = opt.param_groups
    assert {id(p) for p in decayed["params"]} == {id(model.u.weight), id(model.m.weight)}
    assert {id(p) for p in plain["params"]} == {id(model.ub.weight), id(model.mb.weight)}
    assert (
        decayed["weight_decay"] == recipes.get("onecycle-bias").wd > 0
        and plain["weight_decay"] == 0.0
    )


def test_run_trains_stage_by_stage():
    d = data.synthetic(n_users=20, n_movies=25, n_ratings=300, seed=2)
    model, hist = recipes.get("lesson-bias").run(d, seed=1, progress=False, device="cpu")
    assert hist.epochs.lr.tolist() == [0.1] * 3 + [0.01] * 3
    with pytest.raises(KeyError, match="known: "):
        recipes.get("nope")


@pytest.mark.parametrize(
    "name, y_range",
    [("lesson-bias", (1.0, 5.0)), ("onecycle-net", (0.5, 5.5)), ("onecycle-bias", (1.0, 5.5))],
)
def test_the_models_rating_range_follows_the_data(name, y_range):
    d = data.synthetic(n_users=20, n_movies=25, n_ratings=300, seed=2)
    ratings = d.ratings.assign(rating=d.ratings.rating.clip(1.0, 5.0))  # a 1-to-5-star data set
    d15 = data.build(ratings, d.movies)
    assert d15.rating_range == (1.0, 5.0)
    recipe = dataclasses.replace(recipes.get(name), stages=((1, 1e-3),))
    model, _ = recipe.run(d15, progress=False, device="cpu")
    assert model.y_range == y_range
    default, _ = recipe.build(20, 25)  # without the data: the MovieLens defaults
    want = {"lesson-bias": (0.5, 5.0), "onecycle-net": (0.0, 5.5), "onecycle-bias": (0.5, 5.5)}
    assert default.y_range == want[name]
