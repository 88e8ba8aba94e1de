"""The Python Solver: its loss and gradient against float64 oracles, and what it fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lesson5.crosstab import crosstab
from lesson5.solver import Factors, fit, init_factors, loss_torch, predict, rmse


def _ratings(seed: int = 0, n_users: int = 7, n_movies: int = 6, p: float = 0.7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.round(rng.uniform(0.5, 5.0, (n_users, n_movies)) * 2) / 2
    r[rng.random(r.shape) > p] = np.nan
    return r


def _fd_grad(ratings: np.ndarray, f: Factors, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of the numpy RMSE, in float64, in the order of f.as_tensors()."""
    out = []
    for a in (f.user, f.movie, *((f.user_bias, f.movie_bias) if f.has_bias else ())):
        for i in np.ndindex(a.shape):
            x = a[i]
            a[i] = x + h
            up = rmse(ratings, f)
            a[i] = x - h
            out.append((up - rmse(ratings, f)) / (2 * h))
            a[i] = x
    return np.array(out)


def test_rmse_matches_the_definition_cell_by_cell():
    r = _ratings()
    f = init_factors(*r.shape, n_factors=3, bias=True, seed=3)
    errors = []
    for (i, j), x in np.ndenumerate(r):
        if not math.isnan(x):
            p = sum(f.user[i, k] * f.movie[j, k] for k in range(3)) + f.user_bias[i]
            errors.append((x - (p + f.movie_bias[j])) ** 2)
    assert math.isclose(rmse(r, f), math.sqrt(sum(errors) / len(errors)), rel_tol=1e-14)
    pred = predict(f, ~np.isnan(r))
    assert (pred[np.isnan(r)] == 0).all()  # the sheet's IF(blank, 0, ...)


@pytest.mark.parametrize("bias", [False, True])
def test_autograd_gradient_equals_float64_finite_differences(bias):
    r = _ratings(seed=1)
    f = init_factors(*r.shape, n_factors=3, bias=bias, seed=5)
    params = [p.requires_grad_() for p in f.as_tensors()]
    y, mask = torch.tensor(np.nan_to_num(r)), torch.tensor(~np.isnan(r))
    loss = loss_torch(params, y, mask)
    loss.backward()
    assert math.isclose(loss.item(), rmse(r, f), rel_tol=1e-14)
    auto = np.concatenate([p.grad.numpy().ravel() for p in params])
    np.testing.assert_allclose(auto, _fd_grad(r, f), rtol=1e-6, atol=1e-9)


def test_init_is_seeded_uniform_and_shared_between_sheets():
    a, b = init_factors(15, 15, seed=42), init_factors(15, 15, bias=True, seed=42)
    assert a.user.shape == (15, 5) and a.movie.shape == (15, 5) and not a.has_bias
    np.testing.assert_array_equal(a.user, b.user)  # same start for the dotprod and bias sheets
    np.testing.assert_array_equal(a.movie, b.movie)
    for x in (a.user, a.movie, b.user_bias, b.movie_bias):
        assert x.min() >= 0 and x.max() < 1
    assert not np.array_equal(init_factors(15, 15, seed=43).user, a.user)


def test_lbfgs_recovers_an_exact_low_rank_matrix():
    # Ratings that a rank-2 model explains exactly: the minimum RMSE is 0 (closed form).
    rng = np.random.default_rng(7)
    u, m = rng.random((8, 2)), rng.random((9, 2)) * 3
    r = u @ m.T
    r[rng.random(r.shape) > 0.85] = np.nan
    res = fit(r, init_factors(8, 9, n_factors=2, seed=0), max_iter=1500)
    assert res.rmse < 1e-6, res.rmse


@pytest.mark.parametrize("bias", [False, True])
def test_fit_on_the_lessons_crosstab_reaches_a_stationary_point(bias, ml2016):
    ct = crosstab(ml2016)
    f0 = init_factors(15, 15, bias=bias, seed=42)
    res = fit(ct.ratings, f0)
    h = np.array(res.history)
    assert h[0] == pytest.approx(rmse(ct.ratings, f0), rel=1e-14)
    assert (np.diff(h) <= 1e-15).all(), "L-BFGS with a strong-Wolfe line search never goes uphill"
    assert res.rmse == pytest.approx(h[-1], rel=1e-14)
    assert res.rmse == pytest.approx(rmse(ct.ratings, res.factors), rel=1e-14)  # numpy recomputes
    assert res.rmse < h[0] / 5 and res.converged
    # A minimum: every partial derivative of the numpy loss is ~0 there (float64 finite differences).
    assert np.abs(_fd_grad(ct.ratings, res.factors)).max() < 1e-5
    # The starting factors are not modified.
    np.testing.assert_array_equal(f0.user, init_factors(15, 15, bias=bias, seed=42).user)


def test_adam_also_descends_and_is_deterministic():
    r = _ratings(seed=2, n_users=10, n_movies=10)
    f0 = init_factors(10, 10, n_factors=3, seed=1)
    a, b = (fit(r, f0, method="adam", max_iter=300, lr=0.05) for _ in range(2))
    assert len(a.history) == 301 and a.history == b.history and not a.converged
    assert a.rmse < a.history[0] / 3
    np.testing.assert_array_equal(a.factors.user, b.factors.user)


def test_bad_input():
    f = init_factors(3, 4)
    with pytest.raises(ValueError, match=r"shape \(4, 4\).*3 users x 4 movies"):
        fit(np.ones((4, 4)), f)
    with pytest.raises(ValueError, match="no rating"):
        fit(np.full((3, 4), np.nan), f)
    with pytest.raises(ValueError, match="unknown method 'sgd'"):
        fit(np.ones((3, 4)), f, method="sgd")
