"""collab_filter.xlsx: each named block, recalculated by LibreOffice, equals the Python model."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _excel_helpers import assert_blocks, assert_close, first, require_soffice, width
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.formula import ArrayFormula

from lesson5 import data, excel
from lesson5.crosstab import crosstab
from lesson5.excel import book, collab
from lesson5.excel import graddesc as xg
from lesson5.excel.recalc import read_formulas, recalculated_names
from lesson5.solver import Factors, init_factors, rmse
from lesson5.tools import cli

# Functions both Excel (2007 on, no _xlfn. prefix needed) and LibreOffice know.
PORTABLE = set("IF SQRT SUMXMY2 COUNT SUM SUMPRODUCT INDEX MATCH MMULT TRANSPOSE".split())


def where(wb, name: str) -> str:
    return wb.defined_names[name].attr_text.split("!")[1].replace("$", "")


def cells_in(sheet: str, ref: str) -> set:
    """{(sheet, column, row)} of every cell of the range `ref`."""
    c0, r0, c1, r1 = range_boundaries(ref.replace("$", ""))
    return {(sheet, c, r) for c in range(c0, c1 + 1) for r in range(r0, r1 + 1)}


def fits(cell, value: float) -> bool:
    """The value, shown with the cell's number format and font, fits its column (no ###)."""
    return book.shown_width(value, cell.number_format, bool(cell.font.b)) <= width(cell)


@pytest.mark.libreoffice
def test_libreoffice_recalculation_equals_python_block_by_block(tmp_path, ml2016, ml2018, nasty):
    require_soffice()
    ct16, ct18 = crosstab(ml2016), crosstab(ml2018)
    ex16 = collab.export(ct16, tmp_path)
    (tmp_path / "y2018").mkdir()
    ex18 = collab.export(ct18, tmp_path / "y2018", max_iter=100)
    # Distinct names, so that one LibreOffice start recalculates all five.
    p18 = [path.rename(tmp_path / f"c18_{path.name}") for path in ex18.paths]
    # A student's edit: another user looked up on word_emb, one dotprod user factor typed over.
    wb = load_workbook(ex16.fitted_path)
    first(wb, "word_emb_user").value = 7
    first(wb, "dotprod_user_factors").value = 3.0
    wb.save(edited := tmp_path / "edited.xlsx")
    user = ex16.dot_fit.factors.user.copy()
    user[0, 0] = 3.0
    edited_f = Factors(user, ex16.dot_fit.factors.movie)
    books = [ex16.initial_path, ex16.fitted_path, *p18, edited, nasty]
    got = recalculated_names(books, tmp_path / "recalculated")  # raises on any error value
    cases = [(ct16, ex16.dot, ex16.bias), (ct16, ex16.dot_fit.factors, ex16.bias_fit.factors)]
    cases += [(ct18, ex18.dot, ex18.bias), (ct18, ex18.dot_fit.factors, ex18.bias_fit.factors)]
    for path, values, (ct, dot, bias) in zip(books, got, cases):
        n = assert_blocks(values, collab.expected(ct, dot, bias), path.name)
        # 2 factor sheets x (225 predictions + loss); word_emb; long_format: 14 per rating + loss.
        assert n == 2 * 226 + 2 * (15 + 5 + 5) + 2 + 8 * (2 + 15 + 5) + 14 * ct.n_rated + 1
    for values, ex in ((got[1], ex16), (got[3], ex18)):  # the fitted workbook shows the fit's RMSE
        assert_close(values["dotprod_rmse"][0, 0], ex.dot_fit.rmse, "fitted dotprod RMSE")
        assert_close(values["bias_rmse"][0, 0], ex.bias_fit.rmse, "fitted bias RMSE")
    assert_close(got[0]["dotprod_rmse"][0, 0], ex16.dot_fit.history[0], "starting RMSE")
    # After the edit: the loss and the word_emb lookup follow.
    after = got[4]
    assert_close(after["dotprod_rmse"][0, 0], rmse(ct16.ratings, edited_f), "RMSE after the edit")
    assert after["dotprod_rmse"][0, 0] > got[1]["dotprod_rmse"][0, 0] + 0.01
    assert_close(after["long_rmse"][0, 0], after["dotprod_rmse"][0, 0], "long_format = dotprod")
    assert_blocks(after, {"word_emb_user_mmult": user[6:7]}, "word_emb lookup of user 7")
    wb = load_workbook(edited)
    for values in got[:5]:
        for sheet in ("dotprod", "bias"):
            assert fits(first(wb, f"{sheet}_rmse"), values[f"{sheet}_rmse"][0, 0])
    # LibreOffice (7.4 here) keeps the Solver model as sheet-level names when it saves.
    back = load_workbook(tmp_path / "recalculated" / ex16.fitted_path.name)
    assert back["dotprod"].defined_names["solver_opt"].attr_text.replace("'", "") == "dotprod!$W$24"
    adj = back["bias"].defined_names["solver_adj"].attr_text.replace("'", "")
    assert adj == "bias!$B$25:$G$39,bias!$H$18:$V$23"
    # Titles that look like formulas stay text: no #DIV/0!, no live link.
    copy = tmp_path / "recalculated" / nasty.name
    ws = load_workbook(copy, data_only=True)["movie titles"]
    assert [ws[f"B{5 + j}"].value for j in (0, 1, 2)] == NASTY_TITLES[:3]
    assert not read_formulas(copy)["movie titles"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(crosstab, path, workbook) of the seeded workbook; read-only, shared by the module."""
    ct = crosstab(data.load("synthetic"), top_n=15)
    path = collab.write(ct, tmp_path_factory.mktemp("synthetic") / collab.FILENAME, seed=42)
    return ct, path, load_workbook(path)


def test_named_blocks_cover_every_formula_cell(synthetic):
    ct, path, wb = synthetic
    want = collab.expected(ct, *(init_factors(15, 15, bias=b, seed=42) for b in (False, True)))
    named, formula_cells = set(), set()
    for name, block in want.items():
        assert np.shape(book.cells(wb, name)) == block.shape, name
        named |= cells_in(*next(wb.defined_names[name].destinations))
    for sheet, cells in read_formulas(path).items():
        for cell in cells:
            value = wb[sheet][cell].value  # an array formula fills every cell of its range
            formula_cells |= cells_in(sheet, value.ref if isinstance(value, ArrayFormula) else cell)
    # Every formula cell is compared with Python through a named block, and nothing else is.
    assert named == formula_cells


def test_workbook_layout_formulas_colours_and_notes(synthetic):
    ct, path, wb = synthetic
    assert wb.sheetnames == list(collab.SHEETS)
    # The lesson's screen: ratings on top, movie factors under them, predictions below, user
    # factors to their left, the RMSE beside them.
    blocks = ["ratings", "movie_factors", "predictions", "user_factors", "rmse"]
    at = ["G3:U17", "G18:U22", "G24:U38", "B24:F38", "W24"]
    assert [where(wb, f"dotprod_{b}") for b in blocks] == at
    assert [where(wb, f"bias_{b}") for b in ("user_bias", "movie_bias")] == ["G25:G39", "H23:V23"]
    ws, bias = wb["dotprod"], wb["bias"]
    rmse = "=SQRT(SUMXMY2(dotprod_ratings,dotprod_predictions)/COUNT(dotprod_ratings))"
    assert ws["W24"].value == rmse
    assert ws["G24"].value == '=IF(G3="",0,$B24*G$18+$C24*G$19+$D24*G$20+$E24*G$21+$F24*G$22)'
    dot = "$B25*H$18+$C25*H$19+$D25*H$20+$E25*H$21+$F25*H$22"
    assert bias["H25"].value == f'=IF(H3="",0,{dot}+$G25+H$23)'
    long = wb["long_format"]
    assert long["F7"].value == "=INDEX(dotprod_user_factors,$D7,1)"
    assert long["B3"].value == "=SQRT(SUM(long_sq_errors)/COUNT(long_ratings))"
    # The constants are the seeded factors (the 16 digits openpyxl writes) and the crosstab, exactly.
    f = collab.as_written(init_factors(15, 15, seed=42))
    values = {n: [[c.value for c in row] for row in book.cells(wb, n)] for n in wb.defined_names}
    assert values["dotprod_user_factors"] == f.user.tolist()
    assert values["dotprod_movie_factors"] == f.movie.T.tolist()
    assert np.abs(f.user - init_factors(15, 15, seed=42).user).max() <= 1e-16
    ratings = np.array(values["dotprod_ratings"], dtype=float)
    np.testing.assert_array_equal(ratings, ct.ratings)  # NaN where the cell is blank
    assert values["dotprod_movie_ids"] == [ct.movies.tolist()]
    assert [r[0] for r in values["dotprod_user_ids"]] == ct.users.tolist()
    for b, kind in zip(blocks, ("rating", "movie", "prediction", "user", "loss")):
        name = f"dotprod_{b}"
        assert first(wb, name).fill.start_color.rgb[-6:] == book.FILLS[kind].start_color.rgb[-6:]
        assert first(wb, name).comment is not None and len(first(wb, name).comment.text) > 40
    assert "Solver" in ws["W24"].comment.text and "bias" in first(wb, "bias_user_bias").comment.text
    assert "Solver" in ws["W25"].value and "Solver" in long["A2"].value
    assert wb["movie titles"]["B5"].value == ct.titles[0]
    used = set()
    for cells in read_formulas(path).values():
        for formula in cells.values():
            used |= set(re.findall(r"([A-Z][A-Z0-9.]*)\(", formula))
    assert used and used <= PORTABLE, used - PORTABLE


def test_word_emb_multiplies_a_one_hot_row_by_the_factor_matrix(synthetic):
    ct, _, wb = synthetic
    mm = first(wb, "word_emb_user_mmult").value
    assert isinstance(mm, ArrayFormula) and mm.ref == where(wb, "word_emb_user_mmult") == "B7:F7"
    assert mm.text == "=MMULT(word_emb_user_onehot,dotprod_user_factors)"
    assert first(wb, "word_emb_user_onehot").value == "=IF(B5=word_emb_user,1,0)"
    movie = first(wb, "word_emb_movie_mmult").value.text
    assert movie == "=MMULT(word_emb_movie_onehot,TRANSPOSE(dotprod_movie_factors))"
    batch = first(wb, "word_emb_batch_factors").value
    assert batch.text == "=MMULT(word_emb_batch_onehot,dotprod_user_factors)"
    # The Python side of the same idea: one_hot(i) @ W is W[i], row for row, for a whole batch.
    f = init_factors(15, 15, seed=42)
    idx = np.array([3, 0, 14, 3])
    np.testing.assert_array_equal(collab.one_hot(idx, 15) @ f.user, f.user[idx])
    positions = collab.expected(ct, f, init_factors(15, 15, bias=True))["word_emb_batch_positions"]
    assert len(set(positions.ravel())) > 1  # the batch holds several users


def test_sheets_fit_one_screen_name_their_font_and_show_whole_labels(synthetic):
    _, _, wb = synthetic
    for sheet in ("dotprod", "bias"):
        ws = wb[sheet]
        # At 100% zoom: at most 40 rows (of 17 px) and 1,400 px of columns (Excel's 7 w + 5 px a
        # column), which a 1440 x 900 laptop screen shows beside the program's toolbars.
        pixels = sum(int(7 * (ws.column_dimensions[get_column_letter(c)].width or 8.43) + 5)
                     for c in range(1, ws.max_column + 1))  # fmt: skip
        assert ws.max_row <= 40 and pixels <= 1400, (ws.max_row, pixels)
        assert first(wb, f"{sheet}_rmse").number_format == "0.0000"
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and c.fill.fill_type is None:
                    continue
                # Every written or coloured cell names its font (none falls back to a serif face).
                assert c.font.name == book.FONT_NAME, (ws.title, c.coordinate, c.font.name)
                overflows = c.font.i or c.font.sz == book.FONTS["title"].sz
                if c.data_type == "f" or overflows or c.value is None:
                    continue
                if ws.title == "movie titles" and c.column == 2:
                    continue  # a title may be longer than the capped column: it is the last shown
                assert fits(c, c.value), (ws.title, c.coordinate, c.value)
    # A factor, a prediction and an RMSE as large as a student's edit might make them still fit.
    for name, value in (("user_factors", -9.876), ("predictions", -9.99), ("rmse", 99.9999)):
        assert fits(first(wb, f"dotprod_{name}"), value), name


def test_solver_model_is_written_the_way_excel_saves_one(synthetic):
    _, path, wb = synthetic
    for sheet, opt, adj in (
        ("dotprod", "$W$24", "'dotprod'!$B$24:$F$38,'dotprod'!$G$18:$U$22"),
        ("bias", "$X$25", "'bias'!$B$25:$G$39,'bias'!$H$18:$V$23"),
    ):
        names = wb[sheet].defined_names
        assert names["solver_opt"].attr_text == f"'{sheet}'!{opt}"
        assert names["solver_adj"].attr_text == adj
        keys = ("solver_typ", "solver_eng", "solver_neg", "solver_num", "solver_ver")
        assert [names[n].attr_text for n in keys] == ["2", "1", "2", "0", "3"]
        assert all(names[n].hidden for n in names)
    # Sheet-local (localSheetId) and hidden, as Excel writes them; the blocks' names are the
    # workbook's, visible (Formulas > Name Manager).
    xml = zipfile.ZipFile(path).read("xl/workbook.xml").decode()
    for sheet_id in (0, 1):
        assert f'<definedName name="solver_opt" localSheetId="{sheet_id}" hidden="1">' in xml
    assert not any(n.startswith("solver_") or wb.defined_names[n].hidden for n in wb.defined_names)


NASTY_TITLES = ["=1/0", '=HYPERLINK("http://example.com","click me")', "+1+1"]
NASTY_TITLES += ["Bell\x07 Book\x00 (1999)", "Tab\there (2001)", "@SUM(1)"]


@pytest.fixture(scope="module")
def nasty(tmp_path_factory):
    rng = np.random.default_rng(0)
    cells = [(u, m) for u in range(1, 7) for m in range(1, 7) if (u + m) % 5]
    rows = [(u, m, float(rng.integers(1, 11)) / 2) for u, m in cells]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    movies = pd.DataFrame({"movieId": range(1, 7), "title": NASTY_TITLES})
    ct = crosstab(ratings, top_n=6, movies=movies)  # openpyxl refused \x00, \x07
    return collab.write(ct, tmp_path_factory.mktemp("nasty") / "nasty.xlsx", seed=1)


def test_titles_are_text_never_formulas_and_control_characters_do_not_crash(nasty):
    ws = load_workbook(nasty)["movie titles"]
    shown = [ws.cell(5 + j, 2).value for j in range(6)]
    assert all(ws.cell(5 + j, 2).data_type == "s" for j in range(6))  # text cells, not formulas
    assert shown[:3] == NASTY_TITLES[:3] and shown[5] == "@SUM(1)"
    assert shown[3] == "Bell\\x07 Book\\x00 (1999)" and shown[4] == "Tab here (2001)"
    assert not read_formulas(nasty)["movie titles"]


def test_bad_input_never_leaves_a_half_written_workbook(synthetic, tmp_path, capsys):
    ct, _, _ = synthetic
    with pytest.raises(book.WorkbookError, match="folder .*nowhere does not exist"):
        collab.export(ct, tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    path = Path(shutil.copy(synthetic[1], tmp_path))
    before = path.read_bytes()
    lock = tmp_path / f".~lock.{collab.FILENAME}#"
    lock.write_text("someone,host,01.01.2026 10:00;")
    with pytest.raises(book.WorkbookError, match="open in a spreadsheet program"):
        collab.export(ct, tmp_path)
    assert path.read_bytes() == before and not (tmp_path / collab.FITTED_FILENAME).exists()
    out = tmp_path / "cli"
    assert cli.main(["excel", "--out", str(out), "--source", "synthetic", "--top-n", "400"]) == 2
    assert "top 400 users but the ratings hold only 300 users" in capsys.readouterr().err
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match="do not fit a 15 x 15 crosstab"):
        collab.build(ct, init_factors(14, 15), init_factors(15, 15, bias=True))


def test_cli_writes_both_workbooks_and_check_recalculates_them(tmp_path, capsys, monkeypatch):
    out = tmp_path / "new" / "folder"
    argv = ["excel", "--out", str(out), "--source", "synthetic", "--top-n", "6", "--seed", "3"]
    with monkeypatch.context() as m:  # without LibreOffice, --check writes and then says so
        m.setenv("LESSON5_SOFFICE", str(tmp_path / "no-soffice"))
        m.setenv("PATH", str(tmp_path))
        assert cli.main([*argv, "--check"]) == 2
    said = capsys.readouterr()
    assert "LibreOffice (soffice) was not found" in said.err
    assert "crosstab: 6 users x 6 movies" in said.out
    names = sorted([collab.FILENAME, collab.FITTED_FILENAME, xg.FILENAME])
    assert all(f"wrote {out / n}" in said.out for n in names)
    assert sorted(p.name for p in out.iterdir()) == names  # write_all's workbooks, nothing else
    assert (out / xg.FILENAME).stat().st_size > 10_000
    start = load_workbook(out / collab.FILENAME)
    assert where(start, "dotprod_ratings") == "G3:L8"
    want = book.as_written(init_factors(6, 6, seed=3).user[0, 0])
    assert first(start, "dotprod_user_factors").value == want
    # From here write_all hands back the workbooks above (written once, not three times).
    monkeypatch.setattr(excel, "write_all", lambda *args, **kwargs: [out / n for n in names])
    assert cli.main(argv) == 0  # without --check: written, and nothing recalculated
    assert not (out / "recalculated").exists() and "wrote" in capsys.readouterr().out
    require_soffice()
    assert cli.main([*argv, "--check"]) == 0
    text = capsys.readouterr().out
    assert "LibreOffice recalculated 3 workbooks" in text
    assert ": 0 error values or empty results" in text
    assert sorted(p.name for p in (out / "recalculated").glob("*.xlsx")) == names
