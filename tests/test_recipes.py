"""lesson5.recipes: the lesson's cells as data, batch-size scaling in closed form, stages with set_lr."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from lesson5 import data, recipes, schedules


@pytest.fixture(scope="module")
def d():
    return data.synthetic(n_users=20, n_movies=25, n_ratings=300, seed=2)


def test_lesson_recipes_are_the_lessons_cells_and_run_stage_by_stage(d):
    dot, bias, net = (recipes.get(n) for n in ("lesson-dot", "lesson-bias", "lesson-net"))
    assert (dot.optimizer, dot.wd, dot.stages, dot.bs) == ("sgd", 1e-5, ((3, 0.1), (3, 0.01)), 64)
    assert (bias.optimizer, bias.wd, bias.stages) == ("sgd", 2e-4, ((3, 0.1), (3, 0.01)))
    assert (net.optimizer, net.wd, net.stages) == ("adam", 1e-5, ((3, 1e-3), (3, 1e-3)))
    learner = recipes.get("lesson-learner")  # fastai 0.7's get_learner, y_range the data's
    fields = (learner.model, learner.optimizer, learner.wd, learner.stages, learner.bs)
    assert fields == ("EmbeddingDotBias", "adam", 2e-4, ((3, 1e-2),), 64)
    assert learner.sched == schedules.CosineRestarts(cycle_len=1, cycle_mult=2)
    assert learner.y_range((0.5, 5.0)) == (0.5, 5.0) and learner.decay_biases
    model, opt = bias.build(10, 12)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["weight_decay"] == 2e-4 and len(opt.param_groups) == 1
    model, hist = bias.run(d, seed=1, progress=False, device="cpu")
    assert hist.epochs.lr.tolist() == [0.1] * 3 + [0.01] * 3
    with pytest.raises(KeyError, match="known: "):
        recipes.get("nope")
    model, opt = recipes.get("onecycle-bias").build(10, 12)  # decays weights, not biases
    decayed, plain = opt.param_groups
    assert {id(p) for p in decayed["params"]} == {id(model.u.weight), id(model.m.weight)}
    assert {id(p) for p in plain["params"]} == {id(model.ub.weight), id(model.mb.weight)}
    assert decayed["weight_decay"] == recipes.get("onecycle-bias").wd > 0 == plain["weight_decay"]


def test_for_batch_size_keeps_decay_per_epoch():
    r = recipes.get("onecycle-bias")
    big = r.for_batch_size(4 * r.bs)
    ((epochs, lr),) = big.stages
    assert big.bs == 4 * r.bs and epochs == r.stages[0][0]
    # Twice each at 4x the batch: lr x wd x steps per epoch is unchanged (but for a short batch).
    assert math.isclose(lr, r.stages[0][1] * 2) and math.isclose(big.wd, r.wd * 2)
    assert r.for_batch_size(r.bs) is r
    sgd = recipes.get("lesson-bias").for_batch_size(256)
    assert sgd.wd == 2e-4 and sgd.stages == ((3, 0.2), (3, 0.02))  # coupled decay is left alone


@pytest.mark.parametrize(
    "name, y_range",
    [("lesson-bias", (1.0, 5.0)), ("onecycle-net", (0.5, 5.5)), ("onecycle-bias", (1.0, 5.5))],
)
def test_the_models_rating_range_follows_the_data(d, name, y_range):
    ratings = d.ratings.assign(rating=d.ratings.rating.clip(1.0, 5.0))  # a 1-to-5-star data set
    d15 = data.build(ratings, d.movies)
    assert d15.rating_range == (1.0, 5.0)
    recipe = dataclasses.replace(recipes.get(name), stages=((1, 1e-3),))
    model, _ = recipe.run(d15, progress=False, device="cpu")
    assert model.y_range == y_range
    default, _ = recipe.build(20, 25)  # without the data: the MovieLens defaults
    want = {"lesson-bias": (0.5, 5.0), "onecycle-net": (0.0, 5.5), "onecycle-bias": (0.5, 5.5)}
    assert default.y_range == want[name]


def test_run_once_trains_once_and_loads_the_same_model(d, tmp_path):
    recipe = dataclasses.replace(recipes.get("onecycle-bias"), stages=((2, 3e-3),))
    kw = dict(folder=tmp_path, progress=False, device="cpu")
    state = torch.random.get_rng_state()
    first, h1 = recipe.run_once(d, **kw)
    assert torch.equal(torch.random.get_rng_state(), state)  # trained or loaded: generator as found
    (saved,) = tmp_path.glob("*.pt")
    stamp = saved.stat().st_mtime_ns
    again, h2 = recipe.run_once(d, **kw)
    assert saved.stat().st_mtime_ns == stamp  # loaded, not trained and saved again
    fresh, _ = recipe.run(d, progress=False, device="cpu")
    for a, b, c in zip(*(m.state_dict().values() for m in (first, again, fresh))):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert h1.epochs.equals(h2.epochs) and h1.steps.equals(h2.steps)
    # Another seed or other data is another model; a damaged file is trained afresh.
    recipe.run_once(d, seed=1, **kw)
    recipe.run_once(data.synthetic(n_users=20, n_movies=25, n_ratings=300, seed=3), **kw)
    assert len(list(tmp_path.glob("*.pt"))) == 3
    saved.write_bytes(b"not a model")
    model, _ = recipe.run_once(d, **kw)
    assert torch.equal(model.u.weight, first.u.weight) and saved.stat().st_size > 100
    blocker = tmp_path / "file"  # and without a writable cache it still trains
    blocker.write_text("a file where the cache folder would be")
    model, hist = recipe.run_once(d, **{**kw, "folder": blocker / "models"})
    assert hist.n_epochs == 2 and blocker.read_text().startswith("a file")


def test_run_once_called_twice_at_once_trains_once(d, tmp_path, monkeypatch):
    recipe = dataclasses.replace(recipes.get("lesson-bias"), stages=((1, 0.1),))
    calls, run = [], recipes.Recipe.run
    monkeypatch.setattr(recipes.Recipe, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    kw = dict(folder=tmp_path, progress=False, device="cpu")
    with ThreadPoolExecutor(2) as pool:  # the second call starts while the first one trains
        results = list(pool.map(lambda _: recipe.run_once(d, **kw), range(2)))
    assert len(calls) == 1 and len(results) == 2
    assert torch.equal(results[0][0].u.weight, results[1][0].u.weight)
