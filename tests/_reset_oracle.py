"""An oracle for the Reset macros of the original gradient-descent workbook, written from their description
(issue 9 item 5) with scalar code and no lesson5 helpers except the sheets' data."""

from __future__ import annotations

import math

from lesson5 import graddesc

MACRO_SHEETS = ["momentum", "adagrad", "rmsprop", "adam"]
LR = {"momentum": 1e-4, "adagrad": 1e-3, "rmsprop": 0.02, "adam": 1.0}
# Each macro sets the carries (b, a) and starts at a = b = 1, then in turn recalculates and pastes
# one carry from the sheet: m, v the last row's average, G the epoch's gradient norms.
START = dict(
    momentum={"m": (0.0, 0.0)},
    adagrad={"G": (1e4, 1e4)},
    rmsprop={"v": (1e4, 1e4)},
    adam={"v": (1e4, 1e4), "m": (0.0, 0.0)},
)
PASTES = dict(momentum=["m"], adagrad=["G"], rmsprop=["v", "v"], adam=["v", "m", "v", "m"])


def _sheet_epoch(rule, a, b, carry):
    """One epoch as the recalculated sheet shows it, from (a, b) and the carries; scalar code.

    Returns {"m": the last row's (m_b, m_a), "v": (v_b, v_a), "G": the gradient norms (b, a)}
    and the end (a, b).
    """
    lr = LR[rule]
    (mb, ma), (vb, va) = carry.get("m", (0, 0)), carry.get("v", (0, 0))
    Gb, Ga = carry.get("G", (1, 1))
    sq_b = sq_a = 0.0
    for x, y in zip(graddesc.X.tolist(), graddesc.Y.tolist()):
        gb = 2 * (b + a * x - y)
        ga = gb * x
        sq_b, sq_a = sq_b + gb * gb, sq_a + ga * ga
        if rule == "momentum":
            mb, ma = 0.9 * mb + 0.1 * gb, 0.9 * ma + 0.1 * ga
            b, a = b - lr * mb, a - lr * ma
        elif rule == "adagrad":
            b, a = b - lr / Gb * gb, a - lr / Ga * ga
        elif rule == "rmsprop":  # divides by the row above's v (the carry on the first row)
            db, da = lr * gb / math.sqrt(vb), lr * ga / math.sqrt(va)
            vb, va = 0.9 * vb + 0.1 * gb * gb, 0.9 * va + 0.1 * ga * ga
            b, a = b - db, a - da
        elif rule == "adam":
            mb, ma = 0.7 * mb + 0.3 * gb, 0.7 * ma + 0.3 * ga
            vb, va = 0.9 * vb + 0.1 * gb * gb, 0.9 * va + 0.1 * ga * ga
            b, a = b - lr * mb / math.sqrt(vb), a - lr * ma / math.sqrt(va)
    shown = {"m": (mb, ma), "v": (vb, va), "G": (math.sqrt(sq_b) / 29, math.sqrt(sq_a) / 29)}
    return shown, (a, b)


def macro_carries(rule):
    """The carries the sheet holds before each paste of its Reset macro, then after the last."""
    carries = [dict(START[rule])]
    for key in PASTES[rule]:
        shown, _ = _sheet_epoch(rule, 1.0, 1.0, carries[-1])
        carries.append({**carries[-1], key: shown[key]})
    return carries


def macro_first_epoch(rule):
    """Press Reset, then look at the first epoch: (a, b) at its last row, and the carries it ran with."""
    carry = macro_carries(rule)[-1]
    return _sheet_epoch(rule, 1.0, 1.0, carry)[1], carry
