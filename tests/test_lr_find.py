"""lesson5.lr_find against train.fit with the same geometric schedule; closed forms; smooth.EWMA."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from lesson5 import data as D
from lesson5 import models, optim, train
from lesson5.lr_find import lr_at, lr_find, min_over_10, steepest
from lesson5.smooth import EWMA


@pytest.fixture(scope="module")
def ds():
    return D.synthetic(n_users=120, n_movies=150, n_ratings=6_000, seed=4)


def fresh(ds, seed=0):
    torch.manual_seed(seed)
    return models.EmbeddingDotBias(ds.n_users, ds.n_movies, 8, ds.rating_range)


def test_same_losses_as_fit_with_the_same_schedule_and_batches(ds):
    """Oracle: train.fit with the geometric multiplier as sched draws the same batches and losses."""
    (u, m, y), valid = ds.tensors("train"), ds.tensors("valid")
    n, bs = 650, 64  # 11 batches per epoch, the last one 10 ratings: epoch boundaries must match
    part, steps, start, end = (u[:n], m[:n], y[:n]), 3 * math.ceil(n / bs), 1e-3, 0.5
    kw, find = dict(bs=bs, seed=3, device="cpu"), dict(start_lr=start, end_lr=end, num_it=steps)
    model_a = fresh(ds)
    opt_a = optim.SGD(model_a.parameters(), lr=0.7, momentum=0.9)  # the package's from-scratch SGD
    res = lr_find(model_a, part, opt_a, stop_div=False, **find, **kw)
    model_b = fresh(ds)
    opt_b = optim.SGD(model_b.parameters(), lr=start, momentum=0.9)
    sched = lambda s: (end / start) ** (s / steps)  # noqa: E731
    steps_df = train.fit(model_b, (part, valid), 3, opt_b, progress=False, sched=sched, **kw).steps
    assert len(res.lrs) == steps == len(steps_df)
    np.testing.assert_array_equal(res.losses, steps_df.loss.to_numpy())
    np.testing.assert_allclose(res.lrs, steps_df.lr.to_numpy(), rtol=1e-15)
    np.testing.assert_allclose(res.smooth, steps_df.smooth_loss.to_numpy(), rtol=1e-12)


def test_model_and_optimizer_are_restored(ds, untouched):
    model = fresh(ds)
    opt = torch.optim.Adam(train.param_groups(model, 0.1), lr=3e-3)
    train.fit(model, ds, 1, opt, bs=256, seed=0, device="cpu", progress=False)  # Adam's state
    twin_model, twin_opt = copy.deepcopy((model.eval(), opt))  # one copy: twin_opt steps twin_model
    check = untouched(model, opt)
    assert len(lr_find(model, ds, opt, start_lr=1e-5, end_lr=10.0, num_it=60, bs=128).lrs) > 5
    check()  # weights, moments, lr and decay per group
    assert not model.training  # its mode too
    # And training goes on exactly as if the range test had never run.
    h1 = train.fit(model, ds, 1, opt, bs=256, seed=1, device="cpu", progress=False)
    h2 = train.fit(twin_model, ds, 1, twin_opt, bs=256, seed=1, device="cpu", progress=False)
    np.testing.assert_array_equal(h1.steps.loss.to_numpy(), h2.steps.loss.to_numpy())


def test_geometric_rates_and_stopping_when_the_smoothed_loss_explodes(ds):
    model = fresh(ds)
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    res = lr_find(model, ds, sgd, start_lr=1e-3, end_lr=1e6, num_it=200)
    assert res.stopped == "diverged" and len(res.lrs) < 200
    best = np.minimum.accumulate(res.smooth[:-1])
    assert np.all(res.smooth[:-1] <= 4 * best)  # nothing before the last point tripped the rule
    last = res.smooth[-1]
    assert not np.isfinite(last) or last > 4 * best[-1]  # the last point did
    # Without stop_div it runs to the end unless the loss is not a number.
    res = lr_find(model, ds, sgd, start_lr=1e-3, end_lr=1e6, num_it=200, stop_div=False)
    ended = res.stopped == "end" and len(res.lrs) == 200
    assert ended or res.stopped == "diverged" and not np.isfinite(res.smooth[-1])
    # A quiet run goes to the end, its rates exactly geometric, its loss smoothed by smooth.EWMA.
    res = lr_find(model, ds, sgd, start_lr=1e-4, end_lr=1e-1, num_it=40, beta=0.9, stop_div=False)
    assert res.stopped == "end" and len(res.lrs) == 40
    i = np.arange(40)
    np.testing.assert_allclose(res.lrs, 1e-4 * 1000.0 ** (i / 40), rtol=1e-14)
    assert res.lrs[0] == 1e-4
    assert lr_at(40, 1e-4, 1e-1, 40) == pytest.approx(1e-1, rel=1e-14)
    ew = EWMA(0.9)
    np.testing.assert_array_equal(res.smooth, [ew.update(v) for v in res.losses])


def test_suggestions_on_closed_form_curves():
    x = np.linspace(-6, 0, 61)  # log10 of the rate, steps of 0.1
    lrs = 10.0**x
    # 1 - tanh falls fastest at -2.95, between grid points: the midpoint of -3.0 and -2.9.
    losses = 1 - np.tanh(3 * (x + 2.95))
    assert steepest(lrs, losses) == pytest.approx(10**-3.0, rel=1e-12)
    bowl = (x + 2.0) ** 2
    assert min_over_10(lrs, bowl) == pytest.approx(10**-3.0, rel=1e-12)
    # Skipped points are ignored: a fake minimum in the first ones does not count.
    bowl[:3] = -1
    assert min_over_10(lrs, bowl, skip_start=3) == pytest.approx(10**-3.0, rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(start_lr=1.0, end_lr=0.1), "start_lr=1.0, end_lr=0.1"),
    (dict(start_lr=float("nan")), "start_lr=nan"),
    (dict(start_lr=0.0), "start_lr=0.0"),
    (dict(num_it=1), "num_it=1"),
    (dict(bs=0), "bs=0"),
    (dict(start_lr=1e-3, end_lr=1.0, num_it=30), "method='valley'"),  # a bad suggestion method
])  # fmt: skip
def test_bad_arguments_are_refused(ds, kwargs, match):
    model = fresh(ds)
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(ValueError, match=match):
        lr_find(model, ds, sgd, **kwargs).suggestion("valley")


# ---------------------------------------------------------------- lesson5.smooth.EWMA
def test_ewma_is_the_normalised_weighted_sum_and_nan_before_the_first_value():
    assert math.isnan(EWMA().value)
    xs = np.random.default_rng(0).normal(size=200)
    ew = EWMA(0.98)
    for n in range(1, len(xs) + 1):
        w = 0.98 ** np.arange(n - 1, -1, -1)  # the newest value weighs 1, the oldest beta^(n-1)
        want = (w * xs[:n]).sum() / w.sum()
        assert ew.update(xs[n - 1]) == pytest.approx(want, rel=1e-10, abs=1e-13)
    # Debiased: a constant comes out from the first value on; beta 0 is the last value.
    assert EWMA(0.9).update(7.0) == pytest.approx(7.0, rel=1e-15)
    ew = EWMA()
    for _ in range(50):
        assert ew.update(3.25) == pytest.approx(3.25, rel=1e-14)
    ew = EWMA(0.0)
    ew.update(1.0)
    assert ew.update(5.0) == 5.0
    with pytest.raises(ValueError, match="beta"):
        EWMA(1.0)
