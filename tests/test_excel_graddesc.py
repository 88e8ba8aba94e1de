"""graddesc.xlsx: its named tables, recalculated by LibreOffice, equal lesson5.graddesc to 1e-9."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from _excel_helpers import assert_blocks, assert_close, first, require_soffice, width
from _reset_oracle import MACRO_SHEETS, PASTES, macro_carries, macro_first_epoch
from openpyxl import load_workbook

from lesson5 import graddesc
from lesson5.excel import book
from lesson5.excel import graddesc as xg
from lesson5.excel.recalc import recalculated_names

ROWS = xg.EPOCHS * xg.N


def frame(block) -> pd.DataFrame:
    """A named table (header row first) as a DataFrame."""
    return pd.DataFrame(block[1:], columns=block[0])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return xg.write(tmp_path_factory.mktemp("graddesc") / "graddesc.xlsx")


@pytest.fixture(scope="module")
def values(written, tmp_path_factory):
    require_soffice()
    return recalculated_names([written], tmp_path_factory.mktemp("recalc"))[0]


def test_every_update_is_a_formula_reading_the_row_above_and_every_cell_names_its_font(written):
    wb = load_workbook(written)
    # Without a name, LibreOffice showed styled cells in a serif fallback face.
    assert all(f.name == book.FONT_NAME and f.sz for f in book.FONTS.values())
    cells = [c for ws in wb for row in ws.iter_rows() for c in row]
    styled = [c for c in cells if c.fill.fill_type is not None or c.font.b or c.font.i]
    assert len(styled) > 100 and all(c.font.name for c in styled)
    assert wb.sheetnames == [*graddesc.SHEETS, "losses"]
    for name in graddesc.SHEETS:
        rows = book.cells(wb, f"{name}_rows")
        col = {c.value: i for i, c in enumerate(rows[0])}
        assert list(col) == graddesc.columns(name)
        for i in range(2, ROWS + 1):
            for p in "ab":
                assert rows[i][col[p]].value == f"={rows[i - 1][col['new_' + p]].coordinate}"
        assert rows[1][col["a"]].value == f"={name}_a0"  # the named start cell
        g = rows[1][col["de_db"]].coordinate  # and the named carries
        if "m" in xg.FORMULAS[name].carries:
            assert rows[1][col["m_b"]].value == f"={name}_beta1*{name}_m_b0+(1-{name}_beta1)*{g}"
    assert wb["losses"]["B4"].value == "=INDEX(basic_rmse,1)"


def test_the_epochs_table_keeps_the_runs_halvings(written):
    ann = book.table(load_workbook(written), "adagrad_ann_epochs")
    lrs = [0.5, *graddesc.run("adagrad_ann", xg.EPOCHS)[0].groupby("epoch").lr.first()]
    assert ann.halvings.tolist() == [round(np.log2(p / q)) for p, q in zip(lrs, lrs[1:])]
    assert ann.halvings[1] == 9 and ann.lr[1].startswith("=")


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", list(graddesc.SHEETS))
def test_recalculated_rows_equal_python(values, name):
    table, _ = graddesc.run(name, xg.EPOCHS)
    rmse = graddesc.epoch_losses(table).to_numpy()
    rows = [list(table.columns), *table.to_numpy(float).tolist()]  # the header, then ROWS rows
    assert_blocks(values, {f"{name}_rows": rows, f"{name}_rmse": rmse[:, None]}, name)
    losses = frame(values["losses"])[name]
    for epoch, want in enumerate(rmse):
        assert_close(losses[epoch], want, f"losses {name}, epoch {epoch + 1}")


@pytest.mark.libreoffice
def test_epoch_level_state_equals_python(values):
    # What the sheets carry between epochs: adagrad's G, annealed lr, eve's d, adam_ann's best.
    epochs = {n: frame(values[f"{n}_epochs"]) for n in graddesc.SHEETS}
    _, s = graddesc.run("adagrad", xg.EPOCHS)
    for p, want in zip("ba", s["G"]):
        assert_close(epochs["adagrad"][f"G_new_{p}"].iloc[-1], float(want), "adagrad G")
    t, s = graddesc.run("adagrad_ann", xg.EPOCHS)
    ann = epochs["adagrad_ann"]
    for got, want in zip(ann.lr, t.groupby("epoch").lr.first()):
        assert_close(got, want, "adagrad_ann lr")
    assert (ann.expected[1:] <= ann.limit[1:]).all()  # every accepted epoch passes the macro's test
    assert_close(ann.expected.iloc[-1], s["expected"], "adagrad_ann expected step")
    best = graddesc.run("adam_ann", xg.EPOCHS)[1]["best"]
    assert_close(epochs["adam_ann"].best.iloc[-1], best, "adam_ann best")
    assert_close(epochs["eve"].d.iloc[-1], graddesc.run("eve", xg.EPOCHS)[0].d.iloc[-1], "eve d")


def test_each_sheets_formulas_sit_beside_its_python_rule():
    # FORMULAS is graddesc.SHEETS again, in formulas: same sheets, same order, twin rules.
    assert list(xg.FORMULAS) == list(graddesc.SHEETS)
    for name, sheet in graddesc.SHEETS.items():
        formulas = xg.FORMULAS[name]
        for excel, python in ((formulas.row, sheet.row), (formulas.epoch, sheet.end_epoch)):
            assert getattr(excel, "__name__", None) == getattr(python, "__name__", None), name


def test_an_open_graddesc_xlsx_stops_the_excel_command_before_any_write(tmp_path):
    # write_all (`python -m lesson5 excel`, `lesson5 run`) is run in test_excel_collab's cli test.
    from lesson5 import excel

    (tmp_path / f".~lock.{xg.FILENAME}#").write_text("someone,host,01.01.2026 10:00;")
    with pytest.raises(book.WorkbookError, match=f"cannot write .*{xg.FILENAME}: it is open"):
        excel.write_all(tmp_path, source="synthetic", top_n=6)
    assert [p.name for p in tmp_path.iterdir()] == [f".~lock.{xg.FILENAME}#"]


def last_row(values, name: str) -> pd.Series:
    return frame(values[f"{name}_rows"]).iloc[xg.N - 1]  # the first epoch's last row


def with_carries(written, carries: dict, path):
    """A copy of the workbook with only the sheets of `carries` ({sheet: {key: (b, a)}}), set to them."""
    wb = load_workbook(written)
    for ws in [ws for ws in wb if ws.title not in carries]:
        wb.remove(ws)
    for name, dn in list(wb.defined_names.items()):
        if next(dn.destinations)[0] not in carries:
            del wb.defined_names[name]
    for n, carry in carries.items():
        for key, pair in carry.items():
            for p, val in zip("ba", pair):
                first(wb, f"{n}_{key}_{p}0").value = val
    wb.save(path)
    return path


@pytest.mark.libreoffice
def test_pressing_reset_in_libreoffice_gives_the_workbooks_carries(written, values, tmp_path):
    # The macros, performed in LibreOffice: each round of every sheet's macro (its carries from the
    # oracle) in a copy, all copies recalculated by one LibreOffice start; what the macro would
    # paste from each is the oracle's next carry. The written workbook is the round after the last.
    chain = {n: macro_carries(n) for n in MACRO_SHEETS}
    rounds = range(max(map(len, PASTES.values())))
    todo = [{n: chain[n][r] for n in MACRO_SHEETS if r < len(PASTES[n])} for r in rounds]
    paths = [with_carries(written, todo[r], tmp_path / f"round{r}.xlsx") for r in rounds]
    for r, got in enumerate(recalculated_names(paths, tmp_path / "out")):
        for n in todo[r]:
            key = PASTES[n][r]
            if key == "G":  # the epoch's gradient norms, from the per-epoch table
                pasted = [frame(got[f"{n}_epochs"])[f"G_new_{p}"][0] for p in "ba"]
            else:  # the last row's average
                pasted = [last_row(got, n)[f"{key}_{p}"] for p in "ba"]
            for have, want in zip(pasted, chain[n][r + 1][key]):
                assert_close(have, want, f"{n} round {r}: pasted {key}")
    for n in MACRO_SHEETS:  # the written carries are lesson5.graddesc.reset's: test_graddesc.py
        carries = chain[n][-1].items()
        want = {f"{n}_{key}_{p}0": [[v]] for key, pair in carries for p, v in zip("ba", pair)}
        assert_blocks(values, want, f"{n} written")
        for p, want in zip("ab", macro_first_epoch(n)[0]):
            assert_close(last_row(values, n)[f"new_{p}"], want, f"{n}: {p}, epoch 1", rel=1e-10)


def test_charts_are_straight_segments_with_markers(written):
    with zipfile.ZipFile(written) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == len(graddesc.SHEETS) + 1
    for xml in charts:  # openpyxl writes the chart namespace as the default one (no "c:" prefix)
        smooth = re.findall(r'<(?:c:)?smooth val="(\w+)"', xml)
        assert smooth and set(smooth) == {"0"}, smooth
        series = len(re.findall(r"<(?:c:)?ser>", xml))
        assert series >= 1 and len(re.findall(r'<(?:c:)?symbol val="circle"', xml)) == series


def test_labels_fit_numbers_are_readable_and_key_cells_explain(written):
    wb = load_workbook(written)
    for name in graddesc.SHEETS:
        ws, table = wb[name], graddesc.run(name, xg.EPOCHS)[0]
        for row in ws.iter_rows(min_row=3, max_row=xg.HEAD - 3):  # every input label fits
            for c in row:
                assert not isinstance(c.value, str) or width(c) >= len(c.value), c.coordinate
        rows = book.cells(wb, f"{name}_rows")
        for head, cell in zip(rows[0], rows[6]):
            # headers fit; at most 4 decimals or a 3-digit scientific number, whose longest
            # value fits too (no ### at the workbook's widths)
            fmt = cell.number_format
            assert fmt in ("0", "0.0", "0.00", "0.0000", "0.00E+00"), (name, head.value, fmt)
            longest = max(book.shown_width(v, fmt) for v in table[head.value])
            assert width(head) >= max(len(head.value), longest - 0.5), (name, head.value)
        lr = first(wb, f"{name}_lr")
        assert lr.column > 1 and "Learning rate" in lr.comment.text
        assert book.cells(wb, f"{name}_epochs")[0][1].comment is not None
        for key in xg.FORMULAS[name].carries:
            keys = [f"{key}0"] if key == "expected" else [f"{key}_b0", f"{key}_a0"]
            for k in keys:
                assert "Reset" in first(wb, f"{name}_{k}").comment.text, (name, k)
