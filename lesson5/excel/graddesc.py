"""`graddesc.xlsx`: every sheet of the gradient-descent spreadsheet as live formulas.

Notebook 02.

One sheet per rule of `lesson5.graddesc`, same columns and rows, 5 epochs one under the other;
inputs and Reset's carries are yellow named cells (`adam_lr`, `adam_m_b0`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from lesson5 import graddesc
from lesson5.excel import book
from lesson5.excel.notes import HELP, LABELS, NOTES

FILENAME = "graddesc.xlsx"
EPOCHS = 5
HEAD = 9  # header row of the row table; rows start below it
N = len(graddesc.X)
FIRST = HEAD + 1

EXTRA_INPUTS = {"h": graddesc.FD_STEP, "beta_d": 0.9}  # inputs the Python state does not hold


@dataclass(frozen=True)
class _Grid:
    cols: dict[str, str]  # row-table column letters
    ecols: dict[str, str]  # per-epoch-table column letters
    names: dict[str, str]  # input key ("lr", "m_b0", ...) -> defined name

    def epoch_cell(self, col: str, epoch: int) -> str:  # absolute: every row of the epoch reads it
        return book.pin(f"{self.ecols[col]}{HEAD + epoch}")


@dataclass(frozen=True)
class _Cells:
    grid: _Grid

    def name(self, key: str) -> str:  # an input's defined name
        return self.grid.names[key]


@dataclass(frozen=True)
class Row(_Cells):
    """One row of a sheet for one parameter (b or a): the cells its formulas name."""

    index: int  # 0-based over all EPOCHS * N rows
    param: str  # "b" or "a"

    r = property(lambda self: FIRST + self.index)  # the sheet row
    first = property(lambda self: self.index == 0)
    epoch = property(lambda self: self.index // N + 1)
    g = property(lambda self: self.cell(f"de_d{self.param}"))  # de/db or de/da
    # The annealed sheets carry lr in a column; the others read the input.
    lr = property(lambda self: self.cell("lr") if "lr" in self.grid.cols else self.name("lr"))

    def cell(self, col: str) -> str:  # this row's cell of `col` ("d", "m_b", ...)
        return f"{self.grid.cols[col]}{self.r}"

    def mine(self, extra: str) -> str:  # this row's "m" for this parameter: m_b or m_a
        return self.cell(f"{extra}_{self.param}")

    def above(self, extra: str) -> str:  # the row above's; on the first row the carry Reset left
        carry = f"{extra}_{self.param}0"
        if self.first and carry in self.grid.names:
            return self.grid.names[carry]
        return f"{self.grid.cols[f'{extra}_{self.param}']}{self.r - 1}"

    def per_epoch(self, col: str) -> str:  # this epoch's "G" for this parameter: G_b or G_a
        return self.grid.epoch_cell(f"{col}_{self.param}", self.epoch)


@dataclass(frozen=True)
class Epoch(_Cells):
    """One epoch of a sheet: the cells its per-epoch formulas name."""

    epoch: int

    def at(self, col: str, epoch: int | None = None) -> str:  # default: this epoch
        return self.grid.epoch_cell(col, self.epoch if epoch is None else epoch)

    def block(self, col: str) -> str:  # this epoch's N cells of a row-table column
        top = FIRST + (self.epoch - 1) * N
        return f"{self.grid.cols[col]}{top}:{self.grid.cols[col]}{top + N - 1}"

    def last(self, col: str) -> str:  # a row-table column on this epoch's last row
        return f"{self.grid.cols[col]}{FIRST + self.epoch * N - 1}"


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


# Per-row rules, each named as its twin in lesson5.graddesc, give (this row's formulas of the
# per-parameter extras, keyed "m", "v", ...; the step that new_b/new_a subtract).
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
    prev = c.epoch - 1
    best = f"={c.at('size', 1)}" if prev == 0 else f"=MIN({c.at('best', prev)},{c.at('size')})"
    if c.epoch <= 2:
        lr = f"={c.name('lr')}" if c.epoch == 1 else f"={c.at('lr', 1)}"
    else:
        lr_ = c.at("lr", prev)
        lr = f"=IF({c.at('size', prev)}>2*{c.at('best', prev - 1)},{lr_}/4,{lr_})"
    return {"size": f"=SQRT({c.last('v_b')})+SQRT({c.last('v_a')})", "best": best, "lr": lr}


@dataclass(frozen=True)
class Formulas:
    """One sheet: its rule as workbook formulas (per row and parameter, once per epoch), its inputs."""

    row: Callable[[Row], Step]
    inputs: tuple[str, ...] = ("lr",)  # named inputs after b0 and a0, in display order
    carries: tuple[str, ...] = ()  # what Reset leaves: per-parameter "m", "v", "G"; "expected"
    epoch: Callable[[Epoch], dict[str, object]] | None = None  # {column: formula or value}
    epoch_cols: tuple[str, ...] = ()  # per-epoch table columns after "epoch" and "rmse"


_ADAM = ("lr", "beta1", "beta2")
_G_COLS = ("G_b", "G_a", "G_new_b", "G_new_a")
_ANN = ("halvings", "lr", "ratio", "expected", "limit")
# Keyed and ordered as graddesc.SHEETS, whose entries hold the same rules in Python
# (tests/test_excel_graddesc.py checks that each function has its twin's name).
FORMULAS: dict[str, Formulas] = {
    "basic": Formulas(_sgd, ("lr", "h")),
    "momentum": Formulas(_momentum, ("lr", "beta1"), ("m",)),
    "adagrad": Formulas(_adagrad, carries=("G",), epoch=_adagrad_epoch, epoch_cols=_G_COLS),
    "rmsprop": Formulas(_rmsprop, ("lr", "beta2"), ("v",)),
    "adam": Formulas(_adam, _ADAM, ("m", "v")),
    "eve": Formulas(_adam, (*_ADAM, "d", "beta_d"), ("m", "v"), _eve_epoch, ("d", "f1", "f2")),
    "adagrad_ann": Formulas(
        _adagrad, ("lr",), ("G", "expected"), _adagrad_ann_epoch, _G_COLS + _ANN
    ),
    "adam_ann": Formulas(_adam, _ADAM, ("m", "v"), _adam_ann_epoch, ("lr", "size", "best")),
    "adamw": Formulas(_adamw, (*_ADAM, "eps", "wd")),
}
HALVINGS_INPUT = "halvings"  # the one per-epoch cell a student types (see _adagrad_ann_epoch)
# The widest number each format shows (sizes the columns); _format picks a format by magnitude.
WIDEST = {"0": 99, "0.0": -99999.9, "0.00": -999.99, "0.000": -99.999, "0.0000": -9.9999}
WIDEST["0.00E+00"] = -1.23e-45


def _format(values) -> str:
    # Four digits a student reads at a glance, or 1.23E+07 for the very large and very small.
    mags = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v)) and v != 0]
    big = max(mags, default=1.0)
    if big >= 1e5 or big < 1e-2:
        return "0.00E+00"
    return "0.0" if big >= 1000 else "0.00" if big >= 10 else "0.0000"


def _inputs(wb: Workbook, ws: Worksheet, name: str) -> dict[str, str]:
    spec, state = FORMULAS[name], graddesc.reset(name)
    inputs = [("b0", state["b"]), ("a0", state["a"])]
    inputs += [(k, state.get(k, EXTRA_INPUTS.get(k))) for k in spec.inputs]
    for k in spec.carries:
        pairs = zip("ba", state[k]) if np.ndim(state[k]) else [("", state[k])]
        inputs += [(f"{k}_{p}0" if p else f"{k}0", v) for p, v in pairs]
    names = {}
    for i, (key, value) in enumerate(inputs):
        label = LABELS.get(key, f"{key[:-1]} carry")
        if key == "lr" and "lr" in spec.epoch_cols:
            label += " at reset"
        row, col = 3 + i // 4, 1 + 3 * (i % 4)
        cell = ws.cell(row, col + 1, float(value)).coordinate
        ws.cell(row, col, label)
        # "General" shows an lr of 0.0001 as typed; carries get a readable format.
        is_carry = key not in LABELS or key == "expected0"
        book.style(ws, cell, "input", _format([value]) if is_carry else "General")
        names[key] = book.define_name(wb, f"{name}_{key}", ws, cell)
        if key in HELP:
            book.comment(ws, cell, HELP[key])
    return names


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
    book.put(ws, "A1", f"{name}: {graddesc.SHEETS[name].doc}", "title")
    note = "Yellow cells are inputs (named); every other number is a formula. Each row reads "
    book.put(ws, "A2", note + "the row above; 5 epochs of 29 rows one under the other.", "note")
    names = _inputs(wb, ws, name)
    cols, ep_cols = graddesc.columns(name), ["epoch", "rmse", *FORMULAS[name].epoch_cols]
    e0 = len(cols) + 2  # first column of the per-epoch table
    grid = _Grid(
        {c: get_column_letter(i + 1) for i, c in enumerate(cols)},
        {c: get_column_letter(e0 + i) for i, c in enumerate(ep_cols)},
        names,
    )
    for first, heads in ((1, cols), (e0, ep_cols)):
        for i, c in enumerate(heads):
            book.put(ws, ws.cell(HEAD, first + i).coordinate, c, "header")
    # The two tables, headers included, and the loss column, as names the tests and `losses` read.
    book.define_name(wb, f"{name}_rows", ws, book.span(1, HEAD, EPOCHS * N + 1, len(cols)))
    book.define_name(wb, f"{name}_epochs", ws, book.span(e0, HEAD, EPOCHS + 1, len(ep_cols)))
    book.define_name(wb, f"{name}_rmse", ws, book.span(e0 + 1, FIRST, EPOCHS))
    if HALVINGS_INPUT in ep_cols:
        note = "halvings (yellow): how often the Run macro halved lr and reran the epoch until its "
        note += "expected step was at most the limit (twice the previous one's)"
        book.put(ws, ws.cell(HEAD - 2, e0).coordinate, note, "note")
    _rows(ws, name, grid)
    _epochs(ws, name, grid)
    at = ws.cell(HEAD + EPOCHS + 3, e0).coordinate
    _chart(ws, f"{name}: loss per epoch", e0 + 1, HEAD, 1, (7, 12), at)
    ws.freeze_panes = f"A{FIRST}"
    _formats(ws, name, grid.cols, grid.ecols)
    for table, col, note in NOTES:  # the original's notes, where this sheet has the column
        letters, row = (grid.cols, FIRST) if table == "C" else (grid.ecols, HEAD)
        if col in letters:
            book.comment(ws, f"{letters[col]}{row}", note)
    book.fit_columns(ws, WIDEST, minimum=8)


def _chart(ws: Worksheet, title: str, col: int, row: int, n: int, size: tuple, at: str) -> None:
    # The loss of `n` rules (columns from `col`, header on `row`) against the epochs on their
    # left; straight segments and a marker each epoch: a smoothed curve would invent values.
    chart = LineChart()
    chart.title, chart.y_axis.title, chart.x_axis.title = title, "rmse", "epoch"
    data = Reference(ws, min_col=col, max_col=col + n - 1, min_row=row, max_row=row + EPOCHS)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=col - 1, min_row=row + 1, max_row=row + EPOCHS))
    chart.height, chart.width = size
    chart.smooth = False
    for series in chart.series:
        series.smooth = False
        series.marker.symbol = "circle"
        series.marker.size = 6
    ws.add_chart(chart, at)


def _formats(ws: Worksheet, name: str, C: dict, E: dict) -> None:
    table, _ = graddesc.run(name, EPOCHS)
    for col, letter in C.items():
        fmt = "0" if col in ("epoch", "row", "x", "y") else _format(table[col])
        for r in range(FIRST, FIRST + EPOCHS * N):
            ws[f"{letter}{r}"].number_format = fmt
    losses = _format(graddesc.epoch_losses(table))
    fixed = dict(epoch="0", halvings="0", d="0.0000", rmse=losses, f1=losses, f2=losses)
    fixed |= dict.fromkeys(("lr", "expected", "limit"), "0.00E+00")
    for col, letter in E.items():
        for r in range(HEAD + 1, HEAD + EPOCHS + 1):
            ws[f"{letter}{r}"].number_format = fixed.get(col, "0.000")


@functools.cache
def _halvings() -> tuple[int, ...]:
    # How often the annealed adagrad halved lr before each epoch was accepted (Python's run):
    # each epoch's lr is the last one / 2^k.
    table = graddesc.run("adagrad_ann", EPOCHS)[0]
    lrs = [graddesc.reset("adagrad_ann")["lr"]] + table.groupby("epoch").lr.first().tolist()
    return tuple(round(math.log2(prev / cur)) for prev, cur in zip(lrs, lrs[1:]))


def build() -> Workbook:
    """The whole workbook in memory: one sheet per rule, then `losses` with every rule's loss."""
    wb = Workbook()
    wb.remove(wb.active)
    for name in graddesc.SHEETS:
        _sheet(wb, name)
    ws = wb.create_sheet("losses")
    book.put(ws, "A1", "Loss (rmse) per epoch, every rule", "title")
    book.put(ws, "A3", "epoch", "header")
    for epoch in range(1, EPOCHS + 1):
        ws.cell(3 + epoch, 1, epoch)
    for j, name in enumerate(graddesc.SHEETS, start=2):
        book.put(ws, ws.cell(3, j).coordinate, name, "header")
        for epoch in range(1, EPOCHS + 1):
            ws.cell(3 + epoch, j, f"=INDEX({name}_rmse,{epoch})").number_format = "0.00"
    book.define_name(wb, "losses", ws, book.span(1, 3, EPOCHS + 1, 1 + len(graddesc.SHEETS)))
    _chart(ws, "every rule: loss per epoch", 2, 3, len(graddesc.SHEETS), (9, 16), "A11")
    book.fit_columns(ws, WIDEST, minimum=8)
    return wb


def write(path: str | os.PathLike) -> Path:
    """Write graddesc.xlsx to `path` atomically; return the path."""
    return book.save_atomic(build(), path)
