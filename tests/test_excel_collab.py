"""collab_filter.xlsx: its formulas recalculated by LibreOffice equal Python's numbers, cell by cell."""

from __future__ import annotations

import re

import numpy as np
import pytest
from openpyxl import load_workbook

from lesson5 import cli, data
from lesson5.crosstab import crosstab
from lesson5.excel import book, collab
from lesson5.excel.recalc import read_formulas, recalculated_values
from lesson5.solver import init_factors, rmse

from _excel_helpers import assert_close, require_soffice

# Functions both Excel (2007 on, no _xlfn. prefix needed) and LibreOffice know.
PORTABLE = {"IF", "SQRT", "SUMXMY2", "COUNT", "SUM", "SUMPRODUCT", "INDEX", "MATCH"}


def _compare(got: dict, want: dict, label: str) -> int:
    """Every Python value equals the recalculated cell to 1e-9 relative; returns how many were compared."""
    n = 0
    for sheet, cells in want.items():
        for cell, value in cells.items():
            assert cell in got[sheet], f"{label} {sheet}!{cell} has no value"
            assert_close(got[sheet][cell], value, f"{label} {sheet}!{cell}")
            n += 1
    return n


@pytest.mark.libreoffice
def test_libreoffice_recalculation_equals_python_for_every_cell(tmp_path, movielens_2016, ml2018):
    require_soffice()
    ct16 = crosstab(data.load(movielens_2016))
    ct18 = crosstab(ml2018)
    ex16 = collab.export(ct16, tmp_path)
    (tmp_path / "y2018").mkdir()
    ex18 = collab.export(ct18, tmp_path / "y2018", max_iter=100)
    # Distinct names, so that one LibreOffice start recalculates all four.
    p18 = [ex18.initial_path.rename(tmp_path / "c18.xlsx"), ex18.fitted_path.rename(tmp_path / "c18_fit.xlsx")]
    books = [ex16.initial_path, ex16.fitted_path, *p18]
    got = recalculated_values(books, tmp_path / "recalculated")  # raises on any error value or empty result
    cases = [(ct16, ex16.dot, ex16.bias), (ct16, ex16.dot_fit.factors, ex16.bias_fit.factors),
             (ct18, ex18.dot, ex18.bias), (ct18, ex18.dot_fit.factors, ex18.bias_fit.factors)]
    for path, values, (ct, dot, bias) in zip(books, got, cases):
        want = collab.python_values(ct, dot, bias)
        n = _compare(values, want, path.name)
        # 2 factor sheets x (225 predictions + loss); long_format: 14 formulas per rating + loss.
        assert n == 2 * (15 * 15 + 1) + 14 * ct.n_rated + 1
        assert_close(values["long_format"]["B3"], values["dotprod"]["B3"], f"{path.name} long_format = dotprod")
    # The fitted workbook shows the Solver's RMSE; the first one the seeded start.
    for values, ex in ((got[1], ex16), (got[3], ex18)):
        assert_close(values["dotprod"]["B3"], ex.dot_fit.rmse, "fitted dotprod RMSE")
        assert_close(values["bias"]["B3"], ex.bias_fit.rmse, "fitted bias RMSE")
    assert_close(got[0]["dotprod"]["B3"], ex16.dot_fit.history[0], "starting RMSE")


def _synthetic_book(tmp_path):
    ct = crosstab(data.load("synthetic"), top_n=15)
    path = collab.write(ct, tmp_path / collab.FILENAME, seed=42)
    return ct, path


def test_workbook_layout_formulas_colours_and_notes(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    wb = load_workbook(path)
    assert wb.sheetnames == list(collab.SHEETS)
    ws = wb["dotprod"]
    # Ratings B13:P27, user factors S13:W27, movie factors X6:AL10, predictions X13:AL27.
    assert ws["B3"].value == "=SQRT(SUMXMY2(B13:P27,X13:AL27)/COUNT(B13:P27))"
    assert ws["X13"].value == '=IF($B13="",0,$S13*X$6+$T13*X$7+$U13*X$8+$V13*X$9+$W13*X$10)'
    assert ws["AL27"].value == '=IF($P27="",0,$S27*AL$6+$T27*AL$7+$U27*AL$8+$V27*AL$9+$W27*AL$10)'
    bias = wb["bias"]
    # bias sheet: 6 factor rows (movie bias last), header row 13, users from row 14, predictions from Y.
    assert bias["Y14"].value == '=IF($B14="",0,$S14*Y$6+$T14*Y$7+$U14*Y$8+$V14*Y$9+$W14*Y$10+$X14+Y$11)'
    assert bias["X13"].value == "user bias" and bias["X11"].value == "movie bias"
    assert bias["B3"].value == "=SQRT(SUMXMY2(B14:P28,Y14:AM28)/COUNT(B14:P28))"
    # The constants are the seeded factors and the crosstab, exactly.
    # (openpyxl writes 16 significant digits; `as_written` gives Python those very numbers.)
    f = collab.as_written(init_factors(15, 15, seed=42))
    assert [[ws.cell(13 + i, 19 + k).value for k in range(5)] for i in range(15)] == f.user.tolist()
    assert [[ws.cell(6 + k, 24 + j).value for j in range(15)] for k in range(5)] == f.movie.T.tolist()
    raw = init_factors(15, 15, seed=42).user
    assert np.abs(f.user - raw).max() <= 1e-16 and (f.user == book.as_written(f.user)).all()
    for i in range(15):
        for j in range(15):
            cell = ws.cell(13 + i, 2 + j).value
            assert (cell is None) if np.isnan(ct.ratings[i, j]) else cell == ct.ratings[i, j]
    assert [ws.cell(12, 2 + j).value for j in range(15)] == ct.movies.tolist()
    assert [ws.cell(13 + i, 1).value for i in range(15)] == ct.users.tolist()
    # Colours of the lesson.
    for cell, kind in (("B13", "rating"), ("X13", "prediction"), ("B3", "loss"), ("X6", "movie"), ("S13", "user")):
        assert ws[cell].fill.start_color.rgb[-6:] == book.FILLS[kind].start_color.rgb[-6:], cell
    assert ws.freeze_panes == "B13"
    # Notes say what a Solver changes and what it minimises.
    for sheet in ("dotprod", "bias"):
        note = wb[sheet]["A2"].value
        assert "Solver" in note and f"'{sheet}'!$B$3" in note and "GRG Nonlinear" in note
    assert "'dotprod'!$S$13:$W$27,'dotprod'!$X$6:$AL$10" in ws["A2"].value
    assert "Solver" in wb["long_format"]["A2"].value
    titles = wb["movie titles"]
    assert [titles.cell(5 + j, 1).value for j in range(15)] == ct.movies.tolist()
    assert titles["B5"].value == ct.titles[0]
    # Only functions that Excel and LibreOffice share, so no _xlfn. prefixes are needed.
    used = set()
    for cells in read_formulas(path).values():
        for formula in cells.values():
            used |= set(re.findall(r"([A-Z][A-Z0-9.]*)\(", formula))
    assert used and used <= PORTABLE, used - PORTABLE


def test_python_values_cover_the_same_cells_as_the_formulas(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    formulas = read_formulas(path)
    dot, bias = init_factors(15, 15, seed=42), init_factors(15, 15, bias=True, seed=42)
    want = collab.python_values(ct, dot, bias)
    for sheet in ("dotprod", "bias", "long_format"):
        assert set(want[sheet]) == set(formulas[sheet]), sheet  # every formula cell is checked, no more
    assert want["dotprod"]["B3"] == rmse(ct.ratings, dot)


def test_bad_input_never_leaves_a_half_written_workbook(tmp_path, capsys):
    ct, path = _synthetic_book(tmp_path)
    with pytest.raises(book.WorkbookError, match="folder .*nowhere does not exist"):
        collab.export(ct, tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    before = path.read_bytes()
    lock = tmp_path / f".~lock.{collab.FILENAME}#"
    lock.write_text("someone,host,01.01.2026 10:00;")
    with pytest.raises(book.WorkbookError, match="open in a spreadsheet program"):
        collab.export(ct, tmp_path)
    assert path.read_bytes() == before and not (tmp_path / collab.FITTED_FILENAME).exists()
    lock.unlink()
    out = tmp_path / "cli"
    assert cli.main(["excel", "--out", str(out), "--source", "synthetic", "--top-n", "400"]) == 2
    assert "top 400 users but the ratings hold only 300 users" in capsys.readouterr().err
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match="do not fit a 15 x 15 crosstab"):
        collab.build(ct, init_factors(14, 15), init_factors(15, 15, bias=True))


def test_cli_writes_both_workbooks(tmp_path, capsys):
    out = tmp_path / "new" / "folder"
    assert cli.main(["excel", "--out", str(out), "--source", "synthetic", "--top-n", "6", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / collab.FILENAME}" in text and f"wrote {out / collab.FITTED_FILENAME}" in text
    wb = load_workbook(out / collab.FITTED_FILENAME)
    assert wb["dotprod"]["B3"].value.startswith("=SQRT(SUMXMY2(B13:G18,")
    start = load_workbook(out / collab.FILENAME)["dotprod"]
    assert start.cell(13, 2 + 6 + 2).value == book.as_written(init_factors(6, 6, seed=3).user[0, 0])


@pytest.mark.libreoffice
def test_cli_check_recalculates_with_libreoffice(tmp_path, capsys):
    require_soffice()
    assert cli.main(["excel", "--out", str(tmp_path), "--source", "synthetic", "--top-n", "6", "--check"]) == 0
    text = capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.glob("*.xlsx"))
    assert {collab.FILENAME, collab.FITTED_FILENAME, "graddesc.xlsx"} <= set(written)
    assert f"LibreOffice recalculated {len(written)} workbooks" in text
    assert ": 0 error values or empty results" in text
    assert sorted(p.name for p in (tmp_path / "recalculated").glob("*.xlsx")) == written


def test_cli_check_without_libreoffice_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESSON5_SOFFICE", str(tmp_path / "no-soffice"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["excel", "--out", str(tmp_path), "--source", "synthetic", "--top-n", "6", "--check"]) == 2
    assert "LibreOffice (soffice) was not found" in capsys.readouterr().err
