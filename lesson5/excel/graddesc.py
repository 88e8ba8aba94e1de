"""`graddesc.xlsx`: every sheet of the gradient-descent spreadsheet as live formulas (notebook 02).

One worksheet per rule of `lesson5.graddesc`, same columns, same row order. Each row's a and b
read the row above (so each epoch's first row reads the previous epoch's last: the five epochs
the Run macro would have done lie one under the other). Learning rates, betas and the start
(a, b) are named input cells (yellow), e.g. `adam_lr`, `adam_beta1`. The carries the first row starts from (momentum's m,
rmsprop's v, adam's m and v, adagrad's G) are yellow named cells too, holding what each sheet's
Reset macro left there (`lesson5.graddesc.reset`), so the first epoch is the original's after
Reset; cell comments say what a cell is and what to try. To the right of the rows,
a per-epoch table holds what changes once per epoch (loss, adagrad's G, annealed lr, eve's d)
and a line chart of the loss. The one thing no formula can do is the annealed adagrad's rerun of
an epoch after each halving of lr, so there the number of halvings per epoch is an input cell,
next to the expected step and the limit it had to meet. A last sheet, `losses`, puts every rule's loss on one chart.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.utils import get_column_letter

from lesson5 import graddesc
from lesson5.excel import book

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
    "eve": [("lr", "learning rate"), ("beta1", "beta1 (gradients)"), ("beta2", "beta2 (squares)"),
            ("d", "d at reset"), ("beta_d", "beta of d")],
    "adagrad_ann": [("lr", "learning rate at reset")],
    "adam_ann": [("lr", "learning rate at reset"), ("beta1", "beta1 (gradients)"), ("beta2", "beta2 (squares)")],
    "adamw": [("lr", "learning rate"), ("beta1", "beta1 (gradients)"), ("beta2", "beta2 (squares)"),
              ("eps", "eps"), ("wd", "weight decay")],
}
EXTRA_INPUTS = {"h": graddesc.FD_STEP, "beta_d": 0.9}
# The carries Reset leaves (state key, per-parameter index or None, input key, label).
CARRIES = {
    "momentum": [("m", 0, "m_b0", "m_b carry"), ("m", 1, "m_a0", "m_a carry")],
    "adagrad": [("G", 0, "G_b0", "G_b carry"), ("G", 1, "G_a0", "G_a carry")],
    "rmsprop": [("v", 0, "v_b0", "v_b carry"), ("v", 1, "v_a0", "v_a carry")],
    "adagrad_ann": [("G", 0, "G_b0", "G_b carry"), ("G", 1, "G_a0", "G_a carry"),
                    ("expected", None, "expected0", "expected step before")],
}
for _n in ("adam", "eve", "adam_ann"):
    CARRIES[_n] = [("m", 0, "m_b0", "m_b carry"), ("m", 1, "m_a0", "m_a carry"),
                   ("v", 0, "v_b0", "v_b carry"), ("v", 1, "v_a0", "v_a carry")]
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
HELP.update({k.replace("_b", "_a"): v.replace("de/db", "de/da") for k, v in HELP.items() if k.endswith("_b0")})
# Per-epoch table columns (after epoch and rmse) for the sheets with once-per-epoch rules.
EPOCH_COLS = {
    "adagrad": ["G_b", "G_a", "G_new_b", "G_new_a"],
    "adagrad_ann": ["G_b", "G_a", "G_new_b", "G_new_a", "halvings", "lr", "ratio", "expected", "limit"],
    "eve": ["d", "f1", "f2"],
    "adam_ann": ["lr", "size", "best"],
}


def _name(sheet: str, key: str) -> str:
    return f"{sheet}_{key}"


def _sheet(wb: Workbook, name: str) -> None:
    ws = wb.create_sheet(name)
    state = graddesc.reset(name)
    book.title(ws, "A1", f"{name}: {graddesc.SHEETS[name].doc}")
    book.note(ws, "A2", "Yellow cells are inputs (named); every other number is a formula. "
                        "Each row reads the row above; 5 epochs of 29 rows one under the other.")
    # Inputs: the start point, then the sheet's learning rate and betas.
    inputs = [("b0", "b at reset", state["b"]), ("a0", "a at reset", state["a"])]
    inputs += [(k, label, state.get(k, EXTRA_INPUTS.get(k))) for k, label in INPUTS[name]]
    inputs += [(key, label, state[k] if i is None else state[k][i]) for k, i, key, label in CARRIES.get(name, [])]
    for i, (key, label, value) in enumerate(inputs):
        row = 3 + i // 4
        col = 1 + 3 * (i % 4)
        ws.cell(row, col, label)
        ws.cell(row, col + 1, float(value))
        fmt = book.readable_format([value]) if key in CARRY_KEYS else "General"  # lr 0.0001 reads as typed
        book.style(ws, book.addr(col + 1, row), "input", fmt)
        book.define_name(wb, _name(name, key), book.ref(ws, book.addr(col + 1, row)))
        if key in HELP:
            book.comment(ws, book.addr(col + 1, row), HELP[key])
    nm = {key: _name(name, key) for key, _, _ in inputs}

    cols = graddesc.columns(name)
    C = {c: get_column_letter(i + 1) for i, c in enumerate(cols)}
    ep_cols = ["epoch", "rmse"] + EPOCH_COLS.get(name, [])
    E0 = len(cols) + 2  # first column of the per-epoch table
    E = {c: get_column_letter(E0 + i) for i, c in enumerate(ep_cols)}
    for i, c in enumerate(cols):
        book.header(ws, book.addr(i + 1, HEAD), c)
    for i, c in enumerate(ep_cols):
        book.header(ws, book.addr(E0 + i, HEAD), c)
    if name == "adagrad_ann":
        halvings = _halvings(graddesc.run(name, EPOCHS)[0])
        book.note(ws, book.addr(E0, HEAD - 2), "halvings (yellow): how often the Run macro halved lr and "
                  "reran the epoch until its expected step was at most the limit (twice the previous one's)")

    def e(col: str, epoch: int) -> str:  # a cell of the per-epoch table, absolute
        return f"${E[col]}${HEAD + epoch}"

    def block(col: str, epoch: int) -> str:  # one epoch's 29 cells of a row-table column
        top = FIRST + (epoch - 1) * N
        return f"{C[col]}{top}:{C[col]}{top + N - 1}"

    for k in range(EPOCHS * N):
        r, epoch, i = FIRST + k, k // N + 1, k % N
        p = r - 1  # the row above
        first = k == 0
        f = {"epoch": epoch, "row": i + 1, "x": float(graddesc.X[i]), "y": float(graddesc.Y[i])}
        f["b"] = f"={nm['b0']}" if first else f"={C['new_b']}{p}"
        f["a"] = f"={nm['a0']}" if first else f"={C['new_a']}{p}"
        f["y_pred"] = f"={C['b']}{r}+{C['a']}{r}*{C['x']}{r}"
        f["err2"] = f"=({C['y_pred']}{r}-{C['y']}{r})^2"
        f["de_db"] = f"=2*({C['y_pred']}{r}-{C['y']}{r})"
        f["de_da"] = f"={C['x']}{r}*{C['de_db']}{r}"
        if name == "basic":
            f["errb1"] = f"=({C['b']}{r}+{nm['h']}+{C['a']}{r}*{C['x']}{r}-{C['y']}{r})^2"
            f["est_de_db"] = f"=({C['errb1']}{r}-{C['err2']}{r})/{nm['h']}"
            f["erra1"] = f"=({C['b']}{r}+({C['a']}{r}+{nm['h']})*{C['x']}{r}-{C['y']}{r})^2"
            f["est_de_da"] = f"=({C['erra1']}{r}-{C['err2']}{r})/{nm['h']}"
        lr = f"{C['lr']}{r}" if "lr" in C else nm["lr"]
        if name in ("eve", "adagrad_ann", "adam_ann"):
            key = "d" if name == "eve" else "lr"
            f[key] = f"={e(key, epoch)}"
        for pb in "ba":
            g, m, v = f"{C['de_d' + pb]}{r}", f"m_{pb}", f"v_{pb}"
            step = f"{lr}*{g}"
            mp = nm[f"m_{pb}0"] if first and f"m_{pb}0" in nm else f"{C.get(m)}{p}"  # the carry on row 1
            vp = nm[f"v_{pb}0"] if first and f"v_{pb}0" in nm else f"{C.get(v)}{p}"
            if name == "momentum":
                f[m] = f"={nm['beta1']}*{mp}+(1-{nm['beta1']})*{g}"
                step = f"{lr}*{C[m]}{r}"
            elif name in ("adagrad", "adagrad_ann"):
                f[f"step_{pb}"] = f"={lr}/{e('G_' + pb, epoch)}"
                step = f"{C['step_' + pb]}{r}*{g}"
            elif name == "rmsprop":
                f[v] = f"={nm['beta2']}*{vp}+(1-{nm['beta2']})*{g}^2"
                step = f"{lr}*{g}/SQRT({vp})"
            elif name in ("adam", "eve", "adam_ann"):
                f[m] = f"={nm['beta1']}*{mp}+(1-{nm['beta1']})*{g}"
                f[v] = f"={nm['beta2']}*{vp}+(1-{nm['beta2']})*{g}^2"
                step = f"{lr}*{C[m]}{r}/SQRT({C[v]}{r})" + (f"/{C['d']}{r}" if name == "eve" else "")
            elif name == "adamw":  # from zero, with bias correction: t is the row's overall index
                t = k + 1
                f[m] = f"=(1-{nm['beta1']})*{g}" if first else f"={nm['beta1']}*{C[m]}{p}+(1-{nm['beta1']})*{g}"
                f[v] = (f"=(1-{nm['beta2']})*{g}^2" if first
                        else f"={nm['beta2']}*{C[v]}{p}+(1-{nm['beta2']})*{g}^2")
                step = (f"{lr}*{nm['wd']}*{C[pb]}{r}+{lr}*({C[m]}{r}/(1-{nm['beta1']}^{t}))"
                        f"/(SQRT({C[v]}{r}/(1-{nm['beta2']}^{t}))+{nm['eps']})")
            f[f"new_{pb}"] = f"={C[pb]}{r}-({step})"
        for c in cols:
            ws[f"{C[c]}{r}"] = f[c]
        book.style(ws, f"{C['err2']}{r}", "loss")

    for epoch in range(1, EPOCHS + 1):
        r = HEAD + epoch
        ws[f"{E['epoch']}{r}"] = epoch
        ws[f"{E['rmse']}{r}"] = f"=SQRT(SUM({block('err2', epoch)}))"
        book.style(ws, f"{E['rmse']}{r}", "loss")
        if name in ("adagrad", "adagrad_ann"):
            for pb in "ba":
                ws[f"{E['G_new_' + pb]}{r}"] = f"=SQRT(SUMSQ({block('de_d' + pb, epoch)}))/{N}"
                if epoch == 1:  # no previous epoch: the carry Reset left
                    ws[f"{E['G_' + pb]}{r}"] = f"={nm['G_' + pb + '0']}"
                else:
                    ws[f"{E['G_' + pb]}{r}"] = f"={e('G_new_' + pb, epoch - 1)}"
        if name == "adagrad_ann":
            # The Run macro's "while the expected step > limit: halve lr" reruns the epoch each
            # time, which no formula can do: its count of halvings is an input, the rest formulas.
            ws[f"{E['halvings']}{r}"] = halvings[epoch - 1]
            book.style(ws, f"{E['halvings']}{r}", "input")
            prev_lr = nm["lr"] if epoch == 1 else e("lr", epoch - 1)
            ws[f"{E['lr']}{r}"] = f"={prev_lr}/2^{e('halvings', epoch)}"
            ws[f"{E['ratio']}{r}"] = (f"={e('G_new_b', epoch)}/{e('G_b', epoch)}"
                                      f"+{e('G_new_a', epoch)}/{e('G_a', epoch)}")
            ws[f"{E['expected']}{r}"] = f"={e('lr', epoch)}*{e('ratio', epoch)}"
            prev_expected = nm["expected0"] if epoch == 1 else e("expected", epoch - 1)
            ws[f"{E['limit']}{r}"] = f"=2*{prev_expected}"
        if name == "eve":
            # f1, f2: the last two losses after this epoch; Reset stored this epoch's and half of it.
            ws[f"{E['f1']}{r}"] = f"={e('rmse', epoch)}"
            ws[f"{E['f2']}{r}"] = f"={e('rmse', 1)}/2" if epoch == 1 else f"={e('rmse', epoch - 1)}"
            if epoch == 1:
                ws[f"{E['d']}{r}"] = f"={nm['d']}"
            else:
                f1, f2 = e("f1", epoch - 1), e("f2", epoch - 1)
                ws[f"{E['d']}{r}"] = (f"={nm['beta_d']}*{e('d', epoch - 1)}"
                                      f"+(1-{nm['beta_d']})*ABS({f1}-{f2})/MIN({f1},{f2})")
        if name == "adam_ann":
            last = FIRST + epoch * N - 1
            ws[f"{E['size']}{r}"] = f"=SQRT({C['v_b']}{last})+SQRT({C['v_a']}{last})"
            ws[f"{E['best']}{r}"] = (f"={e('size', 1)}" if epoch == 1
                                     else f"=MIN({e('best', epoch - 1)},{e('size', epoch)})")
            if epoch == 1:
                ws[f"{E['lr']}{r}"] = f"={nm['lr']}"
            elif epoch == 2:
                ws[f"{E['lr']}{r}"] = f"={e('lr', 1)}"
            else:
                ws[f"{E['lr']}{r}"] = (f"=IF({e('size', epoch - 1)}>2*{e('best', epoch - 2)},"
                                       f"{e('lr', epoch - 1)}/4,{e('lr', epoch - 1)})")

    chart = LineChart()
    chart.title, chart.y_axis.title, chart.x_axis.title = f"{name}: loss per epoch", "rmse", "epoch"
    col = E0 + 1
    chart.add_data(Reference(ws, min_col=col, min_row=HEAD, max_row=HEAD + EPOCHS), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=E0, min_row=HEAD + 1, max_row=HEAD + EPOCHS))
    chart.height, chart.width = 7, 12
    _straight(chart)
    ws.add_chart(chart, book.addr(E0, HEAD + EPOCHS + 3))
    book.freeze(ws, book.addr(1, FIRST))
    needed = _formats(ws, name, C, E)
    _comments(ws, name, C, E)
    book.fit_widths(ws, range(1, E0 + len(ep_cols)), skip_rows=(1, 2, HEAD - 2))
    for letter, width in needed.items():  # room for the longest formatted number too
        dim = ws.column_dimensions[letter]
        dim.width = max(dim.width or 0, width)


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
        fmt = "0" if col in ("epoch", "halvings") else "0.00E+00" if col in ("lr", "expected", "limit") \
            else book.readable_format(losses) if col in ("rmse", "f1", "f2") else "0.0000" if col == "d" \
            else "0.000"
        for r in range(HEAD + 1, HEAD + EPOCHS + 1):
            ws[f"{letter}{r}"].number_format = fmt
        needed[letter] = 11 if fmt == "0.00E+00" else max(len(_shown(v, fmt)) for v in losses) + 4
    return needed


def _comments(ws, name: str, C: dict, E: dict) -> None:
    # The original's red-triangle notes: what the key cells are and what to try.
    book.comment(ws, f"{E['rmse']}{HEAD}", "The epoch's loss: the square root of the 29 rows' summed squared "
                 "errors. The chart below plots it; change the learning rate and watch it move.")
    book.comment(ws, f"{C['new_a']}{FIRST}", "a after this row's step; the next row starts from it. Click it "
                 "to read the update rule in the formula bar.")
    book.comment(ws, f"{C['de_da']}{FIRST}", "de/da = x * de/db, the derivative of this row's squared error "
                 "(b + a*x - y)^2 with respect to a.")
    if "m_a" in C:
        book.comment(ws, f"{C['m_a']}{FIRST}", "The running average of de/da: beta1 * (the row above's, or the "
                     "carry on the first row) + (1 - beta1) * de/da.")
    if "v_a" in C:
        book.comment(ws, f"{C['v_a']}{FIRST}", "The running average of (de/da)^2. Its square root scales the step: "
                     "a parameter with big gradients takes smaller steps.")
    if "G_b" in E:
        book.comment(ws, f"{E['G_b']}{HEAD}", "The step size of an epoch is lr / G: G is the previous epoch's "
                     "gradient size (root of the summed squares / 29); epoch 1 uses the carry.")
    if "halvings" in E:
        book.comment(ws, f"{E['halvings']}{HEAD}", "How often the Run macro halved lr before the epoch was kept "
                     "(its expected step at most the limit). A formula cannot rerun an epoch, so this is typed "
                     "in: set one to 0 and see the expected step break its limit.")
    if "d" in E:
        book.comment(ws, f"{E['d']}{HEAD}", "Eve divides every step by d; after each epoch d moves towards the "
                     "loss's relative change |f1 - f2| / min(f1, f2).")


def _halvings(table: pd.DataFrame) -> list[int]:
    # How often lr was halved before each epoch was accepted (each epoch's lr is the last one / 2^k).
    lrs = [graddesc.reset("adagrad_ann")["lr"]] + table.groupby("epoch").lr.first().tolist()
    return [round(math.log2(prev / cur)) for prev, cur in zip(lrs, lrs[1:])]


def epoch_cell(name: str, column: str, epoch: int) -> str:
    """Address of a per-epoch table cell (e.g. 'rmse') on a sheet: what the tests read back (notebook 02)."""
    cols = graddesc.columns(name)
    ep_cols = ["epoch", "rmse"] + EPOCH_COLS.get(name, [])
    return book.addr(len(cols) + 2 + ep_cols.index(column), HEAD + epoch)


def row_cell(name: str, column: str, index: int) -> str:
    """Address of the row table's `column` for the 0-based row `index` (epoch-major) (notebook 02)."""
    return book.addr(graddesc.columns(name).index(column) + 1, FIRST + index)


def build() -> Workbook:
    """The whole workbook in memory: one sheet per rule, then `losses` with every rule's loss (notebook 02)."""
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
    chart.title, chart.y_axis.title, chart.x_axis.title = "every rule: loss per epoch", "rmse", "epoch"
    chart.add_data(Reference(ws, min_col=2, max_col=1 + len(graddesc.SHEETS), min_row=3, max_row=3 + EPOCHS),
                   titles_from_data=True)
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
    """Write graddesc.xlsx to `path` atomically; return the path (notebook 02, `lesson5 excel`)."""
    return book.save_atomic(build(), path)


def export_for_cli(out_dir: Path, **_: object) -> list[Path]:
    """`python -m lesson5 excel`: write graddesc.xlsx into `out_dir` (notebook 02)."""
    return [write(Path(out_dir) / "graddesc.xlsx")]
