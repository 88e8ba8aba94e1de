"""`graddesc.xlsx`: every sheet of the gradient-descent spreadsheet as live formulas (notebook 02).

One worksheet per rule of `lesson5.graddesc`, same columns, same row order. Each row's a and b
read the row above (so each epoch's first row reads the previous epoch's last: the five epochs
the Run macro would have done lie one under the other). Learning rates, betas and the start
(a, b) are named input cells (yellow), e.g. `adam_lr`, `adam_beta1`. To the right of the rows,
a per-epoch table holds what changes once per epoch (loss, adagrad's G, annealed lr, eve's d)
and a line chart of the loss. A last sheet, `losses`, puts every rule's loss on one chart.
"""

from __future__ import annotations

import os
from pathlib import Path

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
# Per-epoch table columns (after epoch and rmse) for the sheets with once-per-epoch rules.
EPOCH_COLS = {
    "adagrad": ["G_b", "G_a", "G_new_b", "G_new_a"],
    "adagrad_ann": ["G_b", "G_a", "G_new_b", "G_new_a", "lr", "ratio", "halvings", "expected"],
    "eve": ["d"],
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
    for i, (key, label, value) in enumerate(inputs):
        row = 3 + i // 4
        col = 1 + 3 * (i % 4)
        ws.cell(row, col, label)
        ws.cell(row, col + 1, float(value))
        book.style(ws, book.addr(col + 1, row), "input")
        book.define_name(wb, _name(name, key), book.ref(ws, book.addr(col + 1, row)))
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
            if name == "momentum":
                f[m] = f"={g}" if first else f"={nm['beta1']}*{C[m]}{p}+(1-{nm['beta1']})*{g}"
                step = f"{lr}*{C[m]}{r}"
            elif name in ("adagrad", "adagrad_ann"):
                f[f"step_{pb}"] = f"={lr}/{e('G_' + pb, epoch)}"
                step = f"{C['step_' + pb]}{r}*{g}"
            elif name == "rmsprop":
                f[v] = f"={g}^2" if first else f"={nm['beta2']}*{C[v]}{p}+(1-{nm['beta2']})*{g}^2"
                step = f"{lr}*{g}/SQRT({C[v]}{r if first else p})"
            elif name in ("adam", "eve", "adam_ann"):
                f[m] = f"={g}" if first else f"={nm['beta1']}*{C[m]}{p}+(1-{nm['beta1']})*{g}"
                f[v] = f"={g}^2" if first else f"={nm['beta2']}*{C[v]}{p}+(1-{nm['beta2']})*{g}^2"
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
                if epoch == 1:  # no previous epoch: the gradients at the start point stand in
                    xs, ys = block("x", 1), block("y", 1)
                    res = f"2*({nm['b0']}+{nm['a0']}*{xs}-{ys})" + (f"*{xs}" if pb == "a" else "")
                    ws[f"{E['G_' + pb]}{r}"] = f"=SQRT(SUMPRODUCT({res},{res}))/{N}"
                else:
                    ws[f"{E['G_' + pb]}{r}"] = f"={e('G_new_' + pb, epoch - 1)}"
        if name == "adagrad_ann":
            ws[f"{E['lr']}{r}"] = (f"={nm['lr']}" if epoch == 1
                                   else f"={e('lr', epoch - 1)}/2^{e('halvings', epoch - 1)}")
            ws[f"{E['ratio']}{r}"] = (f"={e('G_new_b', epoch)}/{e('G_b', epoch)}"
                                      f"+{e('G_new_a', epoch)}/{e('G_a', epoch)}")
            # the sheet's "while expected step > 2 * previous: halve lr", counted in one go
            grow = f"{e('lr', epoch)}*{e('ratio', epoch)}/(2*{e('expected', epoch - 1)})" if epoch > 1 else ""
            ws[f"{E['halvings']}{r}"] = "=0" if epoch == 1 else f"=MAX(0,ROUNDUP(LOG({grow},2),0))"
            ws[f"{E['expected']}{r}"] = f"={e('lr', epoch)}/2^{e('halvings', epoch)}*{e('ratio', epoch)}"
        if name == "eve":
            if epoch <= 2:
                ws[f"{E['d']}{r}"] = f"={nm['d']}" if epoch == 1 else f"={e('d', 1)}"
            else:
                f1, f2 = e("rmse", epoch - 1), e("rmse", epoch - 2)
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
    ws.add_chart(chart, book.addr(E0, HEAD + EPOCHS + 3))
    book.freeze(ws, book.addr(1, FIRST))
    book.widths(ws, 11, range(1, E0 + len(ep_cols)))


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
    ws.add_chart(chart, "A11")
    return wb


def write(path: str | os.PathLike) -> Path:
    """Write graddesc.xlsx to `path` atomically; return the path (notebook 02, `lesson5 excel`)."""
    return book.save_atomic(build(), path)


def export_for_cli(out_dir: Path, **_: object) -> list[Path]:
    """`python -m lesson5 excel`: write graddesc.xlsx into `out_dir` (notebook 02)."""
    return [write(Path(out_dir) / "graddesc.xlsx")]
