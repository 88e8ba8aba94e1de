"""What both workbook writers share: the lesson's colours, references and names, widths, atomic save.

Notebooks 01 and 02.

Colours as the lesson's: ratings blue, predictions purple, loss red, movie factors green, user
factors orange, inputs a student may edit yellow. Every block a formula or a test reads is a
workbook-level defined name, read back with `cells`.
"""

from __future__ import annotations

import functools
import gc
import io
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import absolute_coordinate, coordinate_from_string, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.worksheet import Worksheet

from lesson5.atomic import DISK_FULL, atomic_write

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class WorkbookError(OSError):
    """A workbook could not be written (missing folder, open or read-only target); says which file."""


FONT_NAME = "Arial"
# Every styled cell names its font (a cell without one falls back to a serif face in some
# programs). Arial is on every Windows and Mac; LibreOffice substitutes a metric twin.
_font = functools.partial(Font, name=FONT_NAME, size=10)
# Light fills keep the numbers readable; the font colour carries the same meaning in print.
FILLS = {kind: PatternFill("solid", start_color=rgb, end_color=rgb) for kind, rgb in dict(
    rating="DDEBF7", prediction="E4DFEC", loss="F8CBAD", movie="E2EFDA", user="FCE4D6",
    input="FFF2CC", header="D9D9D9").items()}  # fmt: skip
FONTS = {
    "body": _font(),
    "rating": _font(color="1F4E79"),
    "prediction": _font(color="7030A0"),
    "loss": _font(color="C00000", bold=True),
    "movie": _font(color="375623"),
    "user": _font(color="C65911"),
    "input": _font(color="7F6000", bold=True),
    "header": _font(bold=True),
    "note": _font(italic=True, color="595959"),
    "title": _font(bold=True, size=13),
}


def as_written(x: float | np.ndarray) -> float | np.ndarray:
    """The number(s) a workbook holds for `x`: openpyxl writes floats with 16 significant digits."""
    import numpy as np

    snap = np.vectorize(lambda v: float(f"{v:.16g}"), otypes=[np.float64])
    return float(snap(x)) if np.ndim(x) == 0 else snap(np.asarray(x, dtype=np.float64))


def ref(ws: Worksheet | str, cells: str, absolute: bool = True) -> str:
    """A reference to `cells` (a cell, range or union "A1:B2,C3") on sheet `ws`: `'it''s'!$B$2`."""
    sheet = quote_sheetname(ws if isinstance(ws, str) else ws.title)
    return ",".join(
        f"{sheet}!{absolute_coordinate(part) if absolute else part}" for part in cells.split(",")
    )


def pin(cell: str, col: bool = True, row: bool = True) -> str:
    """`cell` with its column and/or row fixed, as a formula copied across keeps them: "$B3"."""
    letters, number = coordinate_from_string(cell)
    return f"{'$' if col else ''}{letters}{'$' if row else ''}{number}"


def span(col: int, row: int, n_rows: int = 1, n_cols: int = 1) -> str:
    """The A1 range of `n_rows` x `n_cols` cells from the 1-based (`col`, `row`): span(2, 3, 2) == "B3:B4"."""
    return f"{get_column_letter(col)}{row}:{get_column_letter(col + n_cols - 1)}{row + n_rows - 1}"


def define_name(wb: Workbook, name: str, ws: Worksheet, cells: str) -> str:
    """Name the block `cells` of `ws` in the whole workbook (`adam_lr`, `dotprod_ratings`); return it."""
    wb.defined_names[name] = DefinedName(name, attr_text=ref(ws, cells))
    return name


def cells(wb: Workbook, name: str) -> tuple[tuple, ...]:
    """The cells of the defined name `name` (one rectangle), row by row."""
    if name not in wb.defined_names:
        raise KeyError(f"the workbook has no name {name!r}")
    ((sheet, where),) = wb.defined_names[name].destinations
    got = wb[sheet.replace("''", "'")][where]  # openpyxl leaves a quoted quote doubled
    return got if isinstance(got, tuple) else ((got,),)


def table(wb: Workbook, name: str) -> pd.DataFrame:
    """The named block whose first row is its header, as a DataFrame of the cells' values."""
    import pandas as pd

    head, *rows = [[c.value for c in row] for row in cells(wb, name)]
    return pd.DataFrame(rows, columns=head)


def style(ws: Worksheet, cells: str, kind: str, number_format: str | None = None) -> None:
    """Give every cell of the range `cells` the fill and font of `kind` (a key of FONTS)."""
    for row in ws[cells] if ":" in cells else ((ws[cells],),):
        for c in row:
            c.font = FONTS[kind]
            if kind in FILLS:
                c.fill = FILLS[kind]
            if number_format is not None:
                c.number_format = number_format


def put(ws: Worksheet, cell: str, value: object, kind: str = "body") -> None:
    """Write `value` in the style of `kind`: "header" centres it, "note" and "title" may overflow."""
    ws[cell] = value
    style(ws, cell, kind)
    if kind == "header":
        ws[cell].alignment = Alignment(horizontal="center")


# What XML 1.0 allows in a cell's text; openpyxl's ILLEGAL_CHARACTERS_RE lets U+FFFE, U+FFFF and
# lone surrogates through, and a file holding one opens in neither openpyxl nor LibreOffice.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_CELL_UNITS = 32_767  # the most text a cell holds, in UTF-16 code units (an emoji takes two)


def text(value: object) -> str:
    """`value` as cell text: characters XML forbids shown as \\xNN, cut to Excel's cell size."""
    s = re.sub("\r\n|[\t\n\r]", " ", str(value))
    s = NOT_XML.sub(lambda m: m[0].encode("unicode_escape").decode(), s)  # \x00, \ufffe
    units = s.encode("utf-16-le")
    if len(units) > 2 * MAX_CELL_UNITS:  # cut on a whole character, and say so with an ellipsis
        s = units[: 2 * (MAX_CELL_UNITS - 1)].decode("utf-16-le", "ignore") + "\u2026"
    return s


def put_text(ws: Worksheet, cell: str, value: object, kind: str = "body") -> None:
    """Write `value` as a text cell, never a formula: a title "=1/0" stays those four characters."""
    put(ws, cell, text(value), kind)
    ws[cell].data_type = "s"  # openpyxl would otherwise store a leading "=" as a live formula


def exact(value: int) -> int | str:
    """An id as a cell value: the number, or beyond 2**53 its digits as text (no rounding)."""
    number = int(value)
    return number if abs(number) <= 2**53 else str(number)


def comment(ws: Worksheet, cell: str, text: str, height: int = 110) -> None:
    """A red-triangle note on `cell` (what the cell is, what to try), as the lesson's workbooks had."""
    ws[cell].comment = Comment(text, "lesson5", width=300, height=height)


def shown_width(value: object, number_format: str = "General", bold: bool = False) -> float:
    """About how many character widths `value` needs when shown with `number_format` (Excel units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        digits = number_format.split(".")[1].split("E")[0].count("0") if "." in number_format else 0
        kind = "E" if "E" in number_format else "f"  # "General" has no capital E
        shown = f"{value:.10g}" if number_format == "General" else f"{value:.{digits}{kind}}"
    else:
        shown = str(value if value is not None else "")
    return len(shown) * (1.1 if bold else 1.0) + 1.5  # padding: a cell's margins


def fit_columns(
    ws: Worksheet, widest: dict[str, float], minimum: float = 4.0, maximum: float = 40.0
) -> None:
    """Widen each column to its widest cell: a label as it is, a number as the widest its format shows.

    `widest`: number format -> the widest number such a cell must show; titles and notes overflow.
    """
    need: dict[int, float] = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is None or (c.font and (c.font.i or c.font.sz == FONTS["title"].sz)):
                continue
            bold = bool(c.font and c.font.b)
            w = 0.0 if c.data_type == "f" else shown_width(c.value, c.number_format, bold)
            if c.number_format in widest:
                w = max(w, shown_width(widest[c.number_format], c.number_format, bold))
            need[c.column] = max(need.get(c.column, minimum), w)
    for col, w in need.items():
        letter = get_column_letter(col)  # a column set by hand keeps at least its width
        now = ws.column_dimensions[letter].width if letter in ws.column_dimensions else 0
        ws.column_dimensions[letter].width = math.ceil(max(min(w, maximum), now or 0) * 10) / 10


def check_writable(path: str | os.PathLike) -> Path:
    """Raise WorkbookError unless `path` could be (over)written now: folder exists, file not open."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WorkbookError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise WorkbookError(f"cannot write {path}: it is a folder")
    # LibreOffice and Excel leave these beside a file while it is open in them.
    locks = [path.with_name(f".~lock.{path.name}#"), path.with_name(f"~${path.name}")]
    if locks := [p for p in locks if p.exists()]:
        raise WorkbookError(
            f"cannot write {path}: it is open in a spreadsheet program "
            f"(lock file {locks[0].name}); close it first"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise WorkbookError(f"cannot write {path}: the file is read-only")
    return path


def save_atomic(wb: Workbook, path: str | os.PathLike) -> Path:
    """Save to a temporary file in the target's folder, then rename over `path` (never half-written)."""
    path = check_writable(path)
    # Zipped in memory first, so that a full disk fails one plain write, not openpyxl's zip writer.
    buffer, failed = io.BytesIO(), None
    with mock.patch.object(sys, "unraisablehook", lambda _: None):
        try:
            wb.save(buffer)  # openpyxl still writes each sheet to a temporary file first
        except OSError as e:  # only its numbers are kept, so that the traceback is freed here
            failed = (e.errno, e.strerror or str(e))
        if failed is not None:
            # Its abandoned sheet writer fails once more when collected: swallowed, not printed.
            gc.collect()
    if failed is not None:
        number, why = failed
        where = f"{tempfile.gettempdir()}, where openpyxl writes its temporary sheets"
        if number in DISK_FULL:
            raise WorkbookError(
                f"cannot write {path}: the disk is full ({why}) in {where}; free some space there "
                f"or set TMPDIR to a folder with room (nothing was written)"
            )
        raise WorkbookError(f"cannot write {path}: {why} in {where}")
    try:
        return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))
    except OSError as e:
        raise WorkbookError(str(e) if e.errno in DISK_FULL else f"cannot write {path}: {e}") from e
