"""The numbers notebook 01 shows and its prose reads; its crosstab, seeded start and workbook
formulas are checked in test_crosstab.py, test_solver.py and test_excel_collab.py."""

from __future__ import annotations

import numpy as np
import pytest

from lesson5.crosstab import crosstab
from lesson5.excel import collab
from lesson5.solver import fit, init_factors, predict


@pytest.fixture(scope="module")
def export2018(ml2018, tmp_path_factory):
    """What the notebook runs: the 2018 crosstab's two workbooks and their Solver fits, seed 42."""
    ct = crosstab(ml2018, top_n=15)
    return ct, collab.export(ct, tmp_path_factory.mktemp("nb01"), seed=42)


def test_2018_two_movies_tie_just_inside_the_top_15(ml2018):
    counts = ml2018.ratings.groupby("movieId").size().sort_values(ascending=False, kind="stable")
    assert counts[50] == counts[2858] == 204
    assert (counts > 204).sum() == 13  # the tie is 14th and 15th place
    assert counts.iloc[15] == 203  # the next movie has one rating fewer
    ct = crosstab(ml2018, top_n=15)
    assert {50, 2858} <= set(ct.movies.tolist())
    assert (ct.n_rated, ct.ratings.size) == (211, 225)


def test_2018_solver_fits_as_the_notebook_describes(export2018):
    _, ex = export2018
    for res in (ex.dot_fit, ex.bias_fit):
        h = np.array(res.history)
        assert (np.diff(h) <= 1e-15).all(), "L-BFGS with a strong-Wolfe search never goes uphill"
        assert res.rmse < h[0] / 5 and res.rmse < 0.45
    # The dot-product sheet converges; the bias sheet is stopped by the 1,000-iteration cap.
    assert ex.dot_fit.converged and len(ex.dot_fit.history) - 1 < 1000
    assert not ex.bias_fit.converged and len(ex.bias_fit.history) - 1 == 1000
    assert ex.bias_fit.rmse < ex.dot_fit.rmse  # biases help
    # Floats from an optimisation: the printed digits, with room for another CPU's arithmetic.
    assert abs(ex.dot_fit.rmse - 0.3344) < 1e-3
    assert abs(ex.bias_fit.rmse - 0.2620) < 1e-3
    lines = ex.fit_lines()
    assert "(converged)" in lines[0] and "stopped at the iteration cap" in lines[1]


def test_2018_undivided_loss_is_the_rmse_times_sqrt_n(export2018):
    ct, ex = export2018
    err = (ct.ratings - predict(ex.bias_fit.factors, ct.mask))[ct.mask]
    sse, n = float((err**2).sum()), ct.n_rated
    assert np.sqrt(sse) == pytest.approx(ex.bias_fit.rmse * np.sqrt(n), rel=1e-12)
    assert np.sqrt(sse) > 10 * ex.bias_fit.rmse  # not comparable with the other sheets' RMSE


def test_2016_lessons_table_fits_from_the_same_seeded_start(ml2016):
    ct16 = crosstab(ml2016, top_n=15)
    fits = {
        b: fit(ct16.ratings, collab.as_written(init_factors(15, 15, bias=b, seed=42)))
        for b in (False, True)
    }
    assert all(r.converged for r in fits.values())
    assert abs(fits[False].rmse - 0.3929) < 5e-5 and abs(fits[True].rmse - 0.3187) < 5e-5
