"""collab_filter.xlsx: its formulas recalculated by LibreOffice equal Python's numbers, cell by cell."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from _excel_helpers import assert_close, require_soffice
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.formula import ArrayFormula

from lesson5 import data
from lesson5.crosstab import crosstab
from lesson5.excel import book, collab
from lesson5.excel.recalc import (
    find_problems,
    read_formulas,
    read_values,
    recalculate,
    recalculated_values,
)
from lesson5.solver import Factors, init_factors, rmse
from lesson5.tools import cli

# Functions both Excel (2007 on, no _xlfn. prefix needed) and LibreOffice know.
PORTABLE = {
    "IF",
    "SQRT",
    "SUMXMY2",
    "COUNT",
    "SUM",
    "SUMPRODUCT",
    "INDEX",
    "MATCH",
    "MMULT",
    "TRANSPOSE",
}
DOT, BIAS = collab.Layout(15, 15, 5, False), collab.Layout(15, 15, 5, True)
# Cells of word_emb: 2 lookups x (15 one-hot + 5 MMULT + 5 INDEX), 2 predictions, a batch of 8 x (2 + 15 + 5).
WORD_EMB_CELLS = 2 * (15 + 5 + 5) + 2 + 8 * (2 + 15 + 5)


def _compare(got: dict, want: dict, label: str) -> int:
    """Every Python value equals the recalculated cell to 1e-9 relative; returns how many were compared."""
    n = 0
    for sheet, cells in want.items():
        for cell, value in cells.items():
            assert cell in got[sheet], f"{label} {sheet}!{cell} has no value"
            assert_close(got[sheet][cell], value, f"{label} {sheet}!{cell}")
            n += 1
    return n


def _edited_copy(path, out, user_pos: int, factor: float):
    """A student's edit: another user looked up on word_emb, one dotprod user factor typed over."""
    wb = load_workbook(path)
    wb["word_emb"][collab.WordEmb(15, 15, 5).user_input] = user_pos
    wb["dotprod"][DOT.user_factor(0, 0)] = factor
    wb.save(out)
    return out


def _fits_its_column(ws, cell: str, value: float) -> bool:
    """The value, shown with the cell's number format and font, fits the column's width (no ###)."""
    c = ws[cell]
    width = ws.column_dimensions[get_column_letter(c.column)].width
    return book.shown_width(value, c.number_format, bool(c.font.b)) <= width


@pytest.mark.libreoffice
def test_libreoffice_recalculation_equals_python_for_every_cell(tmp_path, movielens_2016, ml2018):
    require_soffice()
    ct16 = crosstab(data.load(movielens_2016))
    ct18 = crosstab(ml2018)
    ex16 = collab.export(ct16, tmp_path)
    (tmp_path / "y2018").mkdir()
    ex18 = collab.export(ct18, tmp_path / "y2018", max_iter=100)
    # Distinct names, so that one LibreOffice start recalculates all five.
    p18 = [
        ex18.initial_path.rename(tmp_path / "c18.xlsx"),
        ex18.fitted_path.rename(tmp_path / "c18_fit.xlsx"),
    ]
    edited = _edited_copy(ex16.fitted_path, tmp_path / "edited.xlsx", user_pos=7, factor=3.0)
    books = [ex16.initial_path, ex16.fitted_path, *p18, edited]
    got = recalculated_values(
        books, tmp_path / "recalculated"
    )  # raises on any error value or empty result
    cases = [
        (ct16, ex16.dot, ex16.bias),
        (ct16, ex16.dot_fit.factors, ex16.bias_fit.factors),
        (ct18, ex18.dot, ex18.bias),
        (ct18, ex18.dot_fit.factors, ex18.bias_fit.factors),
    ]
    for path, values, (ct, dot, bias) in zip(books, got, cases):
        want = collab.python_values(ct, dot, bias)
        n = _compare(values, want, path.name)
        # 2 factor sheets x (225 predictions + loss); word_emb; long_format: 14 formulas per rating + loss.
        assert n == 2 * (15 * 15 + 1) + WORD_EMB_CELLS + 14 * ct.n_rated + 1
        assert_close(
            values["long_format"]["B3"],
            values["dotprod"][DOT.loss],
            f"{path.name} long_format = dotprod",
        )
        # word_emb: the one-hot MMULT returns the very numbers of the dotprod sheet's factor row.
        we = collab.WordEmb(15, 15, 5)
        pos = values["word_emb"][we.user_input]
        for f in range(5):
            mmult = values["word_emb"][book.addr(2 + f, we.block_row(0) + 3)]
            assert mmult == values["dotprod"][DOT.user_factor(pos - 1, f)], (path.name, f)
    # The fitted workbook shows the Solver's RMSE; the first one the seeded start.
    for values, ex in ((got[1], ex16), (got[3], ex18)):
        assert_close(values["dotprod"][DOT.loss], ex.dot_fit.rmse, "fitted dotprod RMSE")
        assert_close(values["bias"][BIAS.loss], ex.bias_fit.rmse, "fitted bias RMSE")
    assert_close(got[0]["dotprod"][DOT.loss], ex16.dot_fit.history[0], "starting RMSE")
    # After the student's edit: the loss and the word_emb lookup follow, and the RMSE still fits its cell.
    f = ex16.dot_fit.factors
    user = f.user.copy()
    user[0, 0] = 3.0
    edited_f = Factors(user, f.movie)
    assert_close(got[4]["dotprod"][DOT.loss], rmse(ct16.ratings, edited_f), "RMSE after the edit")
    assert got[4]["dotprod"][DOT.loss] > got[1]["dotprod"][DOT.loss] + 0.01
    for fi in range(5):
        assert_close(
            got[4]["word_emb"][book.addr(2 + fi, collab.WordEmb(15, 15, 5).block_row(0) + 3)],
            user[6, fi],
            "word_emb lookup of user 7",
        )
    wb = load_workbook(edited)
    for values in got:
        for sheet, lay in (("dotprod", DOT), ("bias", BIAS)):
            assert _fits_its_column(wb[sheet], lay.loss, values[sheet][lay.loss]), (
                sheet,
                values[sheet][lay.loss],
            )
    assert _fits_its_column(
        wb["dotprod"], DOT.loss, 99.9999
    )  # room to spare: a loss up to 99.9999 shows in full
    # LibreOffice (7.4 here) keeps the Solver model as sheet-level names when it saves (SOLVER_NOTE.md).
    back = load_workbook(tmp_path / "recalculated" / ex16.fitted_path.name)
    assert back["dotprod"].defined_names["solver_opt"].attr_text.replace("'", "") == "dotprod!$W$24"
    assert (
        back["bias"].defined_names["solver_adj"].attr_text.replace("'", "")
        == "bias!$B$25:$G$39,bias!$H$18:$V$23"
    )


def _synthetic_book(tmp_path):
    ct = crosstab(data.load("synthetic"), top_n=15)
    path = collab.write(ct, tmp_path / collab.FILENAME, seed=42)
    return ct, path


def test_workbook_layout_formulas_colours_and_notes(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    wb = load_workbook(path)
    assert wb.sheetnames == list(collab.SHEETS)
    ws = wb["dotprod"]
    # The lesson's screen: ratings G3:U17 on top, movie factors G18:U22 under them, predictions G24:U38
    # below, user factors B24:F38 to their left, the RMSE W24 beside them.
    assert (
        DOT.ratings_range,
        DOT.movie_factors_range(),
        DOT.preds_range,
        DOT.user_factors_range(),
        DOT.loss,
    ) == ("G3:U17", "G18:U22", "G24:U38", "B24:F38", "W24")
    assert ws["W24"].value == "=SQRT(SUMXMY2(G3:U17,G24:U38)/COUNT(G3:U17))"
    assert ws["G24"].value == '=IF(G3="",0,$B24*G$18+$C24*G$19+$D24*G$20+$E24*G$21+$F24*G$22)'
    assert ws["U38"].value == '=IF(U17="",0,$B38*U$18+$C38*U$19+$D38*U$20+$E38*U$21+$F38*U$22)'
    bias = wb["bias"]
    # bias sheet: 6 factor rows (movie bias last), header row 24, users from row 25, movies from column H.
    assert (
        bias["H25"].value
        == '=IF(H3="",0,$B25*H$18+$C25*H$19+$D25*H$20+$E25*H$21+$F25*H$22+$G25+H$23)'
    )
    assert bias["G24"].value == "bias" and bias["G23"].value == "bias"
    assert bias["X25"].value == "=SQRT(SUMXMY2(H3:V17,H25:V39)/COUNT(H3:V17))"
    # The constants are the seeded factors and the crosstab, exactly.
    # (openpyxl writes 16 significant digits; `as_written` gives Python those very numbers.)
    f = collab.as_written(init_factors(15, 15, seed=42))
    assert [[ws.cell(24 + i, 2 + k).value for k in range(5)] for i in range(15)] == f.user.tolist()
    assert [
        [ws.cell(18 + k, 7 + j).value for j in range(15)] for k in range(5)
    ] == f.movie.T.tolist()
    raw = init_factors(15, 15, seed=42).user
    assert np.abs(f.user - raw).max() <= 1e-16 and (f.user == book.as_written(f.user)).all()
    for i in range(15):
        for j in range(15):
            cell = ws.cell(3 + i, 7 + j).value
            assert (cell is None) if np.isnan(ct.ratings[i, j]) else cell == ct.ratings[i, j]
    assert [ws.cell(2, 7 + j).value for j in range(15)] == ct.movies.tolist()
    assert [ws.cell(23, 7 + j).value for j in range(15)] == ct.movies.tolist()
    assert [ws.cell(3 + i, 1).value for i in range(15)] == ct.users.tolist()
    assert [ws.cell(24 + i, 1).value for i in range(15)] == ct.users.tolist()
    # Colours of the lesson.
    for cell, kind in (
        ("G3", "rating"),
        ("G24", "prediction"),
        ("W24", "loss"),
        ("G18", "movie"),
        ("B24", "user"),
    ):
        assert ws[cell].fill.start_color.rgb[-6:] == book.FILLS[kind].start_color.rgb[-6:], cell
    # Cell notes explain the key cells (the original's red triangles).
    for cell in ("W24", "G24", "B24", "G18", "G3"):
        assert ws[cell].comment is not None and len(ws[cell].comment.text) > 40, cell
    assert "Solver" in ws["W24"].comment.text and "bias" in bias["G25"].comment.text
    assert "Solver" in ws["W25"].value and "Solver" in wb["long_format"]["A2"].value
    titles = wb["movie titles"]
    assert [titles.cell(5 + j, 1).value for j in range(15)] == ct.movies.tolist()
    assert titles["B5"].value == ct.titles[0]
    # Only functions that Excel and LibreOffice share, so no _xlfn. prefixes are needed.
    used = set()
    for cells in read_formulas(path).values():
        for formula in cells.values():
            used |= set(re.findall(r"([A-Z][A-Z0-9.]*)\(", formula))
    assert used and used <= PORTABLE, used - PORTABLE


def test_word_emb_sheet_multiplies_a_one_hot_row_by_the_factor_matrix(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    ws = load_workbook(path)["word_emb"]
    we = collab.WordEmb(15, 15, 5)
    r0 = we.block_row(0)
    mm = ws[book.addr(2, r0 + 3)].value
    assert isinstance(mm, ArrayFormula) and mm.ref == f"B{r0 + 3}:F{r0 + 3}"
    assert mm.text == f"=MMULT(B{r0 + 2}:P{r0 + 2},'dotprod'!$B$24:$F$38)"
    assert ws[book.addr(2, r0 + 2)].value == f"=IF(B{r0 + 1}=$B${r0},1,0)"
    movie = ws[book.addr(2, we.block_row(1) + 3)].value
    assert (
        movie.text
        == f"=MMULT(B{we.block_row(1) + 2}:P{we.block_row(1) + 2},TRANSPOSE('dotprod'!$G$18:$U$22))"
    )
    batch = ws[book.addr(4 + 15, we.batch_row0)].value
    assert isinstance(batch, ArrayFormula) and batch.text.startswith(f"=MMULT(C{we.batch_row0}:Q")
    # The Python side of the same idea: one_hot(i) @ W is W[i], row for row, for a whole batch.
    f = init_factors(15, 15, seed=42)
    idx = np.array([3, 0, 14, 3])
    np.testing.assert_array_equal(collab.one_hot(idx, 15) @ f.user, f.user[idx])
    values = collab.word_emb_values(ct, f)
    assert len(values) == WORD_EMB_CELLS
    picks = ct.long().row.to_numpy()[we.batch_picks(ct.n_rated)]
    assert len(set(picks.tolist())) > 1  # the batch holds several users


def _sheet_pixels(ws, last_col: int) -> int:
    # Excel's rule for a column of width w (in digit widths of a 7-pixel digit): 7 * w + 5 pixels.
    return sum(
        int(7 * (ws.column_dimensions[get_column_letter(c)].width or 8.43) + 5)
        for c in range(1, last_col + 1)
    )


def test_sheets_fit_one_screen_name_their_font_and_show_whole_labels(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    wb = load_workbook(path)
    for sheet, lay in (("dotprod", DOT), ("bias", BIAS)):
        ws = wb[sheet]
        # The whole computation at 100% zoom: at most 40 rows (of 17 px) and 1,400 px of columns,
        # which a 1440 x 900 laptop screen shows beside LibreOffice's or Excel's toolbars.
        assert ws.sheet_view.zoomScale == 100
        assert ws.max_row == lay.last_row <= 40
        assert ws.max_column == lay.loss_col
        assert _sheet_pixels(ws, lay.loss_col) <= 1400, _sheet_pixels(ws, lay.loss_col)
        assert ws[lay.loss].number_format == "0.0000"
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and c.fill.fill_type is None:
                    continue
                # Every written or coloured cell names its font (none falls back to a serif face).
                assert c.font.name == book.FONT_NAME, (ws.title, c.coordinate, c.font.name)
                if (
                    c.data_type == "f"
                    or c.font.i
                    or c.font.sz == book.FONTS["title"].sz
                    or c.value is None
                ):
                    continue
                if ws.title == "movie titles" and c.column == 2:
                    continue  # titles may be longer than the (capped) column; they are the last column shown
                width = ws.column_dimensions[get_column_letter(c.column)].width
                need = book.shown_width(c.value, c.number_format, bool(c.font.b))
                assert width is not None and need <= width, (ws.title, c.coordinate, c.value, width)
    # A factor, a prediction and an RMSE as large as a student's edit might make them still fit.
    ws = wb["dotprod"]
    for cell, value in (
        (DOT.user_factor(0, 0), -9.876),
        (DOT.pred(0, 0), -9.99),
        (DOT.pred(0, 0), 12.34),
        (DOT.loss, 99.9999),
    ):
        assert _fits_its_column(ws, cell, value), cell


def test_solver_model_is_written_the_way_excel_saves_one(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    wb = load_workbook(path)
    for sheet, lay, adj in (
        ("dotprod", DOT, "'dotprod'!$B$24:$F$38,'dotprod'!$G$18:$U$22"),
        ("bias", BIAS, "'bias'!$B$25:$G$39,'bias'!$H$18:$V$23"),
    ):
        names = wb[sheet].defined_names
        assert names["solver_opt"].attr_text == f"'{sheet}'!${lay.loss[0]}${lay.loss[1:]}"
        assert names["solver_adj"].attr_text == adj
        assert {
            n: names[n].attr_text
            for n in ("solver_typ", "solver_eng", "solver_neg", "solver_num", "solver_ver")
        } == {
            "solver_typ": "2",
            "solver_eng": "1",
            "solver_neg": "2",
            "solver_num": "0",
            "solver_ver": "3",
        }
        assert all(names[n].hidden for n in names if n.startswith("solver_"))
    assert not wb.defined_names  # nothing at workbook level: Excel looks for the model on the sheet
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/workbook.xml").decode()
    # Sheet-local (localSheetId) and hidden, as Excel writes them.
    assert re.search(r'<definedName name="solver_opt" localSheetId="0" hidden="1">', xml), xml[
        -800:
    ]
    assert re.search(r'<definedName name="solver_opt" localSheetId="1" hidden="1">', xml)


NASTY_TITLES = [
    "=1/0",
    '=HYPERLINK("http://example.com","click me")',
    "+1+1",
    "Bell\x07 Book\x00 (1999)",
    "Tab\there (2001)",
    "@SUM(1)",
]


def _nasty_crosstab():
    rng = np.random.default_rng(0)
    rows = [
        (u, m, float(rng.integers(1, 11)) / 2)
        for u in range(1, 7)
        for m in range(1, 7)
        if (u + m) % 5
    ]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    movies = pd.DataFrame({"movieId": range(1, 7), "title": NASTY_TITLES})
    return crosstab(ratings, top_n=6, movies=movies)


def test_titles_are_text_never_formulas_and_control_characters_do_not_crash(tmp_path):
    ct = _nasty_crosstab()
    path = collab.write(
        ct, tmp_path / collab.FILENAME, seed=1
    )  # openpyxl refused \x00 and \x07 before
    ws = load_workbook(path)["movie titles"]
    shown = [ws.cell(5 + j, 2).value for j in range(6)]
    assert all(ws.cell(5 + j, 2).data_type == "s" for j in range(6))  # text cells, not formulas
    assert shown[:3] == NASTY_TITLES[:3] and shown[5] == "@SUM(1)"
    assert shown[3] == "Bell\\x07 Book\\x00 (1999)" and shown[4] == "Tab here (2001)"
    assert "movie titles" not in read_formulas(path) or not read_formulas(path)["movie titles"]


@pytest.mark.libreoffice
def test_titles_stay_text_after_libreoffice_recalculation(tmp_path):
    require_soffice()
    ct = _nasty_crosstab()
    path = collab.write(ct, tmp_path / collab.FILENAME, seed=1)
    copy = recalculate(path, tmp_path / "recalculated")
    assert find_problems(copy) == []  # no #DIV/0! and no live link
    values = read_values(copy)["movie titles"]
    assert [values[f"B{5 + j}"] for j in (0, 1, 2)] == NASTY_TITLES[:3]
    assert not read_formulas(copy)["movie titles"]


def test_python_values_cover_the_same_cells_as_the_formulas(tmp_path):
    ct, path = _synthetic_book(tmp_path)
    formulas = read_formulas(path)
    dot, bias = init_factors(15, 15, seed=42), init_factors(15, 15, bias=True, seed=42)
    want = collab.python_values(ct, dot, bias)
    wb = load_workbook(path)
    for sheet in ("dotprod", "bias", "word_emb", "long_format"):
        array_cells = set()
        for row in wb[sheet].iter_rows():
            for c in row:
                if isinstance(c.value, ArrayFormula):
                    c0, r0, c1, r1 = range_boundaries(c.value.ref)
                    array_cells |= {
                        book.addr(cc, rr) for cc in range(c0, c1 + 1) for rr in range(r0, r1 + 1)
                    }
        # Every formula cell is checked, and every cell an array formula fills, no more.
        assert set(want[sheet]) == set(formulas[sheet]) | array_cells, sheet
    assert want["dotprod"][DOT.loss] == rmse(ct.ratings, dot)


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
    assert (
        cli.main(
            ["excel", "--out", str(out), "--source", "synthetic", "--top-n", "6", "--seed", "3"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        f"wrote {out / collab.FILENAME}" in text and f"wrote {out / collab.FITTED_FILENAME}" in text
    )
    wb = load_workbook(out / collab.FITTED_FILENAME)
    small = collab.Layout(6, 6, 5, False)
    assert wb["dotprod"][small.loss].value.startswith("=SQRT(SUMXMY2(G3:L8,")
    start = load_workbook(out / collab.FILENAME)["dotprod"]
    assert start[small.user_factor(0, 0)].value == book.as_written(
        init_factors(6, 6, seed=3).user[0, 0]
    )


@pytest.mark.libreoffice
def test_cli_check_recalculates_with_libreoffice(tmp_path, capsys):
    require_soffice()
    assert (
        cli.main(
            ["excel", "--out", str(tmp_path), "--source", "synthetic", "--top-n", "6", "--check"]
        )
        == 0
    )
    text = capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.glob("*.xlsx"))
    assert {collab.FILENAME, collab.FITTED_FILENAME, "graddesc.xlsx"} <= set(written)
    assert f"LibreOffice recalculated {len(written)} workbooks" in text
    assert ": 0 error values or empty results" in text
    assert sorted(p.name for p in (tmp_path / "recalculated").glob("*.xlsx")) == written


def test_cli_check_without_libreoffice_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESSON5_SOFFICE", str(tmp_path / "no-soffice"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert (
        cli.main(
            ["excel", "--out", str(tmp_path), "--source", "synthetic", "--top-n", "6", "--check"]
        )
        == 2
    )
    assert "LibreOffice (soffice) was not found" in capsys.readouterr().err
