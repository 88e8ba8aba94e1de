"""The numbers notebook 04 shows, checked through the package with the notebook's seeds.

The lesson's `EmbeddingNet` run reproduced on its data (the 2016 release: skipped where it is
absent, required in CI) and what the notebook says of the same recipes on the 2018 release. The
lesson's numbers are those its notebook printed (fastai's courses/dl1/lesson5-movielens.ipynb).
"""

from __future__ import annotations

import numpy as np
import torch

# Validation MSE after each of the six epochs (Adam 1e-3, wd 1e-5, 3 + 3 epochs).
LESSON_NET = [0.82363, 0.81264, 0.80706, 0.78622, 0.78152, 0.78075]
KERNELS = 0.001  # how far a trained RMSE moves between the CPU's kernels (measured: 4e-4)


def valid_mse(trained, recipe: str, release: str) -> np.ndarray:
    return trained(recipe, release)[1].epochs.valid_mse.to_numpy()


def test_lesson_net_on_2016_ends_at_the_lessons_number_ahead_then_stalled(trained):
    mse = valid_mse(trained, "lesson-net", "2016")
    assert abs(mse[-1] - LESSON_NET[-1]) < 0.015  # the end point
    assert mse[2] < LESSON_NET[2]  # further than the lesson after the first stage
    assert abs(mse[5] - mse[2]) < 0.01  # and then the second stage stalls


def test_lesson_net_on_2018_moves_in_the_first_stage_and_stalls_in_the_second(trained):
    mse = valid_mse(trained, "lesson-net", "2018")
    lesson_first = LESSON_NET[2] - LESSON_NET[0]
    assert abs((mse[2] - mse[0]) - lesson_first) < 0.005  # about as far as the lesson's
    assert abs(mse[5] - mse[2]) < 0.005 < LESSON_NET[2] - LESSON_NET[5]  # the lesson's kept going
    assert mse[-1] < 0.95  # far below the variance of the ratings


def test_onecycle_net_reaches_its_target_on_2018(trained):
    """The target is 0.860 (docs/api.md). Seed 42 lands on it within 0.0003, on either side as the
    CPU's kernels go: 0.85972 with AVX2 or AVX-512, 0.86010 with ATEN_CPU_CAPABILITY=default."""
    _, hist = trained("onecycle-net", "2018")
    assert hist.epochs.valid_rmse.iloc[-1] <= 0.860 + KERNELS


def test_onecycle_net_predictions_follow_the_ratings_inside_the_widened_range(trained, ml2018):
    model, _ = trained("onecycle-net", "2018")
    u, m, y = ml2018.tensors("valid")
    with torch.no_grad():
        pred = model.eval()(u, m).double().numpy()
    y = y.double().numpy()
    lo, hi = ml2018.rating_range
    assert model.y_range == (lo - 0.5, hi + 0.5)
    assert np.corrcoef(y, pred)[0, 1] > 0.5
    assert model.y_range[0] < pred.min() and pred.max() < model.y_range[1]


def test_the_dot_product_with_biases_still_beats_the_net_on_2018(trained):
    """Notebook 04's closing claim, against notebook 03's one-cycle recipe."""
    net = trained("onecycle-net", "2018")[1].epochs.valid_rmse.iloc[-1]
    dot = trained("onecycle-bias", "2018")[1].epochs.valid_rmse.iloc[-1]
    assert dot < net - 0.01
