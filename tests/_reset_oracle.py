"""An oracle for the Reset macros of the original gradient-descent workbook, written from their description
(issue 9 item 5) with scalar code and no lesson5 helpers except the sheets' data."""

from __future__ import annotations

import math

from lesson5 import graddesc


def _sheet_epoch(rule, a, b, lr, carry):
    """One epoch as the recalculated sheet shows it, from (a, b) and the carries; scalar code.

    Returns the last row's (m_b, m_a), (v_b, v_a), the epoch's gradient norms (b, a) and the end (a, b).
    """
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
    return (mb, ma), (vb, va), (math.sqrt(sq_b) / 29, math.sqrt(sq_a) / 29), (a, b)


def macro_first_epoch(rule):
    """Press Reset, then look at the first epoch: (a, b) at its last row, and the carries it ran with."""
    lr = {"momentum": 1e-4, "adagrad": 1e-3, "rmsprop": 0.02, "adam": 1.0}[rule]
    a = b = 1.0
    if rule == "momentum":
        carry = {"m": (0.0, 0.0)}
        carry["m"] = _sheet_epoch(rule, a, b, lr, carry)[0]
    elif rule == "adagrad":
        carry = {"G": (10000.0, 10000.0)}
        carry["G"] = _sheet_epoch(rule, a, b, lr, carry)[2]
    elif rule == "rmsprop":
        carry = {"v": (10000.0, 10000.0)}
        for _ in range(2):
            carry["v"] = _sheet_epoch(rule, a, b, lr, carry)[1]
    else:
        carry = {"v": (10000.0, 10000.0), "m": (0.0, 0.0)}
        for _ in range(2):
            carry["v"] = _sheet_epoch(rule, a, b, lr, carry)[1]
            carry["m"] = _sheet_epoch(rule, a, b, lr, carry)[0]
    return _sheet_epoch(rule, a, b, lr, carry)[3], carry


MACRO_SHEETS = ["momentum", "adagrad", "rmsprop", "adam"]
