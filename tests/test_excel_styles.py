"""The shared workbook styles: every styled cell of every exported workbook names its font."""

from __future__ import annotations

from lesson5.excel import book
from lesson5.excel import graddesc as graddesc_book


def test_shared_styles_name_their_font():
    assert all(f.name == book.FONT_NAME and f.sz for f in book.FONTS.values())


def test_every_styled_graddesc_cell_names_its_font():
    # Without a name, LibreOffice showed these cells in a serif fallback face.
    wb = graddesc_book.build()
    styled = [
        c
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.fill.fill_type is not None or c.font.b or c.font.i
    ]
    assert len(styled) > 100
    unnamed = [f"{c.parent.title}!{c.coordinate}" for c in styled if not c.font.name]
    assert not unnamed, unnamed[:10]
