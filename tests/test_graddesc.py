"""lesson5.graddesc: closed forms, carry-over, and a plain re-computation of every sheet's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesson5 import graddesc

N = len(graddesc.X)


def test_data_is_the_sheets():
    assert N == 29 and graddesc.X[:3].tolist() == [14, 86, 28] and graddesc.X[-1] == 8
    assert np.array_equal(graddesc.Y, 2 * graddesc.X + 30)


def test_finite_differences_exceed_the_derivative_by_h_and_h_x_squared():
    # (e(b+h) - e(b)) / h = de/db + h exactly, and for a: de/da + h x^2 (the O(h) truncation error).
    table, _ = graddesc.run("basic", 2)
    h = graddesc.FD_STEP
    np.testing.assert_allclose(table.est_de_db - table.de_db, h, rtol=1e-6)
    np.testing.assert_allclose(table.est_de_da - table.de_da, h * table.x**2, rtol=1e-6)
    # halving h halves the error: first order
    e1 = graddesc.finite_differences(1.0, 1.0, 50.0, 130.0, h)["est_de_da"] - 2 * 50 * (51 - 130)
    e2 = graddesc.finite_differences(1.0, 1.0, 50.0, 130.0, h / 2)["est_de_da"] - 2 * 50 * (51 - 130)
    assert e1 / e2 == pytest.approx(2, rel=1e-6)


def test_row_columns_follow_the_sheet():
    table, _ = graddesc.run("basic", 1)
    assert np.allclose(table.y_pred, table.b + table.a * table.x)
    assert np.allclose(table.err2, (table.y_pred - table.y) ** 2)
    assert np.allclose(table.new_a, table.a - 1e-4 * table.de_da)
    # each row starts where the row above ended
    assert (table.a.iloc[1:].to_numpy() == table.new_a.iloc[:-1].to_numpy()).all()
    assert graddesc.epoch_losses(table).iloc[0] == pytest.approx(math.sqrt(table.err2.sum()), rel=1e-15)


@pytest.mark.parametrize("name", list(graddesc.SHEETS))
def test_five_epochs_equal_five_runs_of_one_carrying_state(name):
    whole, end = graddesc.run(name, 5)
    state, parts = None, []
    for _ in range(5):
        part, state = graddesc.run(name, 1, state)
        parts.append(part)
    pieced = np.concatenate([p.drop(columns="epoch").to_numpy(float) for p in parts])
    assert np.array_equal(pieced, whole.drop(columns="epoch").to_numpy(float))
    assert whole.epoch.tolist() == [e for e in range(1, 6) for _ in range(N)]
    assert (state["a"], state["b"], state["lr"]) == (end["a"], end["b"], end["lr"])
    assert np.isfinite(whole.drop(columns=["epoch"]).to_numpy(float)).all()
    assert list(whole.columns) == graddesc.columns(name)


def test_overrides_and_bad_input():
    t, s = graddesc.run("basic", 1, a=2.0, b=30.0)
    assert (t.err2 == 0).all() and (s["a"], s["b"]) == (2.0, 30.0)  # the exact line does not move
    _, s = graddesc.run("adam", 1, lr=0.5)
    assert s["lr"] == 0.5
    with pytest.raises(ValueError, match="unknown sheet 'sdg'"):
        graddesc.run("sdg")
    with pytest.raises(ValueError, match="epochs"):
        graddesc.run("basic", -1)
    with pytest.raises(ValueError, match="lacks"):
        graddesc.run("adam", 1, {"a": 1.0, "b": 1.0, "lr": 1.0})


# ---- a second, deliberately plain implementation of every rule (scalars, no shared helpers) ----

def plain(name: str, epochs: int = 5):
    """Re-run a sheet with scalar loops written straight from the issue's rules; return (a, b) per row."""
    a = b = 1.0
    beta1, beta2 = {"momentum": (0.9, 0), "rmsprop": (0, 0.9), "adam": (0.7, 0.9), "eve": (0.7, 0.9),
                    "adam_ann": (0.9, 0.95)}.get(name, (0, 0))
    lr = {"basic": 1e-4, "momentum": 1e-4, "adagrad": 1e-3, "rmsprop": 0.02, "adagrad_ann": 0.5}.get(name, 1.0)
    mb = ma = vb = va = None
    d, f_prev, best, exp_prev = 1.0, None, None, None

    def grads(a, b, x, y):
        e = b + a * x - y
        return 2 * e, 2 * e * x

    gb0 = [grads(a, b, x, y) for x, y in zip(graddesc.X, graddesc.Y)]
    Gb = math.sqrt(sum(g[0] ** 2 for g in gb0)) / 29
    Ga = math.sqrt(sum(g[1] ** 2 for g in gb0)) / 29
    out = []
    for _ in range(epochs):
        sq_b = sq_a = 0.0
        sse = 0.0
        sb, sa = lr / Gb, lr / Ga
        for x, y in zip(graddesc.X, graddesc.Y):
            sse += (b + a * x - y) ** 2
            gb, ga = grads(a, b, x, y)
            sq_b, sq_a = sq_b + gb * gb, sq_a + ga * ga
            if name == "basic":
                b, a = b - lr * gb, a - lr * ga
            elif name == "momentum":
                mb = gb if mb is None else beta1 * mb + (1 - beta1) * gb
                ma = ga if ma is None else beta1 * ma + (1 - beta1) * ga
                b, a = b - lr * mb, a - lr * ma
            elif name in ("adagrad", "adagrad_ann"):
                b, a = b - sb * gb, a - sa * ga
            elif name == "rmsprop":
                pb, pa = (gb * gb, ga * ga) if vb is None else (vb, va)
                vb = gb * gb if vb is None else beta2 * vb + (1 - beta2) * gb * gb
                va = ga * ga if va is None else beta2 * va + (1 - beta2) * ga * ga
                b, a = b - lr * gb / math.sqrt(pb), a - lr * ga / math.sqrt(pa)
            else:  # adam, eve, adam_ann
                mb = gb if mb is None else beta1 * mb + (1 - beta1) * gb
                ma = ga if ma is None else beta1 * ma + (1 - beta1) * ga
                vb = gb * gb if vb is None else beta2 * vb + (1 - beta2) * gb * gb
                va = ga * ga if va is None else beta2 * va + (1 - beta2) * ga * ga
                b, a = b - lr * mb / math.sqrt(vb) / d, a - lr * ma / math.sqrt(va) / d
            out.append((a, b))
        loss = math.sqrt(sse)
        newGb, newGa = math.sqrt(sq_b) / 29, math.sqrt(sq_a) / 29
        if name == "adagrad_ann":
            while exp_prev is not None and lr * (newGb / Gb + newGa / Ga) > 2 * exp_prev:
                lr /= 2
            exp_prev = lr * (newGb / Gb + newGa / Ga)
        Gb, Ga = newGb, newGa
        if name == "eve":
            if f_prev is not None:
                d = 0.9 * d + 0.1 * abs(loss - f_prev) / min(loss, f_prev)
            f_prev = loss
        if name == "adam_ann":
            size = math.sqrt(vb) + math.sqrt(va)
            if best is not None and size > 2 * best:
                lr /= 4
            best = size if best is None else min(best, size)
    return np.array(out)


@pytest.mark.parametrize("name", [n for n in graddesc.SHEETS if n != "adamw"])
def test_sheet_matches_plain_recomputation(name):
    table, _ = graddesc.run(name, 5)
    np.testing.assert_allclose(table[["new_a", "new_b"]].to_numpy(), plain(name), rtol=1e-10)


def test_annealing_and_eve_actually_act():
    # The epoch-level rules must fire within five epochs, or the tests above prove nothing about them.
    t, s = graddesc.run("adagrad_ann", 5)
    assert s["lr"] < 0.5 and t.lr.nunique() > 1
    t, s = graddesc.run("adam_ann", 5)
    assert s["lr"] < 1.0
    t, s = graddesc.run("eve", 5)
    assert t.d.nunique() == 4 and s["d"] != 1.0


def test_adam_with_annealing_row_five_uses_its_own_gradient():
    # The original sheet zeroed one gradient in row 5; the fixed sheet's averages move there.
    t, _ = graddesc.run("adam_ann", 1)
    r4, r5 = t.iloc[3], t.iloc[4]
    assert r5.de_db != 0 and r5.de_da != 0
    assert r5.m_a == pytest.approx(0.9 * r4.m_a + 0.1 * r5.de_da, rel=1e-14)
    assert r5.m_b == pytest.approx(0.9 * r4.m_b + 0.1 * r5.de_db, rel=1e-14)
