"""Notebook 05's claims on the notebook's own values (2018 release); lesson5.compare against oracles."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _notebooks import run_notebook

from lesson5 import compare, models, optim, train
from lesson5 import data as D

ADAM_LIKE = ["Adam", "Adam + L2", "AdamW", "AdamW + restarts"]


@pytest.fixture(scope="module")
def nb05(ml2018):
    """Notebook 05's variables after its last cell (its own asserts pass on the way)."""
    return SimpleNamespace(**run_notebook("05"))


# ---------------------------------------------------------------- choosing the settings


def test_the_finder_lands_within_a_factor_of_2_of_the_grid_for_an_eighth_of_its_batches(nb05):
    for name, f in nb05.found.items():
        assert f.stopped == "end" and len(f.lrs) == 100, name
        ratios = [f.suggestion(m) / nb05.pick[name] for m in ("steepest", "min/10")]
        assert min(abs(math.log(r)) for r in ratios) < math.log(2), (name, ratios)
    assert (nb05.comparison["grid batches"] == 790).all()  # 5 runs of 2 epochs of 79 batches
    # SGD's rates are over a hundred times Adam's, by the grid and by the finder.
    for column in ("grid's best", "finder: steepest"):
        assert nb05.comparison[column]["SGD"] > 100 * nb05.comparison[column]["Adam"]


def test_every_choice_lies_inside_its_grid_and_both_ends_are_worse(nb05):
    for name, s in {**nb05.lr_grid, **nb05.wd_grid}.items():
        assert s.index[0] < s.idxmin() < s.index[-1], (name, s)
        assert s.iloc[0] > s.min() + 0.003, (name, s)
        assert np.isnan(s.iloc[-1]) or s.iloc[-1] > s.min() + 0.003, (name, s)


# ---------------------------------------------------------------- the race


def test_the_race_is_fair_and_uses_the_grids_choices(nb05):
    for name, r in nb05.runs.items():
        assert r["hist"].n_steps == nb05.EPOCHS * nb05.steps_per_epoch
        g = r["opt"].param_groups[0]
        assert g["lr"] == (nb05.pick["Adam"] if name.startswith("Adam") else nb05.pick[name])
        assert g["weight_decay"] == nb05.pick_wd.get(name.replace(" + restarts", ""), 0.0)


def test_the_orderings_the_prose_claims_hold_with_margin(nb05):
    final, train_loss, adam = nb05.final, nb05.train_loss, nb05.adam_epochs
    # The Adam-type optimizers drive the training loss far below either SGD's.
    assert train_loss[ADAM_LIKE].max() < train_loss[["SGD", "SGD + momentum"]].min() - 0.1
    # Plain Adam's validation error is lowest after the second epoch and rises after that.
    assert adam.idxmin() == 1 and adam.iloc[-1] > adam.min() + 0.01
    # Every decayed Adam ends better than plain Adam; Adam + L2 ends lowest of all.
    assert final[ADAM_LIKE[1:]].max() < final["Adam"] - 0.005
    assert final.idxmin() == "Adam + L2"
    assert final.drop("Adam + L2").min() > final["Adam + L2"] + 0.003
    assert 0.84 < final.min() and final.max() < 0.95  # and every run trained


def test_momentum_lines_up_successive_steps(nb05):
    cos, flips = nb05.cos, nb05.flips
    assert cos["SGD + momentum"] > 0.5 and cos["SGD + momentum"] > cos["SGD"] + 0.3
    assert flips["SGD + momentum"] < 0.5 * flips["SGD"]


def test_adam_gives_the_rare_movie_a_larger_rate_and_steps_stay_below_lr(nb05):
    # The notebook itself asserts that the update formula gives the last step's change.
    assert nb05.seldom > 5 * nb05.often
    assert max(nb05.big.values()) < nb05.lr


def test_l2_inside_adam_decays_popular_movies_less_and_adamw_decays_all_alike(nb05):
    # The notebook itself asserts that AdamW removes lr * wd from every factor.
    l2 = nb05.measured["Adam + L2"]
    l2_ok = l2[~np.isnan(l2)]
    assert np.quantile(l2_ok, 0.9) / np.quantile(l2_ok, 0.1) > 3
    assert nb05.rho < -0.5
    assert ((0 <= nb05.shrink["Adam + L2"]) & (nb05.shrink["Adam + L2"] <= 1)).all()
    by_popularity = nb05.by_popularity["Adam + L2"]
    assert by_popularity.iloc[0] > 5 * by_popularity.iloc[-1]
    assert by_popularity.is_monotonic_decreasing


def test_sgdr_restarts_once_after_the_first_epoch_then_runs_a_cycle_twice_as_long(nb05):
    lr_used, n, lr = nb05.lr_used, nb05.steps_per_epoch, nb05.lr_adam
    assert nb05.restarts.tolist() == [n]
    assert lr_used[0] == lr_used[n] == lr and len(lr_used) == 3 * n
    cosine = lr * (1 + np.cos(np.pi * np.arange(2 * n) / (2 * n))) / 2
    # Near the cycle's end 1 + cos cancels: a libm's last bit of cos is 1e-12 of the rate there.
    np.testing.assert_allclose(lr_used[n:], cosine, rtol=1e-12, atol=1e-15 * lr)


# ---------------------------------------------------------------- the instruments themselves


@pytest.fixture(scope="module")
def small():
    return D.synthetic(n_users=60, n_movies=80, n_ratings=3_000, seed=5)


def small_model(ds, seed=0):
    torch.manual_seed(seed)
    return models.EmbeddingDotBias(ds.n_users, ds.n_movies, 6, ds.rating_range)


def test_recorder_leaves_the_run_alone_measures_what_it_says_and_keeps_no_sgd_moments(small):
    movies = {"a": 3, "b": 7}
    plain, watched = small_model(small), small_model(small)

    def flat():
        return np.concatenate([p.detach().double().numpy().ravel() for p in watched.parameters()])

    snapshots, bias0 = [flat()], float(watched.mb.weight.detach()[5, 0])
    rec = compare.Recorder(watched, movies, bias_movie=5)

    def both(*args):
        rec(*args)
        snapshots.append(flat())

    opt_p, opt_w = optim.Adam(plain.parameters(), 0.01), optim.Adam(watched.parameters(), 0.01)
    kw = dict(bs=256, seed=1, device="cpu", progress=False)
    h1 = train.fit(plain, small, 2, opt_p, **kw)
    h2 = train.fit(watched, small, 2, opt_w, on_step=both, **kw)
    np.testing.assert_array_equal(h1.steps.loss.to_numpy(), h2.steps.loss.to_numpy())

    deltas = np.diff(np.vstack(snapshots), axis=0)
    norm = np.linalg.norm(deltas, axis=1)
    cosines = [a @ b / (na * nb) for a, b, na, nb in zip(deltas[1:], deltas, norm[1:], norm)]
    assert len(rec.cosines) == h2.n_steps - 1
    np.testing.assert_allclose(rec.cosines, cosines, rtol=1e-4, atol=1e-6)
    assert len(rec.bias_steps) == h2.n_steps
    bias1 = float(watched.mb.weight.detach()[5, 0])
    assert sum(rec.bias_steps) == pytest.approx(bias1 - bias0, abs=1e-5)
    for name, i in movies.items():
        rows = rec.rows[name]
        assert [r.step for r in rows] == list(range(1, h2.n_steps + 1))
        state = opt_w.state[watched.m.weight]
        torch.testing.assert_close(rows[-1].exp_avg_sq, state["exp_avg_sq"][i])
        torch.testing.assert_close(rows[-1].exp_avg, state["exp_avg"][i])
        torch.testing.assert_close(rows[-1].w, watched.m.weight.detach()[i])
    # With SGD it keeps no moments, and still the bias steps.
    model = small_model(small)
    rec = compare.Recorder(model, {"a": 0}, bias_movie=0)
    opt = optim.SGD(model.parameters(), 0.5, momentum=0.9)
    train.fit(model, small, 1, opt, bs=512, seed=0, device="cpu", progress=False, on_step=rec)
    assert rec.rows == {"a": []} and len(rec.bias_steps) == math.ceil(len(small.train_idx) / 512)


def test_sweep_is_fit_once_per_value_and_marks_a_divergence_nan(small):
    def dot_model():  # no sigmoid: a rate far too large blows the loss up
        torch.manual_seed(0)
        return models.EmbeddingDot(small.n_users, small.n_movies, 6)

    kw = dict(bs=256, seed=3, device="cpu")
    out = compare.sweep(dot_model, lambda p, v: optim.SGD(p, v), [0.5, 1e6], small, epochs=1, **kw)
    model = dot_model()
    direct = train.fit(model, small, 1, optim.SGD(model.parameters(), 0.5), progress=False, **kw)
    assert out.index.tolist() == [0.5, 1e6]
    assert out[0.5] == direct.epochs.valid_rmse.iloc[-1]
    assert np.isnan(out[1e6])
    with pytest.raises(train.DivergenceError):  # the NaN is a divergence, not a crash
        model = dot_model()
        train.fit(model, small, 1, optim.SGD(model.parameters(), 1e6), progress=False, **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.3),  # decoupled: w *= 1 - lr * wd
        lambda p: optim.SGD(p, lr=0.2, weight_decay=0.05),  # L2 in SGD: lr * wd * w more
        lambda p: optim.Adam(p, lr=0.01),  # no decay: nothing removed
    ],
    ids=["AdamW", "SGD + L2", "Adam"],
)
def test_decay_removes_lr_times_wd_where_the_closed_form_says_so(small, make, untouched):
    model = small_model(small)
    opt = make(model.parameters())
    train.fit(model, small, 1, opt, bs=256, seed=0, device="cpu", progress=False)
    check = untouched(model, opt)
    removed, g = compare.decay_removes(model, opt, small), opt.param_groups[0]
    w = model.m.weight.detach().numpy()
    assert removed.shape == w.shape and np.isnan(removed[np.abs(w) < 1e-3]).all()
    np.testing.assert_allclose(removed[np.abs(w) >= 1e-3], g["lr"] * g["weight_decay"], rtol=1e-3)
    check()  # the run it measured is untouched
