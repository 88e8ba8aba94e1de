"""`graddesc.xlsx`: every sheet of the gradient-descent spreadsheet as live formulas.

Notebook 02.

One worksheet per rule of `lesson5.graddesc`, same columns, same row order. Each row's a and b
read the row above (so each epoch's first row reads the previous epoch's last: the five epochs
the Run macro would have done lie one under the other). Learning rates, betas and the start
(a, b) are named input cells (yellow), e.g. `adam_lr`, `adam_beta1`. The carries the first row
starts from (momentum's m, rmsprop's v, adam's m and v, adagrad's G) are yellow named cells too,
holding what each sheet's Reset macro left there (`lesson5.graddesc.reset`), so the first epoch
is the original's after Reset; cell comments say what a cell is and what to try. To the right
of the rows, a per-epoch table holds what changes once per epoch (loss, adagrad's G, annealed
lr, eve's d) and a line chart of the loss. The one thing no formula can do is the annealed
adagrad's rerun of an epoch after each halving of lr, so there the number of halvings per epoch
is an input cell, next to the expected step and the limit it had to meet. A last sheet,
`losses`, puts every rule's loss on one chart.

`FORMULAS` is `graddesc.SHEETS` again, as formulas: same keys, same order, and each rule's
formula function is named after its Python twin (`_momentum` here writes what
`graddesc._momentum` computes), so the two read side by side.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from lesson5 import graddesc
from lesson5.excel import book

FILENAME = "graddesc.xlsx"
EPOCHS = 5
HEAD = 9  # header row of the row table; rows start below it
N = len(graddesc.X)
FIRST = HEAD + 1
LAST = HEAD + EPOCHS * N

# The inputs each sheet exposes as named cells, in display order: (state key, label).
INPUTS = {
    "basic": [("lr", "learning rate"), ("h", "finite-difference step")],
    "momentum": [("lr", "learning rate"), ("beta1", "beta (momentum)")],
    "adagrad": [("lr", "learning rate")],
    "rmsprop": [("lr", "learning rate"), ("beta2", "beta (squares)")],
    "adam": [("lr", "learning rate"), ("beta1", "beta1 (gradients)"), ("beta2", "beta2 (squares)")],
    "eve": [
        ("lr", "learning rate"),
        ("beta1", "beta1 (gradients)"),
        ("beta2", "beta2 (squares)"),
        ("d", "d at reset"),
        ("beta_d", "beta of d"),
    ],
    "adagrad_ann": [("lr", "learning rate at reset")],
    "adam_ann": [
        ("lr", "learning rate at reset"),
        ("beta1", "beta1 (gradients)"),
        ("beta2", "beta2 (squares)"),
    ],
    "adamw": [
        ("lr", "learning rate"),
        ("beta1", "beta1 (gradients)"),
        ("beta2", "beta2 (squares)"),
        ("eps", "eps"),
        ("wd", "weight decay"),
    ],
}
EXTRA_INPUTS = {"h": graddesc.FD_STEP, "beta_d": 0.9}
# The carries Reset leaves (state key, per-parameter index or None, input key, label).
CARRIES = {
    "momentum": [("m", 0, "m_b0", "m_b carry"), ("m", 1, "m_a0", "m_a carry")],
    "adagrad": [("G", 0, "G_b0", "G_b carry"), ("G", 1, "G_a0", "G_a carry")],
    "rmsprop": [("v", 0, "v_b0", "v_b carry"), ("v", 1, "v_a0", "v_a carry")],
    "adagrad_ann": [
        ("G", 0, "G_b0", "G_b carry"),
        ("G", 1, "G_a0", "G_a carry"),
        ("expected", None, "expected0", "expected step before"),
    ],
}
for _n in ("adam", "eve", "adam_ann"):
    CARRIES[_n] = [
        ("m", 0, "m_b0", "m_b carry"),
        ("m", 1, "m_a0", "m_a carry"),
        ("v", 0, "v_b0", "v_b carry"),
        ("v", 1, "v_a0", "v_a carry"),
    ]
CARRY_KEYS = {key for rows in CARRIES.values() for _, _, key, _ in rows}
# What the comment on each input says: what it is, and something to try.
HELP = {
    "b0": "Where b starts (the Reset button set it to 1). The best line has b = 30: try starting at 25.",
    "a0": "Where a starts (Reset set it to 1). The best line has a = 2: try starting at 2 and watch b alone.",
    "lr": "Learning rate: how far each step goes along the (scaled) gradient. Try 10 times larger and "
    "smaller and watch the loss chart.",
    "h": "Finite-difference step: b and a are bumped by this much to estimate the slope. The estimate is "
    "too high by exactly h for b and h*x^2 for a; try 0.001.",
    "beta1": "Weight of the old average of the gradients (momentum). 0 = plain SGD; try 0.5 and 0.99.",
    "beta2": "Weight of the old average of the squared gradients. Try 0.5 and 0.99.",
    "d": "Eve's divisor at reset: steps are divided by d, which follows the loss's relative change.",
    "beta_d": "Weight of the old d when it is updated after each epoch.",
    "eps": "Added to sqrt(v) so that a zero gradient does not divide 0 by 0.",
    "wd": "Weight decay: AdamW shrinks a and b by lr*wd every row, outside the gradient.",
    "m_b0": "Carry: the running average of de/db before row 1. Reset set it to 0, then pasted the last "
    "row's value back here. Try 0 and see how the first epoch changes.",
    "v_b0": "Carry: the running average of (de/db)^2 before row 1. Reset set it to 10000, then pasted the "
    "last row's value back here. Try 10000.",
    "G_b0": "Carry: the gradient size (root of the summed squares / 29) the first epoch's step size lr/G "
    "uses. Reset set it to 10000 (adagrad_ann: 1e6) and adagrad pasted the epoch's own back.",
    "expected0": "The previous epoch's expected step before the first epoch (Reset set 100); the first epoch "
    "must not expect more than twice it.",
}
HELP.update(
    {
        k.replace("_b", "_a"): v.replace("de/db", "de/da")
        for k, v in HELP.items()
        if k.endswith("_b0")
    }
)


def _name(sheet: str, key: str) -> str:
    return f"{sheet}_{key}"


@dataclass(frozen=True)
class _Grid:
    """Where one sheet's cells are: row-table and per-epoch-table column letters, input names."""

    cols: dict[str, str]
    ecols: dict[str, str]
    names: dict[str, str]  # input key ("lr", "m_b0", ...) -> defined name

    def epoch_cell(self, col: str, epoch: int) -> str:  # absolute: every row of the epoch reads it
        return book.pin(f"{self.ecols[col]}{HEAD + epoch}")


@dataclass(frozen=True)
class Row:
    """One row of a sheet for one parameter (b or a): the cells its formulas name.

    Notebook 02.
    """

    grid: _Grid
    index: int  # 0-based over all EPOCHS * N rows
    param: str  # "b" or "a"

    @property
    def r(self) -> int:
        return FIRST + self.index

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def epoch(self) -> int:
        return self.index // N + 1

    @property
    def g(self) -> str:  # de/db or de/da
        return self.cell(f"de_d{self.param}")

    @property
    def lr(self) -> str:  # the annealed sheets carry lr in a column; the others read the input
        return self.cell("lr") if "lr" in self.grid.cols else self.name("lr")

    def cell(self, col: str) -> str:  # this row's cell of `col` ("d", "m_b", ...)
        return f"{self.grid.cols[col]}{self.r}"

    def mine(self, extra: str) -> str:  # this row's "m" for this parameter: m_b or m_a
        return self.cell(f"{extra}_{self.param}")

    def above(self, extra: str) -> str:  # the row above's; on the first row the carry Reset left
        carry = f"{extra}_{self.param}0"
        if self.first and carry in self.grid.names:
            return self.grid.names[carry]
        return f"{self.grid.cols[f'{extra}_{self.param}']}{self.r - 1}"

    def name(self, key: str) -> str:
        return self.grid.names[key]

    def per_epoch(self, col: str) -> str:  # this epoch's "G" for this parameter: G_b or G_a
        return self.grid.epoch_cell(f"{col}_{self.param}", self.epoch)


@dataclass(frozen=True)
class Epoch:
    """One epoch of a sheet: the cells its per-epoch formulas name.

    Notebook 02.
    """

    grid: _Grid
    epoch: int

    def at(self, col: str, epoch: int | None = None) -> str:  # default: this epoch
        return self.grid.epoch_cell(col, self.epoch if epoch is None else epoch)

    def block(self, col: str) -> str:  # this epoch's N cells of a row-table column
        top = FIRST + (self.epoch - 1) * N
        return f"{self.grid.cols[col]}{top}:{self.grid.cols[col]}{top + N - 1}"

    def last(self, col: str) -> str:  # a row-table column on this epoch's last row
        return f"{self.grid.cols[col]}{FIRST + self.epoch * N - 1}"

    def name(self, key: str) -> str:
        return self.grid.names[key]


# ---- the row every sheet shares: graddesc.row_grads and graddesc.finite_differences


def _shared_row(c: Row) -> dict[str, object]:
    # graddesc.row_grads: pred = b + a*x, err = (pred - y)^2, de/db = 2(pred - y), de/da = x de/db.
    i, C, r = c.index % N, c.grid.cols, c.r
    start = {p: f"={c.name(p + '0')}" if c.first else f"={C['new_' + p]}{r - 1}" for p in "ba"}
    return {
        "epoch": c.epoch,
        "row": i + 1,
        "x": float(graddesc.X[i]),
        "y": float(graddesc.Y[i]),
        **start,
        "y_pred": f"={C['b']}{r}+{C['a']}{r}*{C['x']}{r}",
        "err2": f"=({C['y_pred']}{r}-{C['y']}{r})^2",
        "de_db": f"=2*({C['y_pred']}{r}-{C['y']}{r})",
        "de_da": f"={C['x']}{r}*{C['de_db']}{r}",
    }


def _finite_differences(c: Row) -> dict[str, str]:
    # graddesc.finite_differences: bump b, then a, by h and difference the squared errors.
    C, r, h = c.grid.cols, c.r, c.name("h")
    return {
        "errb1": f"=({C['b']}{r}+{h}+{C['a']}{r}*{C['x']}{r}-{C['y']}{r})^2",
        "est_de_db": f"=({C['errb1']}{r}-{C['err2']}{r})/{h}",
        "erra1": f"=({C['b']}{r}+({C['a']}{r}+{h})*{C['x']}{r}-{C['y']}{r})^2",
        "est_de_da": f"=({C['erra1']}{r}-{C['err2']}{r})/{h}",
    }


# ---- per-row rules, each beside the name of its twin in lesson5.graddesc: (this row's
# formulas of the per-parameter extras, keyed "m", "v", ...; the step that new_b/new_a subtract)

Step = tuple[dict[str, str], str]


def _sgd(c: Row) -> Step:
    # graddesc._sgd: step = lr g
    return {}, f"{c.lr}*{c.g}"


def _momentum(c: Row) -> Step:
    # graddesc._momentum: m <- beta1 m + (1 - beta1) g; step = lr m
    b1 = c.name("beta1")
    return {"m": f"={b1}*{c.above('m')}+(1-{b1})*{c.g}"}, f"{c.lr}*{c.mine('m')}"


def _adagrad(c: Row) -> Step:
    # graddesc._adagrad: step = (lr / G) g, G from the per-epoch table
    return {"step": f"={c.lr}/{c.per_epoch('G')}"}, f"{c.mine('step')}*{c.g}"


def _rmsprop(c: Row) -> Step:
    # graddesc._rmsprop: v <- beta2 v + (1 - beta2) g^2; step = lr g / sqrt(the row above's v)
    b2, v_above = c.name("beta2"), c.above("v")
    return {"v": f"={b2}*{v_above}+(1-{b2})*{c.g}^2"}, f"{c.lr}*{c.g}/SQRT({v_above})"


def _adam(c: Row) -> Step:
    # graddesc._adam: m and v as momentum and rmsprop; step = lr m / sqrt(v) / d (eve's d, else 1)
    b1, b2 = c.name("beta1"), c.name("beta2")
    divide_by_d = f"/{c.cell('d')}" if "d" in c.grid.cols else ""
    m = f"={b1}*{c.above('m')}+(1-{b1})*{c.g}"
    v = f"={b2}*{c.above('v')}+(1-{b2})*{c.g}^2"
    return {"m": m, "v": v}, f"{c.lr}*{c.mine('m')}/SQRT({c.mine('v')}){divide_by_d}"


def _adamw(c: Row) -> Step:
    # graddesc._adamw: m, v from zero; step = lr wd p + lr mhat / (sqrt(vhat) + eps),
    # bias-corrected with t = the row's count over all epochs
    b1, b2, t = c.name("beta1"), c.name("beta2"), c.index + 1
    m = f"=(1-{b1})*{c.g}" if c.first else f"={b1}*{c.above('m')}+(1-{b1})*{c.g}"
    v = f"=(1-{b2})*{c.g}^2" if c.first else f"={b2}*{c.above('v')}+(1-{b2})*{c.g}^2"
    step = (
        f"{c.lr}*{c.name('wd')}*{c.cell(c.param)}+{c.lr}*({c.mine('m')}/(1-{b1}^{t}))"
        f"/(SQRT({c.mine('v')}/(1-{b2}^{t}))+{c.name('eps')})"
    )
    return {"m": m, "v": v}, step


# ---- once-per-epoch rules, beside their twins' names: {per-epoch column: formula or value}


def _adagrad_epoch(c: Epoch) -> dict[str, object]:
    # graddesc._adagrad_epoch: the next epoch's G is this epoch's ||g|| / N; epoch 1's is the carry.
    out: dict[str, object] = {}
    for p in "ba":
        out[f"G_new_{p}"] = f"=SQRT(SUMSQ({c.block('de_d' + p)}))/{N}"
        previous = c.name(f"G_{p}0") if c.epoch == 1 else c.at(f"G_new_{p}", c.epoch - 1)
        out[f"G_{p}"] = f"={previous}"
    return out


def _adagrad_ann_epoch(c: Epoch) -> dict[str, object]:
    # graddesc._adagrad_ann_epoch and _adagrad_ann_redo. The Run macro's "while the expected step
    # > limit: halve lr" reruns the epoch each time, which no formula can do: its count of
    # halvings is an input (HALVINGS_INPUT), the rest formulas.
    prev_lr = c.name("lr") if c.epoch == 1 else c.at("lr", c.epoch - 1)
    prev_expected = c.name("expected0") if c.epoch == 1 else c.at("expected", c.epoch - 1)
    return {
        **_adagrad_epoch(c),
        "halvings": _halvings()[c.epoch - 1],
        "lr": f"={prev_lr}/2^{c.at('halvings')}",
        "ratio": f"={c.at('G_new_b')}/{c.at('G_b')}+{c.at('G_new_a')}/{c.at('G_a')}",
        "expected": f"={c.at('lr')}*{c.at('ratio')}",
        "limit": f"=2*{prev_expected}",
    }


def _eve_epoch(c: Epoch) -> dict[str, object]:
    # graddesc._eve_epoch: f1, f2 the last two losses (Reset: this epoch's and half of it);
    # d <- beta_d d + (1 - beta_d) |f1 - f2| / min(f1, f2) with the previous epoch's f1, f2.
    f2 = f"={c.at('rmse', 1)}/2" if c.epoch == 1 else f"={c.at('rmse', c.epoch - 1)}"
    if c.epoch == 1:
        d = f"={c.name('d')}"
    else:
        f1_, f2_, beta_d = c.at("f1", c.epoch - 1), c.at("f2", c.epoch - 1), c.name("beta_d")
        d = f"={beta_d}*{c.at('d', c.epoch - 1)}+(1-{beta_d})*ABS({f1_}-{f2_})/MIN({f1_},{f2_})"
    return {"f1": f"={c.at('rmse')}", "f2": f2, "d": d}


def _adam_ann_epoch(c: Epoch) -> dict[str, object]:
    # graddesc._adam_ann_epoch: lr / 4 once sqrt(v_b) + sqrt(v_a) more than doubles its best,
    # best the smallest so far (Reset sets it from the first epoch, so epoch 2 keeps lr).
    best = (
        f"={c.at('size', 1)}"
        if c.epoch == 1
        else f"=MIN({c.at('best', c.epoch - 1)},{c.at('size')})"
    )
    if c.epoch <= 2:
        lr = f"={c.name('lr')}" if c.epoch == 1 else f"={c.at('lr', 1)}"
    else:
        prev = c.at("lr", c.epoch - 1)
        lr = f"=IF({c.at('size', c.epoch - 1)}>2*{c.at('best', c.epoch - 2)},{prev}/4,{prev})"
    return {"size": f"=SQRT({c.last('v_b')})+SQRT({c.last('v_a')})", "best": best, "lr": lr}


@dataclass(frozen=True)
class Formulas:
    """One sheet's rule as workbook formulas: per row and parameter, and once per epoch.

    Notebook 02.
    """

    row: Callable[[Row], Step]
    epoch: Callable[[Epoch], dict[str, object]] | None = None
    epoch_cols: tuple[str, ...] = ()  # per-epoch table columns after "epoch" and "rmse"


_G_COLS = ("G_b", "G_a", "G_new_b", "G_new_a")
# Keyed and ordered as graddesc.SHEETS, whose entries hold the same rules in Python
# (tests/test_excel_graddesc.py checks that each function has its twin's name).
FORMULAS: dict[str, Formulas] = {
    "basic": Formulas(_sgd),
    "momentum": Formulas(_momentum),
    "adagrad": Formulas(_adagrad, _adagrad_epoch, _G_COLS),
    "rmsprop": Formulas(_rmsprop),
    "adam": Formulas(_adam),
    "eve": Formulas(_adam, _eve_epoch, ("d", "f1", "f2")),
    "adagrad_ann": Formulas(
        _adagrad, _adagrad_ann_epoch, _G_COLS + ("halvings", "lr", "ratio", "expected", "limit")
    ),
    "adam_ann": Formulas(_adam, _adam_ann_epoch, ("lr", "size", "best")),
    "adamw": Formulas(_adamw),
}
HALVINGS_INPUT = "halvings"  # the one per-epoch cell a student types (see _adagrad_ann_epoch)


def _epoch_cols(name: str) -> list[str]:
    return ["epoch", "rmse", *FORMULAS[name].epoch_cols]


def _inputs(wb: Workbook, ws: Worksheet, name: str) -> dict[str, str]:
    # The yellow named inputs, four to a row: start point, lr and betas, then the carries.
    state = graddesc.reset(name)
    inputs = [("b0", "b at reset", state["b"]), ("a0", "a at reset", state["a"])]
    inputs += [(k, label, state.get(k, EXTRA_INPUTS.get(k))) for k, label in INPUTS[name]]
    inputs += [
        (key, label, state[k] if i is None else state[k][i])
        for k, i, key, label in CARRIES.get(name, [])
    ]
    for i, (key, label, value) in enumerate(inputs):
        row = 3 + i // 4
        col = 1 + 3 * (i % 4)
        ws.cell(row, col, label)
        ws.cell(row, col + 1, float(value))
        # "General" shows an lr of 0.0001 as typed; carries get a readable format.
        fmt = book.readable_format([value]) if key in CARRY_KEYS else "General"
        book.style(ws, book.addr(col + 1, row), "input", fmt)
        book.define_name(wb, _name(name, key), book.ref(ws, book.addr(col + 1, row)))
        if key in HELP:
            book.comment(ws, book.addr(col + 1, row), HELP[key])
    return {key: _name(name, key) for key, _, _ in inputs}


def _rows(ws: Worksheet, name: str, grid: _Grid) -> None:
    sheet, rule = graddesc.SHEETS[name], FORMULAS[name].row
    for k in range(EPOCHS * N):
        c = Row(grid, k, "b")
        f = _shared_row(c)
        if sheet.finite_differences:
            f.update(_finite_differences(c))
        for key in sheet.epoch_extras:  # constant within an epoch: read from the per-epoch table
            f[key] = f"={grid.epoch_cell(key, c.epoch)}"
        for p in "ba":
            extras, step = rule(Row(grid, k, p))
            f.update({f"{extra}_{p}": formula for extra, formula in extras.items()})
            f[f"new_{p}"] = f"={c.cell(p)}-({step})"
        for col, letter in grid.cols.items():
            ws[f"{letter}{c.r}"] = f[col]
        book.style(ws, c.cell("err2"), "loss")


def _epochs(ws: Worksheet, name: str, grid: _Grid) -> None:
    rule = FORMULAS[name].epoch
    for epoch in range(1, EPOCHS + 1):
        r = HEAD + epoch
        ws[f"{grid.ecols['epoch']}{r}"] = epoch
        ws[f"{grid.ecols['rmse']}{r}"] = f"=SQRT(SUM({Epoch(grid, epoch).block('err2')}))"
        book.style(ws, f"{grid.ecols['rmse']}{r}", "loss")
        for col, value in (rule(Epoch(grid, epoch)) if rule else {}).items():
            ws[f"{grid.ecols[col]}{r}"] = value
            if col == HALVINGS_INPUT:
                book.style(ws, f"{grid.ecols[col]}{r}", "input")


def _sheet(wb: Workbook, name: str) -> None:
    ws = wb.create_sheet(name)
    book.title(ws, "A1", f"{name}: {graddesc.SHEETS[name].doc}")
    book.note(
        ws,
        "A2",
        "Yellow cells are inputs (named); every other number is a formula. "
        "Each row reads the row above; 5 epochs of 29 rows one under the other.",
    )
    names = _inputs(wb, ws, name)
    cols, ep_cols = graddesc.columns(name), _epoch_cols(name)
    e0 = len(cols) + 2  # first column of the per-epoch table
    grid = _Grid(
        {c: get_column_letter(i + 1) for i, c in enumerate(cols)},
        {c: get_column_letter(e0 + i) for i, c in enumerate(ep_cols)},
        names,
    )
    for i, c in enumerate(cols):
        book.header(ws, book.addr(i + 1, HEAD), c)
    for i, c in enumerate(ep_cols):
        book.header(ws, book.addr(e0 + i, HEAD), c)
    if HALVINGS_INPUT in ep_cols:
        book.note(
            ws,
            book.addr(e0, HEAD - 2),
            "halvings (yellow): how often the Run macro halved lr and reran the epoch until "
            "its expected step was at most the limit (twice the previous one's)",
        )
    _rows(ws, name, grid)
    _epochs(ws, name, grid)
    _chart(ws, name, e0)
    book.freeze(ws, book.addr(1, FIRST))
    needed = _formats(ws, name, grid.cols, grid.ecols)
    _comments(ws, name, grid.cols, grid.ecols)
    book.fit_widths(ws, range(1, e0 + len(ep_cols)), skip_rows=(1, 2, HEAD - 2))
    for letter, width in needed.items():  # room for the longest formatted number too
        dim = ws.column_dimensions[letter]
        dim.width = max(dim.width or 0, width)


def _chart(ws: Worksheet, name: str, e0: int) -> None:
    chart = LineChart()
    chart.title, chart.y_axis.title, chart.x_axis.title = f"{name}: loss per epoch", "rmse", "epoch"
    rmse = Reference(ws, min_col=e0 + 1, min_row=HEAD, max_row=HEAD + EPOCHS)
    chart.add_data(rmse, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=e0, min_row=HEAD + 1, max_row=HEAD + EPOCHS))
    chart.height, chart.width = 7, 12
    _straight(chart)
    ws.add_chart(chart, book.addr(e0, HEAD + EPOCHS + 3))


def _straight(chart: LineChart) -> None:
    # Straight segments and a marker at each epoch: a smoothed curve would invent values between epochs.
    chart.smooth = False
    for series in chart.series:
        series.smooth = False
        series.marker.symbol = "circle"
        series.marker.size = 6


def _shown(v: float, fmt: str) -> str:
    # How a number format displays v (for sizing columns): the formats _formats uses.
    if fmt == "0.00E+00":
        return f"{v:.2E}"
    return f"{v:.{len(fmt.split('.')[1]) if '.' in fmt else 0}f}"


def _formats(ws, name: str, C: dict, E: dict) -> dict[str, float]:
    # Number formats chosen from the numbers each column holds (measured on the Python run);
    # returns the width each column needs for its longest formatted number.
    table, state = graddesc.run(name, EPOCHS)
    needed = {}
    for col, letter in C.items():
        fmt = "0" if col in ("epoch", "row", "x", "y") else book.readable_format(table[col])
        for r in range(FIRST, LAST + 1):
            ws[f"{letter}{r}"].number_format = fmt
        needed[letter] = max(len(_shown(v, fmt)) for v in table[col]) + 2
    losses = graddesc.epoch_losses(table)
    for col, letter in E.items():
        fmt = (
            "0"
            if col in ("epoch", "halvings")
            else "0.00E+00"
            if col in ("lr", "expected", "limit")
            else book.readable_format(losses)
            if col in ("rmse", "f1", "f2")
            else "0.0000"
            if col == "d"
            else "0.000"
        )
        for r in range(HEAD + 1, HEAD + EPOCHS + 1):
            ws[f"{letter}{r}"].number_format = fmt
        needed[letter] = 11 if fmt == "0.00E+00" else max(len(_shown(v, fmt)) for v in losses) + 4
    return needed


def _comments(ws, name: str, C: dict, E: dict) -> None:
    # The original's red-triangle notes: what the key cells are and what to try.
    book.comment(
        ws,
        f"{E['rmse']}{HEAD}",
        "The epoch's loss: the square root of the 29 rows' summed squared "
        "errors. The chart below plots it; change the learning rate and watch it move.",
    )
    book.comment(
        ws,
        f"{C['new_a']}{FIRST}",
        "a after this row's step; the next row starts from it. Click it "
        "to read the update rule in the formula bar.",
    )
    book.comment(
        ws,
        f"{C['de_da']}{FIRST}",
        "de/da = x * de/db, the derivative of this row's squared error "
        "(b + a*x - y)^2 with respect to a.",
    )
    if "m_a" in C:
        book.comment(
            ws,
            f"{C['m_a']}{FIRST}",
            "The running average of de/da: beta1 * (the row above's, or the "
            "carry on the first row) + (1 - beta1) * de/da.",
        )
    if "v_a" in C:
        book.comment(
            ws,
            f"{C['v_a']}{FIRST}",
            "The running average of (de/da)^2. Its square root scales the step: "
            "a parameter with big gradients takes smaller steps.",
        )
    if "G_b" in E:
        book.comment(
            ws,
            f"{E['G_b']}{HEAD}",
            "The step size of an epoch is lr / G: G is the previous epoch's "
            "gradient size (root of the summed squares / 29); epoch 1 uses the carry.",
        )
    if "halvings" in E:
        book.comment(
            ws,
            f"{E['halvings']}{HEAD}",
            "How often the Run macro halved lr before the epoch was kept "
            "(its expected step at most the limit). A formula cannot rerun an epoch, so this is typed "
            "in: set one to 0 and see the expected step break its limit.",
        )
    if "d" in E:
        book.comment(
            ws,
            f"{E['d']}{HEAD}",
            "Eve divides every step by d; after each epoch d moves towards the "
            "loss's relative change |f1 - f2| / min(f1, f2).",
        )


@functools.cache
def _halvings() -> tuple[int, ...]:
    # How often the annealed adagrad halved lr before each epoch was accepted (Python's run):
    # each epoch's lr is the last one / 2^k.
    table = graddesc.run("adagrad_ann", EPOCHS)[0]
    lrs = [graddesc.reset("adagrad_ann")["lr"]] + table.groupby("epoch").lr.first().tolist()
    return tuple(round(math.log2(prev / cur)) for prev, cur in zip(lrs, lrs[1:]))


def epoch_cell(name: str, column: str, epoch: int) -> str:
    """Address of a per-epoch table cell (e.g. 'rmse') on a sheet: what the tests read back.

    Notebook 02.
    """
    col = len(graddesc.columns(name)) + 2 + _epoch_cols(name).index(column)
    return book.addr(col, HEAD + epoch)


def row_cell(name: str, column: str, index: int) -> str:
    """Address of the row table's `column` for the 0-based row `index` (epoch-major).

    Notebook 02.
    """
    return book.addr(graddesc.columns(name).index(column) + 1, FIRST + index)


def build() -> Workbook:
    """The whole workbook in memory: one sheet per rule, then `losses` with every rule's loss.

    Notebook 02.
    """
    wb = Workbook()
    wb.remove(wb.active)
    for name in graddesc.SHEETS:
        _sheet(wb, name)
    ws = wb.create_sheet("losses")
    book.title(ws, "A1", "Loss (rmse) per epoch, every rule")
    book.header(ws, "A3", "epoch")
    for epoch in range(1, EPOCHS + 1):
        ws.cell(3 + epoch, 1, epoch)
    for j, name in enumerate(graddesc.SHEETS, start=2):
        book.header(ws, book.addr(j, 3), name)
        for epoch in range(1, EPOCHS + 1):
            ws.cell(3 + epoch, j, f"={book.ref(name, epoch_cell(name, 'rmse', epoch))}")
    chart = LineChart()
    chart.title, chart.y_axis.title, chart.x_axis.title = (
        "every rule: loss per epoch",
        "rmse",
        "epoch",
    )
    chart.add_data(
        Reference(ws, min_col=2, max_col=1 + len(graddesc.SHEETS), min_row=3, max_row=3 + EPOCHS),
        titles_from_data=True,
    )
    chart.set_categories(Reference(ws, min_col=1, min_row=4, max_row=3 + EPOCHS))
    chart.height, chart.width = 9, 16
    _straight(chart)
    ws.add_chart(chart, "A11")
    for r in range(4, 4 + EPOCHS):
        for j in range(2, 2 + len(graddesc.SHEETS)):
            ws.cell(r, j).number_format = "0.00"
    book.fit_widths(ws, range(1, 2 + len(graddesc.SHEETS)), skip_rows=(1,))
    return wb


def write(path: str | os.PathLike) -> Path:
    """Write graddesc.xlsx to `path` atomically; return the path.

    Notebook 02.

    `python -m lesson5 excel` writes it through `lesson5.excel.write_all`.
    """
    return book.save_atomic(build(), path)
