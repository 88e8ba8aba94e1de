"""The numbers notebook 02 shows that tests/test_graddesc.py and test_optim.py do not already hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lesson5 import graddesc, optim
from lesson5.graddesc import torch_rows

ADAPTIVE = ["adagrad", "rmsprop", "adam", "eve", "adagrad_ann", "adam_ann", "adamw"]
ORIGINAL_EVE = {"b": 8.524, "a": 3.671}  # the original workbook's eve sheet, one epoch after Reset


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def runs():
    return graddesc.run_all(5)


@pytest.fixture(scope="module")
def losses(runs):
    return pd.DataFrame({name: graddesc.epoch_losses(t) for name, (t, _) in runs.items()})


def ends(runs, name):
    return runs[name][0].groupby("epoch")[["new_a", "new_b"]].last()


def test_forward_difference_error_is_smallest_for_an_h_inside_the_range():
    # Truncation (error ~ h) dominates for large h, rounding (~ 1/h) for small h.
    hs = 10.0 ** -np.arange(1, 13)
    x, y, a, b = 50.0, 130.0, 1.0, 1.0
    exact = 2 * x * (b + a * x - y)
    err = [abs(graddesc.finite_differences(a, b, x, y, h)["est_de_da"] / exact - 1) for h in hs]
    best = int(np.argmin(err))
    assert 0 < best < len(hs) - 1 and err[-1] > 10 * err[best] and err[0] > 10 * err[best]


def test_reset_changes_the_first_epoch_of_every_sheet_with_a_carry():
    end = {n: graddesc.run(n, 1, graddesc.reset(n, "seeded"))[1]["b"] for n in graddesc.SHEETS}
    moved = {n for n in graddesc.SHEETS if abs(graddesc.run(n, 1)[1]["b"] - end[n]) > 1e-9}
    assert moved == set(graddesc.SHEETS) - {"basic", "adamw"}


def test_eve_starts_as_adam_and_no_single_d_gives_the_originals_first_epoch():
    # What notebook 02 says of eve: its first epoch is adam's, row for row (d = 1); the original's
    # differs, and no one d dividing the whole first epoch's steps reaches both its b and its a.
    eve, adam = graddesc.run("eve", 1)[0], graddesc.run("adam", 1)[0]
    assert eve[["new_b", "new_a"]].equals(adam[["new_b", "new_a"]])
    start = graddesc.reset("eve")
    grid = np.linspace(0.8, 1.5, 141)
    ends_ = [[graddesc.run("eve", 1, {**start, "d": d})[1][k] for k in "ba"] for d in grid]
    ends_ = np.array(ends_)
    assert (np.diff(ends_, axis=0) < 0).all()  # over [0.8, 1.5] b and a both fall as d grows
    d_b = np.interp(ORIGINAL_EVE["b"], ends_[::-1, 0], grid[::-1])
    d_a = np.interp(ORIGINAL_EVE["a"], ends_[::-1, 1], grid[::-1])
    assert 1.2 < d_b < 1.3 and 0.9 < d_a < 0.95
    at_b = graddesc.run("eve", 1, {**start, "d": d_b})[1]
    at_a = graddesc.run("eve", 1, {**start, "d": d_a})[1]
    assert abs(at_b["a"] - ORIGINAL_EVE["a"]) > 0.5 and abs(at_a["b"] - ORIGINAL_EVE["b"]) > 0.5


# ---- five epochs: what the contour plot and the loss table show ----


def test_plain_sgd_settles_a_in_the_first_epoch_then_creeps_along_b(runs):
    basic = ends(runs, "basic")
    # least squares for a with b held at its value after epoch 1
    best_a = 2 + (30 - basic.new_b[1]) * graddesc.X.sum() / (graddesc.X**2).sum()
    assert abs(basic.new_a[1] - best_a) < 0.1 * best_a and basic.new_a.diff().abs().max() < 0.01
    assert 0.05 < basic.new_b.diff().iloc[1:].mean() < 0.07
    assert all(ends(runs, name).new_b[5] > basic.new_b[5] for name in ADAPTIVE)


def test_the_adam_family_rides_the_valley_but_does_not_settle(runs, losses):
    end = {name: ends(runs, name).iloc[-1] for name in ("adam", "eve", "adam_ann", "adamw")}
    assert all(abs(30 - end[n].new_b) < 2 for n in ("adam", "eve"))
    assert all(5 < 30 - end[n].new_b < 7 for n in ("adam_ann", "adamw"))
    assert end["adam"].new_a < 1.5 and end["eve"].new_a > 2.5
    rose = {n: [e for e in range(2, 6) if losses[n][e] > losses[n][e - 1]] for n in losses}
    rising = {"adam": [4], "eve": [4], "adam_ann": [3, 5], "adamw": [5]}
    assert rose == {**dict.fromkeys(losses, []), **rising}  # no other sheet's loss rose


def test_the_loss_table_reads_as_the_notebook_says(runs, losses):
    final = losses.iloc[-1]
    assert losses["basic"].iloc[1:].pct_change().abs().max() < 0.01  # plain SGD stalls
    assert final["adam"] == final.min() and final["adam"] < final["momentum"] < final["basic"]
    assert losses["rmsprop"].is_monotonic_decreasing
    lr_ann = runs["adagrad_ann"][0].groupby("epoch").lr.first()
    assert lr_ann[1] == 0.5 and lr_ann[2] < 0.5 / 2**5 and lr_ann.is_monotonic_decreasing
    assert (runs["adam_ann"][0].lr == graddesc.reset("adam_ann")["lr"]).all()


# ---- the sheets next to PyTorch (the exact equivalences are in tests/test_optim.py) ----


def test_bias_correction_and_the_seeded_start_both_step_lr_first(runs):
    plain = torch_rows(lambda ps: torch.optim.Adam(ps, lr=1.0, betas=(0.7, 0.9)))
    seeded = graddesc.run("adam", 5, graddesc.reset("adam", "seeded"))[0]
    seeded, reset = (t[["new_a", "new_b"]].to_numpy() for t in (seeded, runs["adam"][0]))
    np.testing.assert_allclose(np.abs(plain[0] - 1.0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.abs(seeded[0] - 1.0), 1.0, rtol=1e-6)
    assert not np.allclose(np.abs(reset[0] - 1.0), 1.0, rtol=1e-2)
    assert np.abs(plain[5:] - seeded[5:]).max() > 0.1  # then the paths part


def test_on_the_exact_answer_torchs_eps_stands_still_and_resets_carry_moves_off():
    b, a = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (30.0, 2.0))
    opt = torch.optim.Adam([b, a], lr=1.0)
    ((b + a * 14.0 - 58.0) ** 2).backward()
    opt.step()
    assert (a.item(), b.item()) == (2.0, 30.0)
    t, _ = graddesc.run("adam", 1, a=2.0, b=30.0)
    assert t.err2.iloc[0] == 0 and t.new_a.iloc[0] != 2.0


def test_decoupled_decay_lands_far_from_adam_with_l2_on_the_line():
    def fit(make, l2=0.0, steps=145):
        b, a = (torch.tensor(1.0, dtype=torch.float64, requires_grad=True) for _ in "ba")
        opt = make([b, a])
        xs, ys = torch.tensor(graddesc.X), torch.tensor(graddesc.Y)
        for i in range(steps):
            opt.zero_grad()
            penalty = optim.l2_penalty([b, a], l2) if l2 else 0
            ((b + a * xs[i % 29] - ys[i % 29]) ** 2 + penalty).backward()
            opt.step()
        return a.item(), b.item()

    wd = 0.5
    coupled = fit(lambda ps: optim.Adam(ps, lr=0.5, weight_decay=wd))
    in_loss = fit(lambda ps: optim.Adam(ps, lr=0.5), l2=wd)
    decoupled = fit(lambda ps: optim.AdamW(ps, lr=0.5, weight_decay=wd))
    assert np.allclose(coupled, in_loss, rtol=1e-10)
    assert abs(decoupled[1] - in_loss[1]) > 1
