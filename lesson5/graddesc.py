"""The lesson's gradient-descent spreadsheet, sheet by sheet and row by row.

Notebook 02.

y = a*x + b learnt by online gradient descent, one update per row of 29; the sheets differ only
in their rule: one loop (`run`), one table (`SHEETS`). adam_ann's bad row-5 cell is fixed.
`reset(name, "seeded")` starts each average at row 1's value: momentum and adam are then torch's
SGD(dampening=momentum) and Adam with no bias correction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The sheets' 29 x values, in the sheets' order; y = 2x + 30 exactly.
X = np.array(
    "14 86 28 51 28 29 72 62 84 15 42 62 47 35 9 38 44 99 13 21 28 20 8 64 99 70 27 17 8".split(),
    dtype=float,
)
Y = 2 * X + 30
#: Step of the forward finite differences on the basic SGD sheet.
FD_STEP = 0.01
PARAMS = ("b", "a")  # the sheets put the intercept first
#: A rerun epoch (adagrad with annealing) gives up after this many halvings of lr.
MAX_HALVINGS = 60
#: The two starts `reset` knows: the original workbook's Reset macros, or averages seeded by row 1.
RESETS = ("macro", "seeded")


# The cells carried from epoch to epoch: a, b, lr, betas, averages (m, v over (b, a); None until
# row 1 seeds them), epoch-level values (G, d, best, ...) and epochs_done.
State = dict


def row_grads(a: float, b: float, x: float, y: float) -> tuple[float, float, float, float]:
    """One row: prediction b + a*x, squared error, de/db = 2(pred - y), de/da = x*de/db."""
    pred = b + a * x
    de_db = 2 * (pred - y)
    return pred, (pred - y) ** 2, de_db, x * de_db


def finite_differences(a: float, b: float, x: float, y: float, h: float = FD_STEP) -> dict:
    """Forward differences of the row's error, bumping b then a by h: high by h and h*x**2."""
    err, errb1, erra1 = ((b + db + (a + da) * x - y) ** 2 for db, da in ((0, 0), (h, 0), (0, h)))
    return dict(errb1=errb1, est_de_db=(errb1 - err) / h, erra1=erra1, est_de_da=(erra1 - err) / h)


def _ewma(prev, new, beta):  # a running average seeded with its first observation
    return new if prev is None else beta * prev + (1 - beta) * new


def _sgd(g, s):
    return s["lr"] * g, {}


def _momentum(g, s):
    s["m"] = _ewma(s["m"], g, s["beta1"])
    return s["lr"] * s["m"], {"m": s["m"]}


def _adagrad(g, s):
    step = s["lr"] / s["G"]
    return step * g, {"step": step}


def _rmsprop(g, s):
    prev = g * g if s["v"] is None else s["v"]  # the sheet divides by the row above's v
    s["v"] = _ewma(s["v"], g * g, s["beta2"])
    return s["lr"] * g / np.sqrt(prev), {"v": s["v"]}


def _adam(g, s):
    s["m"] = _ewma(s["m"], g, s["beta1"])
    s["v"] = _ewma(s["v"], g * g, s["beta2"])
    return s["lr"] * s["m"] / np.sqrt(s["v"]) / s.get("d", 1.0), {"m": s["m"], "v": s["v"]}


def _adamw(g, s):
    # PyTorch's AdamW, written out: decay the weights, then a bias-corrected Adam step with eps.
    s["t"] += 1
    b1, b2, t = s["beta1"], s["beta2"], s["t"]
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    p = np.array([s["b"], s["a"]])
    mhat, vhat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
    step = s["lr"] * s["wd"] * p + s["lr"] * mhat / (np.sqrt(vhat) + s["eps"])
    return step, {"m": s["m"], "v": s["v"]}


def _grad_norm(grads: np.ndarray) -> np.ndarray:
    return np.sqrt((grads**2).sum(axis=0)) / len(grads)


def _adagrad_begin(s):
    if s["G"] is None:  # no previous epoch: a zeroth one standing still at the start point
        s["G"] = _grad_norm(np.array([row_grads(s["a"], s["b"], x, y)[2:] for x, y in zip(X, Y)]))


def _adagrad_epoch(s, grads, loss):
    s["G"] = _grad_norm(grads)


def _expected_step(s, grads) -> float:
    return float((_grad_norm(grads) * s["lr"] / s["G"]).sum())


def _adagrad_ann_epoch(s, grads, loss):
    s["expected"] = _expected_step(s, grads)
    _adagrad_epoch(s, grads, loss)


def _adagrad_ann_redo(s, grads):
    # The original halves the lr cell and the live epoch recomputes: while the expected step
    # (sum_p G_p * lr / G_p(last epoch)) exceeds twice the last accepted one, halve and rerun.
    # Reset's expected step 100 and G 1e6 make lr halve 9 times from 0.5 in epoch 2 (notebook 02).
    return s["expected"] is not None and _expected_step(s, grads) > 2 * s["expected"]


def _eve_epoch(s, grads, loss):
    # f1, f2: the last two epoch losses; Reset's f1 and f2 = f1 / 2 leave d = 1 after epoch 1.
    if s["f_fresh"]:  # Reset already stored this epoch's loss as f1
        s["f_fresh"] = False
    else:
        s["f1"], s["f2"] = loss, s["f1"]
    if s["f2"] is not None:
        r = abs(s["f1"] - s["f2"]) / min(s["f1"], s["f2"])
        s["d"] = 0.9 * s["d"] + 0.1 * r


def _adam_ann_epoch(s, grads, loss):
    # Reset sets best from the first epoch, so that epoch cannot anneal.
    size = float(np.sqrt(s["v"]).sum())
    if s["best"] is not None and size > 2 * s["best"]:
        s["lr"] /= 4
    s["best"] = size if s["best"] is None else min(s["best"], size)


@dataclass(frozen=True)
class Sheet:
    """One sheet: its reset cells, its per-row rule, its extra columns, its once-per-epoch rule."""

    name: str
    reset: dict
    row: Callable  # (g, state) -> (step to subtract, extra columns); updates state in place
    extras: tuple[str, ...] = ()  # per-parameter columns, written <name>_b and <name>_a
    epoch_extras: tuple[str, ...] = ()  # scalars constant within an epoch (lr, d), shown per row
    end_epoch: Callable | None = None  # (state, the epoch's gradients (29, 2), its rmse) -> None
    begin: Callable | None = None  # fills state the first epoch needs but reset cannot know
    redo: Callable | None = None  # (state, the epoch's gradients) -> True: halve lr, rerun
    finite_differences: bool = False  # show the forward-difference columns beside de/db, de/da
    doc: str = field(default="", compare=False)


# lesson5.excel.graddesc.FORMULAS holds the same rules as workbook formulas, in this order.
SHEETS: dict[str, Sheet] = {
    s.name: s
    for s in [
        Sheet("basic", {"lr": 1e-4}, _sgd, finite_differences=True, doc="a <- a - lr * de/da"),
        Sheet(
            "momentum",
            {"lr": 1e-4, "beta1": 0.9, "m": None},
            _momentum,
            ("m",),
            doc="m <- beta m + (1-beta) g; a <- a - lr m",
        ),
        Sheet(
            "adagrad",
            {"lr": 1e-3, "G": None},
            _adagrad,
            ("step",),
            end_epoch=_adagrad_epoch,
            begin=_adagrad_begin,
            doc="a <- a - lr / G * g, G = ||last epoch's g|| / 29",
        ),
        Sheet(
            "rmsprop",
            {"lr": 0.02, "beta2": 0.9, "v": None},
            _rmsprop,
            ("v",),
            doc="v <- beta v + (1-beta) g^2; a <- a - lr g / sqrt(previous v)",
        ),
        Sheet(
            "adam",
            {"lr": 1.0, "beta1": 0.7, "beta2": 0.9, "m": None, "v": None},
            _adam,
            ("m", "v"),
            doc="a <- a - lr m / sqrt(v), no bias correction, no eps",
        ),
        Sheet(
            "eve",
            dict(
                lr=1.0, beta1=0.7, beta2=0.9, m=None, v=None, d=1.0, f1=None, f2=None, f_fresh=False
            ),
            _adam,
            ("m", "v"),
            ("d",),
            _eve_epoch,
            doc="adam divided by d, d tracking the loss's relative change",
        ),
        Sheet(
            "adagrad_ann",
            {"lr": 0.5, "G": None, "expected": None},
            _adagrad,
            ("step",),
            ("lr",),
            _adagrad_ann_epoch,
            _adagrad_begin,
            _adagrad_ann_redo,
            doc="adagrad, lr halved and the epoch rerun while its expected step more than doubles",
        ),
        Sheet(
            "adam_ann",
            {"lr": 1.0, "beta1": 0.9, "beta2": 0.95, "m": None, "v": None, "best": None},
            _adam,
            ("m", "v"),
            ("lr",),
            _adam_ann_epoch,
            doc="adam, lr / 4 when sqrt(v_b) + sqrt(v_a) more than doubles its best",
        ),
        Sheet(
            "adamw",
            dict(
                lr=1.0, beta1=0.7, beta2=0.9, eps=1e-8, wd=0.01, t=0, m=np.zeros(2), v=np.zeros(2)
            ),
            _adamw,
            ("m", "v"),
            doc="torch.optim.AdamW, one row at a time",
        ),
    ]
}


# Each original Reset macro: the cells it sets, the carries it then pastes in order from the
# recalculated sheet (m, v: the last row's average; G: the epoch's gradient norms), and what it
# records ("f": eve's last two losses; "best": adam_ann's sqrt(v_b) + sqrt(v_a)).
_VMVM = ("v", "m", "v", "m")
RESET_MACROS: dict[str, dict] = {
    "basic": {"set": {"lr": 1e-4}, "paste": ()},
    "momentum": {"set": {"m": 0.0, "lr": 1e-4}, "paste": ("m",)},
    "adagrad": {"set": {"G": 1e4}, "paste": ("G",)},
    "rmsprop": {"set": {"v": 1e4}, "paste": ("v", "v")},
    "adam": {"set": {"v": 1e4, "m": 0.0, "lr": 1.0}, "paste": _VMVM},
    "eve": {"set": {"v": 1e4, "m": 0.0, "lr": 1.0, "d": 1.0}, "paste": _VMVM, "record": "f"},
    "adagrad_ann": {"set": {"G": 1e6, "expected": 100.0, "lr": 0.5}, "paste": ()},
    "adam_ann": {"set": {"lr": 1.0, "m": 0.0, "v": 1e4}, "paste": _VMVM, "record": "best"},
    "adamw": {"set": {}, "paste": ()},  # not in the original: torch's AdamW start (zeros, t = 0)
}


def reset(name: str, how: str = "macro") -> State:
    """A sheet's cells at a = b = 1 after its Reset macro (`RESET_MACROS`), or seeded averages."""
    sheet = _sheet(name)
    if how not in RESETS:
        raise ValueError(f"unknown reset {how!r}; the resets are {', '.join(RESETS)}")
    s = {"a": 1.0, "b": 1.0, **_copy(sheet.reset)}
    if how == "seeded":
        return s
    macro = RESET_MACROS[name]
    for key, value in macro["set"].items():
        s[key] = np.full(2, float(value)) if key in ("m", "v", "G") else float(value)
    for key in macro["paste"]:
        shown = _copy(s)  # the sheet as recalculated after the last paste
        _, grads, _ = _epoch(sheet, shown, 1)
        s[key] = _grad_norm(grads) if key == "G" else shown[key]
    if "record" in macro:
        shown = _copy(s)
        _, _, loss = _epoch(sheet, shown, 1)
        if macro["record"] == "f":
            s.update(f1=loss, f2=loss / 2, f_fresh=True)
        else:
            s["best"] = float(np.sqrt(shown["v"]).sum())
    return s


def _sheet(name: str) -> Sheet:
    if name not in SHEETS:
        raise ValueError(f"unknown sheet {name!r}; the sheets are {', '.join(SHEETS)}")
    return SHEETS[name]


def columns(name: str) -> list[str]:
    """The row table's columns for a sheet, in the sheet's left-to-right order."""
    sheet = _sheet(name)
    cols = ["epoch", "row", "x", "y", "b", "a", "y_pred", "err2"]
    if sheet.finite_differences:
        cols += ["errb1", "est_de_db", "erra1", "est_de_da"]
    cols += ["de_db", "de_da"] + list(sheet.epoch_extras)
    cols += [f"{e}_{p}" for e in sheet.extras for p in PARAMS]
    return cols + ["new_b", "new_a"]


def run(
    name: str,
    epochs: int = 1,
    state: State | None = None,
    *,
    a: float | None = None,
    b: float | None = None,
    lr: float | None = None,
) -> tuple[pd.DataFrame, State]:
    """Run `epochs` passes from `state` (default reset(name); a, b, lr override it): (rows, state)."""
    sheet = _sheet(name)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    s = reset(name) if state is None else _copy(state)
    if missing := set(sheet.reset) - set(s):
        raise ValueError(f"state for sheet {name!r} lacks {sorted(missing)}")
    for key, value in ((k, v) for k, v in (("a", a), ("b", b), ("lr", lr)) if v is not None):
        try:
            s[key] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    # Refuse what would run silently to NaN: every number finite, lr positive, betas in [0, 1).
    for key, value in ((k, v) for k, v in s.items() if v is not None and not isinstance(v, bool)):
        if not np.isfinite(np.asarray(value, dtype=float)).all():
            raise ValueError(f"sheet {name!r}: {key} must be finite, got {value!r}")
        if key == "lr" and not value > 0:
            raise ValueError(f"sheet {name!r}: lr must be positive, got {value!r}")
        if key.startswith("beta") and not 0 <= value < 1:
            raise ValueError(f"sheet {name!r}: {key} must be in [0, 1), got {value!r}")
    if sheet.begin is not None:
        sheet.begin(s)
    first = int(s.get("epochs_done", 0))
    rows = []
    for epoch in range(first + 1, first + epochs + 1):
        start = _copy(s)
        for _ in range(MAX_HALVINGS + 1):
            recs, grads, loss = _epoch(sheet, s, epoch)
            if sheet.redo is None or not sheet.redo(s, grads):
                break
            s = {**_copy(start), "lr": s["lr"] / 2}
        else:
            raise RuntimeError(
                f"sheet {name!r}, epoch {epoch}: lr halved {MAX_HALVINGS} times and still rejected"
            )
        rows += recs
        if sheet.end_epoch is not None:
            sheet.end_epoch(s, grads, loss)
        s["epochs_done"] = epoch
    return pd.DataFrame(rows, columns=columns(name)), s


def _epoch(sheet: Sheet, s: State, epoch: int) -> tuple[list[dict], np.ndarray, float]:
    # One pass over the 29 rows, updating s in place: the rows, their gradients (29, 2), the rmse.
    rows, grads = [], []
    for i, (x, y) in enumerate(zip(X, Y), start=1):
        pred, err, de_db, de_da = row_grads(s["a"], s["b"], x, y)
        g = np.array([de_db, de_da])
        rec = dict(epoch=epoch, row=i, x=x, y=y, b=s["b"], a=s["a"], y_pred=pred, err2=err)
        if sheet.finite_differences:
            rec.update(finite_differences(s["a"], s["b"], x, y))
        rec.update({"de_db": de_db, "de_da": de_da}, **{k: s[k] for k in sheet.epoch_extras})
        step, extra = sheet.row(g, s)
        for k, val in extra.items():
            val = np.broadcast_to(val, 2)
            rec[f"{k}_b"], rec[f"{k}_a"] = float(val[0]), float(val[1])
        s["b"], s["a"] = s["b"] - float(step[0]), s["a"] - float(step[1])
        rec["new_b"], rec["new_a"] = s["b"], s["a"]
        rows.append(rec)
        grads.append(g)
    return rows, np.array(grads), math.sqrt(sum(r["err2"] for r in rows))


def _copy(state: State) -> State:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}


def epoch_losses(table: pd.DataFrame) -> pd.Series:
    """Each epoch's "rmse": sqrt of its 29 squared errors' sum, NaN if one is (pandas' sum skips it)."""
    sums = table.groupby("epoch")["err2"].agg(lambda e: float(np.sum(e.to_numpy(dtype=float))))
    return np.sqrt(sums).rename("rmse")


def torch_rows(make: Callable, epochs: int = 5, state: Sequence[dict] | None = None) -> np.ndarray:
    """The sheet's rows fed to a torch optimizer, one step per row from a = b = 1: (a, b) after each.

    `make([b, a])` builds the optimizer; `state` (a dict for b, then a) starts it where a sheet does.
    """
    import torch

    b, a = (torch.tensor(1.0, dtype=torch.float64, requires_grad=True) for _ in range(2))
    opt = make([b, a])
    for p, st in zip((b, a), state or ()):
        opt.state[p].update(st)
    out = []
    for _ in range(epochs):
        for x, y in zip(X, Y):
            opt.zero_grad()
            ((b + a * float(x) - float(y)) ** 2).backward()
            opt.step()
            out.append((a.item(), b.item()))
    return np.array(out)


def run_all(epochs: int = 5, how: str = "macro") -> dict[str, tuple[pd.DataFrame, State]]:
    """Every sheet run from `reset(name, how)` for `epochs` epochs, laid out as in the workbook."""
    return {name: run(name, epochs, reset(name, how)) for name in SHEETS}
