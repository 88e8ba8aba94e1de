"""graddesc.xlsx: its formulas, recalculated by LibreOffice, equal lesson5.graddesc to 1e-9 relative."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _excel_helpers import assert_close, require_soffice

from lesson5 import graddesc
from lesson5.excel import graddesc as xg
from lesson5.excel.book import WorkbookError
from lesson5.excel.recalc import read_formulas, recalculated_values


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return xg.write(tmp_path_factory.mktemp("graddesc") / "graddesc.xlsx")


@pytest.fixture(scope="module")
def values(written, tmp_path_factory):
    require_soffice()
    return recalculated_values([written], tmp_path_factory.mktemp("recalc"))[0]


def test_every_update_is_a_formula_reading_the_row_above(written):
    formulas = read_formulas(written)
    assert set(formulas) == set(graddesc.SHEETS) | {"losses"}
    for name in graddesc.SHEETS:
        f = formulas[name]
        for i in range(1, xg.EPOCHS * xg.N):
            for p in "ab":
                cell = f[xg.row_cell(name, p, i)]
                assert cell == f"={xg.row_cell(name, f'new_{p}', i - 1)}", (name, i, cell)
            assert f[xg.row_cell(name, "new_a", i)].startswith("=")
        assert f[xg.row_cell(name, "a", 0)] == f"={name}_a0"  # the named start cell


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", list(graddesc.SHEETS))
def test_recalculated_rows_equal_python(values, name):
    table, state = graddesc.run(name, xg.EPOCHS)
    sheet = values[name]
    checked = 0
    for col in graddesc.columns(name):
        for i, want in enumerate(table[col].to_numpy(float)):
            cell = xg.row_cell(name, col, i)
            assert_close(sheet[cell], float(want), f"{name}!{cell} ({col}, row {i})")
            checked += 1
    for epoch, want in graddesc.epoch_losses(table).items():
        cell = xg.epoch_cell(name, "rmse", epoch)
        assert_close(sheet[cell], float(want), f"{name}!{cell} (rmse, epoch {epoch})")
        assert_close(
            values["losses"][f"{chr(ord('A') + list(graddesc.SHEETS).index(name) + 1)}{3 + epoch}"],
            float(want),
            f"losses ({name}, epoch {epoch})",
        )
    assert checked == len(graddesc.columns(name)) * xg.EPOCHS * xg.N


@pytest.mark.libreoffice
def test_epoch_level_state_equals_python(values):
    # What the sheets carry between epochs: adagrad's G, annealed lr, eve's d.
    _, s = graddesc.run("adagrad", xg.EPOCHS)
    for p, want in zip("ba", s["G"]):
        assert_close(
            values["adagrad"][xg.epoch_cell("adagrad", f"G_new_{p}", xg.EPOCHS)],
            float(want),
            "adagrad G",
        )
    t, s = graddesc.run("adagrad_ann", xg.EPOCHS)
    sheet = values["adagrad_ann"]
    lrs = t.groupby("epoch").lr.first()
    for epoch in range(1, xg.EPOCHS + 1):
        assert_close(
            sheet[xg.epoch_cell("adagrad_ann", "lr", epoch)],
            lrs[epoch],
            f"adagrad_ann lr, epoch {epoch}",
        )
    for epoch in range(2, xg.EPOCHS + 1):  # every accepted epoch passes the macro's test
        expected = sheet[xg.epoch_cell("adagrad_ann", "expected", epoch)]
        assert expected <= sheet[xg.epoch_cell("adagrad_ann", "limit", epoch)]
    assert_close(
        sheet[xg.epoch_cell("adagrad_ann", "expected", 5)],
        s["expected"],
        "adagrad_ann expected step",
    )
    assert sheet[xg.epoch_cell("adagrad_ann", "halvings", 2)] > 0  # the test fired at least once
    _, s = graddesc.run("adam_ann", xg.EPOCHS)
    assert_close(
        values["adam_ann"][xg.epoch_cell("adam_ann", "best", 5)], s["best"], "adam_ann best"
    )
    tables = {n: graddesc.run(n, xg.EPOCHS)[0] for n in ("eve",)}
    assert np.isclose(
        values["eve"][xg.epoch_cell("eve", "d", 5)], tables["eve"].d.iloc[-1], rtol=1e-9
    )


def test_each_sheets_formulas_sit_beside_its_python_rule():
    # FORMULAS is graddesc.SHEETS again, in formulas: same sheets, same order, twin rules.
    assert list(xg.FORMULAS) == list(graddesc.SHEETS)
    for name, sheet in graddesc.SHEETS.items():
        formulas = xg.FORMULAS[name]
        assert formulas.row.__name__ == sheet.row.__name__, name
        python_epoch = sheet.end_epoch.__name__ if sheet.end_epoch else None
        assert (formulas.epoch.__name__ if formulas.epoch else None) == python_epoch, name


def test_the_excel_command_exports_it(tmp_path, capsys):
    # `python -m lesson5 excel` and `lesson5 run` write every workbook through write_all.
    from lesson5 import excel

    paths = excel.write_all(tmp_path, source="synthetic", top_n=6, seed=3)
    assert paths[-1] == tmp_path / xg.FILENAME and paths[-1].stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert "crosstab: 6 users x 6 movies" in capsys.readouterr().out
    # An open graddesc.xlsx stops it before any work or any write.
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / f".~lock.{xg.FILENAME}#").write_text("someone,host,01.01.2026 10:00;")
    with pytest.raises(WorkbookError, match=f"cannot write .*{xg.FILENAME}: it is open"):
        excel.write_all(locked, source="synthetic", top_n=6)
    assert [p.name for p in locked.iterdir()] == [f".~lock.{xg.FILENAME}#"]


# ---- Reset as the original's macros, in the spreadsheet itself ----

from _reset_oracle import MACRO_SHEETS, macro_first_epoch  # noqa: E402


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", MACRO_SHEETS)
def test_first_epoch_after_reset_is_where_the_macro_puts_it(values, name):
    (a, b), _ = macro_first_epoch(name)
    sheet = values[name]
    assert_close(
        sheet[xg.row_cell(name, "new_a", xg.N - 1)],
        a,
        f"{name}: a after the first epoch",
        rel=1e-10,
    )
    assert_close(
        sheet[xg.row_cell(name, "new_b", xg.N - 1)],
        b,
        f"{name}: b after the first epoch",
        rel=1e-10,
    )


# The macros, performed in LibreOffice: set the carries, recalculate, paste, recalculate, ...
PASTES = {
    "momentum": [("m", "m")],
    "adagrad": [("G", "G_new")],
    "rmsprop": [("v", "v"), ("v", "v")],
    "adam": [("v", "v"), ("m", "m"), ("v", "v"), ("m", "m")],
}
START = {
    "momentum": {"m": 0.0},
    "adagrad": {"G": 10000.0},
    "rmsprop": {"v": 10000.0},
    "adam": {"v": 10000.0, "m": 0.0},
}


@pytest.mark.libreoffice
def test_pressing_reset_in_libreoffice_gives_the_workbooks_carries(written, values, tmp_path):
    # Each round writes the carries into a copy of the workbook (only the four sheets), lets
    # LibreOffice recalculate it, and reads the cell the macro would paste from.
    from openpyxl import load_workbook

    require_soffice()
    carry = {n: {k: [v, v] for k, v in START[n].items()} for n in MACRO_SHEETS}

    def carry_cell(wb, name, key, p):
        return wb.defined_names[f"{name}_{key}_{p}0"].attr_text.split("!")[1].replace("$", "")

    for rnd in range(max(len(p) for p in PASTES.values()) + 1):
        wb = load_workbook(written)
        for other in [s for s in wb.sheetnames if s not in MACRO_SHEETS]:
            del wb[other]
        for n in MACRO_SHEETS:
            for key, pair in carry[n].items():
                for p, val in zip("ba", pair):
                    wb[n][carry_cell(wb, n, key, p)] = val
        path = tmp_path / f"round{rnd}.xlsx"
        wb.save(path)
        got = recalculated_values([path], tmp_path / f"out{rnd}")[0]
        for n in MACRO_SHEETS:
            if rnd < len(PASTES[n]):
                key, col = PASTES[n][rnd]
                if key == "G":  # the epoch's gradient norms, from the per-epoch table
                    carry[n][key] = [got[n][xg.epoch_cell(n, f"G_new_{p}", 1)] for p in "ba"]
                else:  # the last row's average
                    carry[n][key] = [got[n][xg.row_cell(n, f"{col}_{p}", xg.N - 1)] for p in "ba"]
    for n in MACRO_SHEETS:  # the last round showed the first epoch from the pasted carries
        for p in "ab":
            cell = xg.row_cell(n, f"new_{p}", xg.N - 1)
            assert_close(
                got[n][cell], values[n][cell], f"{n}!{cell} after Reset in LibreOffice", rel=1e-9
            )
        state = graddesc.reset(n)
        for key, pair in carry[n].items():
            for want, have in zip(state[key], pair):
                assert_close(have, float(want), f"{n} {key} carry", rel=1e-9)


def test_charts_are_straight_segments_with_markers(written):
    import zipfile

    with zipfile.ZipFile(written) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == len(graddesc.SHEETS) + 1
    for xml in charts:  # openpyxl writes the chart namespace as the default one (no "c:" prefix)
        smooth = re.findall(r'<(?:c:)?smooth val="(\w+)"', xml)
        assert smooth and set(smooth) == {"0"}, smooth
        series = len(re.findall(r"<(?:c:)?ser>", xml))
        assert series >= 1 and len(re.findall(r'<(?:c:)?symbol val="circle"', xml)) == series


def test_labels_fit_numbers_are_readable_and_key_cells_explain(written):
    from openpyxl import load_workbook
    from openpyxl.utils import column_index_from_string

    wb = load_workbook(written)
    tables = {name: graddesc.run(name, xg.EPOCHS)[0] for name in graddesc.SHEETS}
    for name in graddesc.SHEETS:
        ws = wb[name]
        # every input label fits its column (no "beta1 (gradie")
        for row in ws.iter_rows(min_row=3, max_row=xg.HEAD - 3):
            for c in row:
                if isinstance(c.value, str):
                    width = ws.column_dimensions[c.column_letter].width
                    assert width >= len(c.value), (name, c.coordinate, c.value, width)
        # headers fit, and the row table shows at most 4 decimals or a 3-digit scientific number
        for col in graddesc.columns(name):
            head = ws[xg.row_cell(name, col, 0).rstrip("0123456789") + str(xg.HEAD)]
            assert ws.column_dimensions[head.column_letter].width >= len(col)
            fmt = ws[xg.row_cell(name, col, 5)].number_format
            assert fmt in ("0", "0.0", "0.00", "0.0000", "0.00E+00"), (name, col, fmt)
            # and the longest number, as that format shows it, fits (no ### at the default width)
            decimals = len(fmt.split(".")[1]) if "." in fmt and "E" not in fmt else 0
            longest = max(
                len(f"{v:.2E}" if "E" in fmt else f"{v:.{decimals}f}") for v in tables[name][col]
            )
            assert ws.column_dimensions[head.column_letter].width >= longest + 1, (
                name,
                col,
                longest,
            )
        lr = wb.defined_names[f"{name}_lr"].attr_text.split("!")[1].replace("$", "")
        assert ws[lr].comment is not None and "Learning rate" in ws[lr].comment.text
        assert (
            ws[xg.epoch_cell(name, "rmse", 1).rstrip("0123456789") + str(xg.HEAD)].comment
            is not None
        )
        assert column_index_from_string(lr.rstrip("0123456789")) > 1
    for name, keys in xg.CARRIES.items():
        for _, _, key, _ in keys:
            cell = wb.defined_names[f"{name}_{key}"].attr_text.split("!")[1].replace("$", "")
            assert "Reset" in wb[name][cell].comment.text, (name, key)
