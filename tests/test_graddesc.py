"""lesson5.graddesc: closed forms, carry-over, and a plain re-computation of every sheet's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _reset_oracle import MACRO_SHEETS, macro_first_epoch

from lesson5 import graddesc

N = len(graddesc.X)


def test_finite_differences_exceed_the_derivative_by_h_and_h_x_squared():
    # (e(b+h) - e(b)) / h = de/db + h exactly, and for a: de/da + h x^2 (the O(h) truncation error).
    table, _ = graddesc.run("basic", 2)
    h = graddesc.FD_STEP
    np.testing.assert_allclose(table.est_de_db - table.de_db, h, rtol=1e-6)
    np.testing.assert_allclose(table.est_de_da - table.de_da, h * table.x**2, rtol=1e-6)
    # halving h halves the error: first order
    fd = graddesc.finite_differences
    e1, e2 = (fd(1.0, 1.0, 50.0, 130.0, s)["est_de_da"] for s in (h, h / 2))
    assert (e1 + 7900) / (e2 + 7900) == pytest.approx(2, rel=1e-6)  # de/da = 2 * 50 * (51 - 130)


def test_data_and_row_columns_follow_the_sheet():
    assert N == 29 and graddesc.X[:3].tolist() == [14, 86, 28] and graddesc.X[-1] == 8
    assert np.array_equal(graddesc.Y, 2 * graddesc.X + 30)
    table, _ = graddesc.run("basic", 1)
    assert np.allclose(table.y_pred, table.b + table.a * table.x)
    assert np.allclose(table.err2, (table.y_pred - table.y) ** 2)
    assert np.allclose(table.new_a, table.a - 1e-4 * table.de_da)
    # each row starts where the row above ended
    assert (table.a.iloc[1:].to_numpy() == table.new_a.iloc[:-1].to_numpy()).all()
    assert graddesc.epoch_losses(table).iloc[0] == pytest.approx(math.sqrt(table.err2.sum()), 1e-15)


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


def test_overrides_and_bad_input_to_run_and_reset():
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
    with pytest.raises(ValueError, match="unknown reset 'zero'"):
        graddesc.reset("adam", "zero")
    bads = [("lr", float("nan")), ("a", float("inf")), ("b", -float("inf")), ("lr", -0.1)]
    for bad, v in [*bads, ("lr", 0.0), ("a", "two")]:
        with pytest.raises(ValueError, match=rf"{bad} must .*{v!r}"):
            graddesc.run("adam", 1, **{bad: v})
    state = graddesc.reset("adam")
    state["v"] = np.array([np.nan, 1.0])
    with pytest.raises(ValueError, match="sheet 'adam': v must be finite"):
        graddesc.run("adam", 1, state)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.5"):
        graddesc.run("momentum", 1, {**graddesc.reset("momentum"), "beta1": 1.5})


# ---- a second, deliberately plain implementation of every rule (scalars, no shared helpers) ----


def plain(name: str, epochs: int = 5, start: dict | None = None):
    """A sheet re-run with scalar loops from the issue's rules, from `start`'s carries or seeded."""
    start = start or {}
    a = b = 1.0
    betas = {"momentum": (0.9, 0), "rmsprop": (0, 0.9), "adam_ann": (0.9, 0.95)}
    beta1, beta2 = betas.get(name, (0.7, 0.9) if name in ("adam", "eve") else (0, 0))
    lrs = {"basic": 1e-4, "momentum": 1e-4, "adagrad": 1e-3, "rmsprop": 0.02, "adagrad_ann": 0.5}
    lr = lrs.get(name, 1.0)
    mb, ma = start.get("m", (None, None))
    vb, va = start.get("v", (None, None))
    d, best, exp_prev = 1.0, start.get("best"), start.get("expected")
    f1, f2 = start.get("f1"), start.get("f2")
    fresh = f1 is not None

    def grads(a, b, x, y):
        e = b + a * x - y
        return 2 * e, 2 * e * x

    gb0 = [grads(a, b, x, y) for x, y in zip(graddesc.X, graddesc.Y)]
    Gb = math.sqrt(sum(g[0] ** 2 for g in gb0)) / 29
    Ga = math.sqrt(sum(g[1] ** 2 for g in gb0)) / 29
    if "G" in start:
        Gb, Ga = start["G"]

    def epoch(a, b, lr):
        # One pass over the rows from (a, b): the rows' (a, b), the rmse and this epoch's G.
        nonlocal mb, ma, vb, va
        rows, sq_b, sq_a, sse = [], 0.0, 0.0, 0.0
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
            rows.append((a, b))
        return a, b, rows, math.sqrt(sse), math.sqrt(sq_b) / 29, math.sqrt(sq_a) / 29

    out = []
    for _ in range(epochs):
        a1, b1, rows, loss, newGb, newGa = epoch(a, b, lr)
        if name == "adagrad_ann":
            # The macro halves lr, and the live sheet recomputes the epoch, until the test passes.
            while exp_prev is not None and lr * (newGb / Gb + newGa / Ga) > 2 * exp_prev:
                lr /= 2
                a1, b1, rows, loss, newGb, newGa = epoch(a, b, lr)
            exp_prev = lr * (newGb / Gb + newGa / Ga)
        a, b, Gb, Ga = a1, b1, newGb, newGa
        out += rows
        if name == "eve":
            if not fresh:  # a reset that stored this epoch's loss already shifts nothing in
                f1, f2 = loss, f1
            fresh = False
            if f2 is not None:
                d = 0.9 * d + 0.1 * abs(f1 - f2) / min(f1, f2)
        if name == "adam_ann":
            size = math.sqrt(vb) + math.sqrt(va)
            if best is not None and size > 2 * best:
                lr /= 4
            best = size if best is None else min(best, size)
    return np.array(out)


@pytest.mark.parametrize("how", graddesc.RESETS)
@pytest.mark.parametrize("name", [n for n in graddesc.SHEETS if n != "adamw"])
def test_sheet_matches_plain_recomputation(name, how):
    # Seeded, or from the Reset macro's carries (what the carries are is checked below).
    state, start = graddesc.reset(name, how), {}
    if how == "macro":
        start = {k: tuple(float(v) for v in state[k]) for k in ("m", "v", "G") if k in state}
        start.update({k: state[k] for k in ("f1", "f2", "best", "expected") if k in state})
    table, _ = graddesc.run(name, 5, state)
    np.testing.assert_allclose(table[["new_a", "new_b"]], plain(name, start=start), rtol=1e-10)


@pytest.mark.parametrize("how", graddesc.RESETS)
def test_annealing_and_eve_actually_act(how):
    # The epoch-level rules must fire within five epochs, or the tests above prove nothing about them.
    t, s = graddesc.run("adagrad_ann", 5, graddesc.reset("adagrad_ann", how))
    assert s["lr"] < 0.5 and t.lr.nunique() > 1
    t, s = graddesc.run("eve", 5, graddesc.reset("eve", how))
    assert t.d.nunique() == 4 and s["d"] != 1.0
    t, s = graddesc.run("adam_ann", 5, graddesc.reset("adam_ann", how))
    # Seeded, adam_ann quarters its lr in five epochs; from the macro's carries it does not.
    assert (s["lr"] < 1.0) == (how == "seeded")


def test_annealed_adagrad_keeps_no_epoch_that_overshoots():
    # Each accepted epoch's expected step is at most twice the one before; with one halving fewer
    # (twice its lr) the same epoch, rerun from the same start, would have been rejected.
    state, expected = graddesc.reset("adagrad_ann", "seeded"), []
    for epoch in range(1, 6):
        before = graddesc.run("adagrad_ann", 0, state)[1]
        table, state = graddesc.run("adagrad_ann", 1, before)
        expected.append(state["expected"])
        lr = table.lr.iloc[0]
        if epoch > 1:
            assert expected[-1] <= 2 * expected[-2]
        if lr < before["lr"]:
            _, bigger = graddesc.run("adagrad_ann", 1, {**before, "expected": None}, lr=2 * lr)
            assert bigger["expected"] > 2 * expected[-2]
    seeded = graddesc.run("adagrad_ann", 5, graddesc.reset("adagrad_ann", "seeded"))[0]
    losses = graddesc.epoch_losses(seeded)
    assert losses.iloc[-1] < losses.iloc[0] / 5  # annealed, lr 0.5 converges instead of blowing up


def test_adam_with_annealing_row_five_uses_its_own_gradient():
    # The original sheet zeroed one gradient in row 5; the fixed sheet's averages move there.
    t, _ = graddesc.run("adam_ann", 1)
    r4, r5 = t.iloc[3], t.iloc[4]
    assert r5.de_db != 0 and r5.de_da != 0
    assert r5.m_a == pytest.approx(0.9 * r4.m_a + 0.1 * r5.de_da, rel=1e-14)
    assert r5.m_b == pytest.approx(0.9 * r4.m_b + 0.1 * r5.de_db, rel=1e-14)


# ---- Reset as the original workbook's macros (oracle in _reset_oracle.py, written from the macros) ----


@pytest.mark.parametrize("name", MACRO_SHEETS)
def test_first_epoch_after_reset_is_where_the_macro_puts_it(name):
    (a, b), carry = macro_first_epoch(name)
    table, _ = graddesc.run(name, 1)
    assert table.new_a.iloc[-1] == pytest.approx(a, rel=1e-12)
    assert table.new_b.iloc[-1] == pytest.approx(b, rel=1e-12)
    state = graddesc.reset(name)
    for key, pair in carry.items():
        np.testing.assert_allclose(state[key], pair, rtol=1e-12)
    # and it is not where the seeded start goes: the macro changes the first epoch
    seeded, _ = graddesc.run(name, 1, graddesc.reset(name, "seeded"))
    assert abs(seeded.new_b.iloc[-1] - b) > 1e-4 * abs(b)


def test_reset_macros_of_the_other_sheets():
    # eve: adam's carries, d = 1, f1 = the first epoch's loss, f2 = half of it
    eve, adam = graddesc.reset("eve"), graddesc.reset("adam")
    np.testing.assert_array_equal(eve["v"], adam["v"])
    np.testing.assert_array_equal(eve["m"], adam["m"])
    loss = graddesc.epoch_losses(graddesc.run("eve", 1)[0]).iloc[0]
    assert eve["d"] == 1.0 and eve["f2"] == eve["f1"] / 2
    assert eve["f1"] == pytest.approx(loss, 1e-14)
    t, _ = graddesc.run("eve", 2)
    assert (t.d == 1.0).all()  # a relative change of exactly 1 keeps d at 1 for the second epoch
    # adagrad with annealing: G = 1e6, previous expected step 100, lr 0.5; nothing pasted
    s = graddesc.reset("adagrad_ann")
    assert s["lr"] == 0.5 and s["expected"] == 100 and s["G"].tolist() == [1e6, 1e6]
    lrs = graddesc.run("adagrad_ann", 2)[0].groupby("epoch").lr.first()
    assert lrs[1] == 0.5 and lrs[2] == 0.5 / 2**9  # the tiny first epoch holds the second back
    # adam with annealing: adam's pastes, own betas; best = sqrt(v_b) + sqrt(v_a) of the first epoch
    s, (_, end) = graddesc.reset("adam_ann"), graddesc.run("adam_ann", 1)
    assert s["best"] == pytest.approx(np.sqrt(end["v"]).sum(), 1e-14) and end["best"] == s["best"]


# ---- NaN is never reported as a finite loss ----


def test_epoch_losses_are_nan_when_a_row_is_nan():
    table, _ = graddesc.run("basic", 2)
    table.loc[3, "err2"] = np.nan
    losses = graddesc.epoch_losses(table)
    assert math.isnan(losses[1]) and math.isfinite(losses[2])
    # seeded on the exact line adam divides 0 by 0: every later row is NaN, and so is the loss
    with np.errstate(invalid="ignore"):
        t, _ = graddesc.run("adam", 2, graddesc.reset("adam", "seeded"), a=2.0, b=30.0)
    assert t.err2.iloc[0] == 0 and t.err2.iloc[1:].isna().all()
    assert graddesc.epoch_losses(t).isna().all()
