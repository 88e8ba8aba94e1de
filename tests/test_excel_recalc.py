"""The Excel layer: atomic saves, defined names, and LibreOffice recalculation against closed forms."""

from __future__ import annotations

import math
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest
from _excel_helpers import assert_close, require_soffice
from openpyxl import Workbook, load_workbook

from lesson5.excel import book, recalc
from lesson5.excel.recalc import RecalcError, find_problems, read_values, recalculate_many


def recalculate(path, out=None, timeout: float = 180.0):
    return recalculate_many([path], out, timeout)[0]


def script(path: Path, body: str) -> Path:
    """An executable shell script: a stand-in soffice."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _closed_form_book(path: Path) -> Path:
    """Formulas whose answers are known in closed form (sqrt(12.5), 32, ...)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "It's my sheet"  # a student's name: references quoted, the quote doubled
    for r, (a, b) in enumerate([(3, 0), (4, 0), (None, 7)], start=1):
        ws.cell(r, 1, a)
        ws.cell(r, 2, b)
    ws["C1"] = "=SQRT(SUMXMY2(A1:A2,B1:B2)/COUNT(A1:A3))"  # sqrt((9+16)/2)
    ws["C2"] = '=IF(A3="",0,A3*B3)'  # blank -> 0
    ws["C3"] = "=SUMPRODUCT(A1:A2,{1;2})"  # 3 + 8
    ws["D1"] = 0.25
    book.define_name(wb, "lr", ws, "D1")
    ws["D2"] = "=lr*A2"  # 1
    ws["D3"] = "=INDEX(A1:B3,MATCH(7,B1:B3,0),2)"  # 7
    other = wb.create_sheet("other")
    other["A1"] = f"={book.ref(ws, 'C1')}^2"  # 12.5
    other["A2"] = f"=SUMPRODUCT({book.ref(ws, 'A1:A2')},{book.ref(ws, 'A1:A2')})"  # 25
    return book.save_atomic(wb, path)


def _broken_book(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "bad"
    ws["A1"] = "=NOSUCHFUNCTION(1)"
    ws["A2"] = "=1/0"
    ws["A3"] = '=""'
    ws["A4"] = "=SQRT(-1)"
    ws["A5"] = 1.5  # a constant is never a problem
    return book.save_atomic(wb, path)


@pytest.mark.libreoffice
def test_libreoffice_recalculates_closed_forms_and_reports_errors(tmp_path):
    require_soffice()
    good = _closed_form_book(tmp_path / "good.xlsx")
    bad = _broken_book(tmp_path / "bad.xlsx")
    # openpyxl stores no results: without a recalculation there is nothing to read.
    assert read_values(good)["It's my sheet"].get("C1") is None
    out = tmp_path / "out"
    good_copy, bad_copy = recalculate_many([good, bad], out)  # one LibreOffice start for both
    assert good_copy.parent == out.resolve() and good_copy.name == "good.xlsx"
    v = read_values(good_copy)
    want = dict(C1=math.sqrt(12.5), C2=0.0, C3=11.0, D2=1.0, D3=7.0)
    for sheet, cells in {"It's my sheet": want, "other": dict(A1=12.5, A2=25.0)}.items():
        for cell, value in cells.items():
            assert_close(v[sheet][cell], value, f"{sheet}!{cell}")
    assert find_problems(good_copy) == []
    # The recalculated copy keeps its formulas and defined names (a student can still edit it).
    wb = load_workbook(good_copy)
    assert wb["It's my sheet"]["D2"].value == "=lr*A2"
    assert "lr" in wb.defined_names
    problems = find_problems(bad_copy)
    cells = sorted(p.split(":")[0] for p in problems)
    assert cells == ["bad!A1", "bad!A2", "bad!A3", "bad!A4"], problems
    assert any("#NAME?" in p for p in problems) and any("#DIV/0!" in p for p in problems)
    assert any("has no result" in p for p in problems)

    # A file that carries stale cached results (A1 changed behind LibreOffice's back): the
    # private profile makes LibreOffice recalculate on load instead of trusting the cache.
    stale = tmp_path / "stale.xlsx"
    with (
        zipfile.ZipFile(good_copy) as src,
        zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, n = re.subn(rb'(<c r="A1"[^>]*>)<v>3</v>', rb"\g<1><v>6</v>", data)
                assert n == 1
            dst.writestr(item, data)
    assert_close(read_values(stale)["It's my sheet"]["C1"], math.sqrt(12.5), "stale cache")
    v = read_values(recalculate(stale, tmp_path / "out2"))
    assert_close(v["It's my sheet"]["C1"], math.sqrt(26.0), "C1 after the edit")
    assert_close(v["other"]["A1"], 26.0, "other!A1 after the edit")


def test_recalculated_names_raises_on_problems(tmp_path, monkeypatch):
    """The one-call helper refuses a workbook with errors (checked without LibreOffice: a stand-in copies files)."""
    bad = _broken_book(tmp_path / "bad.xlsx")
    # A stand-in "soffice" that copies the inputs unchanged: every formula is then without a result.
    copy = 'out=""\nwhile [ $# -gt 0 ]; do case "$1" in --outdir) out="$2"; shift;; '
    fake = script(tmp_path / "fake-soffice", copy + '*.xlsx) cp "$1" "$out/";; esac; shift; done')
    monkeypatch.setenv("LESSON5_SOFFICE", str(fake))
    with pytest.raises(RecalcError, match=r"bad\.xlsx: 4 formula problem\(s\)"):
        recalc.recalculated_names([bad], tmp_path / "out")


def test_recalculate_errors_are_clear(tmp_path, monkeypatch):
    good, out = _closed_form_book(tmp_path / "good.xlsx"), tmp_path / "out"
    monkeypatch.setenv("PATH", str(tmp_path))
    slow = script(tmp_path / "slow", "exec /bin/sleep 30")
    fails = script(tmp_path / "fails", "echo 'no display' >&2\nexit 3")
    for soffice, args, match in (
        (tmp_path / "nowhere", (good,), "soffice.*not found"),
        (slow, (good, out, 1), "more than 1 s"),
        (fails, (good, out), r"exit 3\): no display"),
        (fails, (tmp_path / "missing.xlsx", out), "no such file"),
        (fails, (good, tmp_path), "must differ"),
    ):
        monkeypatch.setenv("LESSON5_SOFFICE", str(soffice))
        with pytest.raises(RecalcError, match=match):
            recalculate(*args)


def test_save_atomic_refuses_bad_targets_and_never_half_writes(tmp_path, monkeypatch):
    wb = Workbook()
    wb.active["A1"] = 1
    with pytest.raises(book.WorkbookError, match="folder .*missing.* does not exist"):
        book.save_atomic(wb, tmp_path / "missing" / "x.xlsx")
    target = book.save_atomic(wb, tmp_path / "x.xlsx")
    before = target.read_bytes()
    os.umask(umask := os.umask(0))
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not 0600
    lock = tmp_path / ".~lock.x.xlsx#"
    lock.write_text("someone,host")
    with pytest.raises(book.WorkbookError, match="open in a spreadsheet program"):
        book.save_atomic(wb, target)
    lock.unlink()
    (tmp_path / "dir.xlsx").mkdir()
    with pytest.raises(book.WorkbookError, match="is a folder"):
        book.save_atomic(wb, tmp_path / "dir.xlsx")

    def crash(self, buffer):  # writes half a file (save_atomic zips into memory), then fails
        buffer.write(b"PK\x03\x04half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Workbook, "save", crash)
    with pytest.raises(book.WorkbookError, match="No space left"):
        book.save_atomic(Workbook(), target)
    assert target.read_bytes() == before  # the old workbook is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.xlsx", "x.xlsx"]  # no temp file left


def test_names_refs_pins_and_styles_round_trip(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "grad desc"
    ws["B2"], ws["A1"] = 0.1, "=B2*2"
    assert book.define_name(wb, "lr", ws, "B2") == "lr"
    book.define_name(wb, "block", ws, book.span(1, 1, 2, 2))
    book.style(ws, "A1:B2", "prediction", "0.00")
    book.put(ws, "C1", 2571, "header")
    book.put(ws, "D1", "a note", "note")
    book.fit_columns(ws, {"0.00": -9.99})
    back = load_workbook(book.save_atomic(wb, tmp_path / "n.xlsx"))
    assert back.defined_names["lr"].attr_text == "'grad desc'!$B$2"
    blocks = [[c.coordinate for c in row] for row in book.cells(back, "block")]
    assert blocks == [["A1", "B1"], ["A2", "B2"]]
    assert book.cells(back, "lr")[0][0].value == 0.1
    ws2 = back["grad desc"]
    assert ws2["B2"].fill.start_color.rgb.endswith(book.FILLS["prediction"].start_color.rgb[-6:])
    assert ws2["A1"].number_format == "0.00" and ws2["C1"].value == 2571
    # A formula is as wide as the widest number its format shows, "-9.99", and a cell's margins;
    # a note overflows into its empty neighbours.
    assert ws2.column_dimensions["A"].width == 6.5 and "D" not in ws2.column_dimensions
    with pytest.raises(KeyError, match="no name 'nope'"):
        book.cells(back, "nope")
    # A sheet name with a quote is quoted, the quote doubled; pin fixes a column, a row or both.
    assert book.ref("It's here", "A1") == "'It''s here'!$A$1"
    assert book.ref("It's here", "A1:B2,C3") == "'It''s here'!$A$1:$B$2,'It''s here'!$C$3"
    assert book.ref("It's here", "AB12", absolute=False) == "'It''s here'!AB12"
    pins = book.pin("AB12"), book.pin("AB12", row=False), book.pin("AB12", col=False)
    assert pins == ("$AB$12", "$AB12", "AB$12")
