"""Small helpers for writing the lesson's workbooks with openpyxl.

Notebooks 01 and 02.

Colours follow the lesson's spreadsheets: ratings blue, predictions purple, the loss red,
movie factors green, user factors orange; inputs a student may edit are yellow.
"""

from __future__ import annotations

import gc
import io
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

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


class WorkbookError(OSError):
    """A workbook could not be written (missing folder, locked or unwritable target); says which file.

    Notebooks 01 and 02.
    """


def _fill(rgb: str) -> PatternFill:
    return PatternFill(fill_type="solid", start_color=rgb, end_color=rgb)


# Light fills keep the numbers readable; the font colour carries the same meaning in print.
FILLS = {
    "rating": _fill("DDEBF7"),  # blue: actual ratings
    "prediction": _fill("E4DFEC"),  # purple: predictions
    "loss": _fill("F8CBAD"),  # red: the loss a Solver minimises
    "movie": _fill("E2EFDA"),  # green: movie factors
    "user": _fill("FCE4D6"),  # orange: user factors
    "input": _fill("FFF2CC"),  # yellow: a parameter to edit (learning rate, ...)
    "header": _fill("D9D9D9"),  # grey: ids and labels
}
# Every styled cell names its font (a cell without a name falls back to a serif face in some
# programs). Arial is on every Windows and Mac; LibreOffice substitutes a metric twin where missing.
FONT_NAME, FONT_SIZE = "Arial", 10


def _font(**kw: object) -> Font:
    return Font(name=FONT_NAME, size=kw.pop("size", FONT_SIZE), **kw)


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
# Few digits a student reads at a glance; the loss keeps four decimals so a Solver's progress shows.
NUMBER_FORMATS = {
    "rating": "0.0",
    "factor": "0.000",
    "prediction": "0.00",
    "loss": "0.0000",
    "id": "0",
}


def as_written(x: float | np.ndarray) -> float | np.ndarray:
    """The number(s) a workbook will hold for `x`: openpyxl writes floats as "%.16g".

    Notebooks 01 and 02.

    Compute with these, not the raw floats, and Python and the spreadsheet see the very same inputs.
    """
    import numpy as np

    snap = np.vectorize(lambda v: float(f"{v:.16g}"), otypes=[np.float64])
    return float(snap(x)) if np.ndim(x) == 0 else snap(np.asarray(x, dtype=np.float64))


def ref(ws: Worksheet | str, cells: str, absolute: bool = True) -> str:
    """A reference to `cells` on sheet `ws` for formulas and defined names: `'it''s'!$B$2`.

    Notebooks 01 and 02.

    Notebooks 01 and 02. `cells` may be a cell, a range or a union ("A1:B2,C3"); openpyxl quotes
    the sheet name (doubling any quote in it), so every name a student types works.
    """
    sheet = quote_sheetname(ws if isinstance(ws, str) else ws.title)
    parts = cells.split(",")
    return ",".join(f"{sheet}!{absolute_coordinate(part) if absolute else part}" for part in parts)


def addr(col: int, row: int) -> str:
    """The A1-style address of the 1-based (`col`, `row`): addr(28, 5) == "AB5".

    Notebooks 01 and 02.
    """
    return f"{get_column_letter(col)}{row}"


def pin(cell: str, col: bool = True, row: bool = True) -> str:
    """`cell` with its column and/or its row fixed: pin("B3", row=False) == "$B3".

    Notebooks 01 and 02.

    A formula copied across keeps its pinned parts, as the lesson's sheet does.
    """
    if col and row:
        return absolute_coordinate(cell)
    letters, number = coordinate_from_string(cell)
    return f"{'$' if col else ''}{letters}{'$' if row else ''}{number}"


def style(ws: Worksheet, cells: str, kind: str, number_format: str | None = None) -> None:
    """Give every cell of the range `cells` the fill and font of `kind` (a key of FILLS/FONTS).

    Notebooks 01 and 02.
    """
    target = ws[cells]
    rows = target if isinstance(target, tuple) else ((target,),)
    for row in rows:
        for c in row if isinstance(row, tuple) else (row,):
            if kind in FILLS:
                c.fill = FILLS[kind]
            if kind in FONTS:
                c.font = FONTS[kind]
            if number_format is not None:
                c.number_format = number_format


def header(ws: Worksheet, cell: str, text: str | int) -> None:
    """A bold grey label (or id) cell.

    Notebooks 01 and 02.
    """
    ws[cell] = text
    ws[cell].fill = FILLS["header"]
    ws[cell].font = FONTS["header"]
    ws[cell].alignment = Alignment(horizontal="center")


def note(ws: Worksheet, cell: str, text: str) -> None:
    """An italic grey explanation cell (e.g. which cells a Solver changes, which it minimises).

    Notebooks 01 and 02.
    """
    ws[cell] = text
    ws[cell].font = FONTS["note"]
    ws[cell].alignment = Alignment(wrap_text=False, vertical="top")


def title(ws: Worksheet, cell: str, text: str) -> None:
    """A large bold sheet title.

    Notebooks 01 and 02.
    """
    ws[cell] = text
    ws[cell].font = FONTS["title"]


def widths(ws: Worksheet, width: float, columns: Iterable[int]) -> None:
    """Set the width of the 1-based `columns`.

    Notebooks 01 and 02.
    """
    for col in columns:
        ws.column_dimensions[get_column_letter(col)].width = width


def freeze(ws: Worksheet, cell: str) -> None:
    """Freeze the rows above and the columns left of `cell` (headers stay visible while scrolling).

    Notebooks 01 and 02.
    """
    ws.freeze_panes = cell


# What XML 1.0 allows in a cell's text; openpyxl's ILLEGAL_CHARACTERS_RE lets U+FFFE, U+FFFF and
# lone surrogates through, and a file holding one opens in neither openpyxl nor LibreOffice.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_CELL_UNITS = 32_767  # the most text a cell holds, in UTF-16 code units (an emoji takes two)


def text(value: object) -> str:
    """`value` as text a workbook keeps: characters XML forbids shown as \\xNN, cut to Excel's cell size.

    Notebooks 01 and 02.
    """
    s = str(value)
    s = s.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    s = NOT_XML.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"
        ),
        s,
    )
    units = s.encode("utf-16-le")
    if len(units) > 2 * MAX_CELL_UNITS:  # cut on a whole character, and say so with an ellipsis
        s = units[: 2 * (MAX_CELL_UNITS - 1)].decode("utf-16-le", "ignore") + "\u2026"
    return s


def exact(value: int) -> int | str:
    """An id as a cell value: the number, or beyond 2**53 its digits as text (a double would round it).

    Notebooks 01 and 02.
    """
    number = int(value)
    return number if abs(number) <= 2**53 else str(number)


def put_text(ws: Worksheet, cell: str, value: object, kind: str = "body") -> None:
    """Write `value` as a text cell, never a formula: a title such as "=1/0" stays those four characters.

    Notebooks 01 and 02.
    """
    c = ws[cell]
    c.value = text(value)
    c.data_type = "s"  # openpyxl would otherwise store a leading "=" as a live formula
    c.font = FONTS[kind]


def body(ws: Worksheet, cells: str) -> None:
    """Give the cells of `cells` the named body font (cells a helper above has not styled).

    Notebooks 01 and 02.
    """
    style(ws, cells, "body")


def sheet_name(ws: Worksheet, name: str, target: str, hidden: bool = False) -> None:
    """A name local to `ws` (as Excel keeps a Solver model: hidden names such as solver_opt on the sheet).

    Notebooks 01 and 02.
    """
    ws.defined_names[name] = DefinedName(name, attr_text=target, hidden=hidden or None)


def shown_width(value: object, number_format: str = "General", bold: bool = False) -> float:
    """About how many character widths `value` needs when shown with `number_format` (Excel units).

    Notebooks 01 and 02.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        decimals = (
            number_format.split(".")[1].count("0")
            if "." in number_format
            else (0 if number_format == "0" else None)
        )
        shown = f"{value:.{decimals}f}" if decimals is not None else f"{value:.10g}"
    else:
        shown = str(value if value is not None else "")
    return len(shown) * (1.1 if bold else 1.0) + 1.5  # padding: a cell's margins


def fit_columns(
    ws: Worksheet, minimum: float = 4.0, maximum: float = 40.0, skip: Iterable[int] = ()
) -> None:
    """Widen each column to its widest constant (label, id, formatted number), within the bounds.

    Notebooks 01 and 02.

    Titles and notes (italic) spill over their empty neighbours and are not counted; formula cells
    are sized by the caller, who knows their range.
    """
    need: dict[int, float] = {}
    skipped = set(skip)
    for row in ws.iter_rows():
        for c in row:
            if (
                c.value is None
                or c.column in skipped
                or c.data_type == "f"
                or (c.font and (c.font.i or c.font.sz == FONTS["title"].sz))
            ):
                continue
            bold = bool(c.font and c.font.b)
            need[c.column] = max(
                need.get(c.column, minimum), shown_width(c.value, c.number_format, bold)
            )
    for col, w in need.items():
        letter = get_column_letter(col)
        current = ws.column_dimensions[letter].width if letter in ws.column_dimensions else None
        ws.column_dimensions[letter].width = math.ceil(max(min(w, maximum), current or 0) * 10) / 10


def define_name(wb: Workbook, name: str, target: str) -> None:
    """A workbook-level name for a cell or range, e.g. `define_name(wb, "lr", ref(ws, "B2"))`.

    Notebooks 01 and 02.
    """
    wb.defined_names[name] = DefinedName(name, attr_text=target)


def _lock_files(path: Path) -> list[Path]:
    # LibreOffice and Excel leave these beside a file while it is open in them.
    return [
        p
        for p in (path.with_name(f".~lock.{path.name}#"), path.with_name(f"~${path.name}"))
        if p.exists()
    ]


def check_writable(path: str | os.PathLike) -> Path:
    """Raise WorkbookError unless `path` could be (over)written now: folder exists, not a folder, not open.

    Notebooks 01 and 02.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WorkbookError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise WorkbookError(f"cannot write {path}: it is a folder")
    locks = _lock_files(path)
    if locks:
        raise WorkbookError(
            f"cannot write {path}: it is open in a spreadsheet program (lock file {locks[0].name}); close it first"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise WorkbookError(f"cannot write {path}: the file is read-only")
    return path


def save_atomic(wb: Workbook, path: str | os.PathLike) -> Path:
    """Save to a temporary file in the target's folder, then rename over `path` (never half-written).

    Notebooks 01 and 02.
    """
    path = check_writable(path)
    # Zipped in memory first, so that a full disk fails one plain write, not openpyxl's zip writer.
    buffer, failed = io.BytesIO(), None
    hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
    try:
        try:
            wb.save(buffer)  # openpyxl still writes each sheet to a temporary file first
        except OSError as e:  # only its numbers are kept, so that the traceback is freed here
            failed = (e.errno, e.strerror or str(e))
        if failed is not None:
            # Its abandoned sheet writer fails once more when collected: swallowed, not printed.
            gc.collect()
    finally:
        sys.unraisablehook = hook
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


# ---- appended for graddesc.xlsx (notebook 02): cell comments, column widths, readable number formats


def comment(ws: Worksheet, cell: str, text: str, width: int = 300, height: int = 110) -> None:
    """A red-triangle note on `cell` (what the cell is, what to try), as the lesson's workbook had.

    Notebooks 01 and 02.
    """
    note_ = Comment(text, "lesson5")
    note_.width, note_.height = width, height
    ws[cell].comment = note_


def fit_widths(
    ws: Worksheet,
    columns: Iterable[int],
    minimum: float = 8,
    maximum: float = 40,
    skip_rows: Iterable[int] = (),
) -> None:
    """Make each of `columns` wide enough for its longest label (rows in `skip_rows` may overflow).

    Notebooks 01 and 02.
    """
    skip = set(skip_rows)
    for col in columns:
        longest = minimum
        for (cell,) in ws.iter_rows(min_col=col, max_col=col):
            if cell.row in skip or not isinstance(cell.value, str) or cell.value.startswith("="):
                continue
            longest = max(
                longest,
                len(cell.value) * (1.15 if cell.font is not None and cell.font.b else 1.0) + 2,
            )
        ws.column_dimensions[get_column_letter(col)].width = min(longest, maximum)


def readable_format(values: Iterable[float]) -> str:
    """A number format a student reads at a glance for numbers like `values`: 4 digits, or 1.23E+07.

    Notebooks 01 and 02.
    """
    import math

    mags = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v)) and v != 0]
    if not mags:
        return "0.0000"
    big = max(mags)
    if big >= 1e5 or big < 1e-2:
        return "0.00E+00"
    if big >= 1000:
        return "0.0"
    if big >= 10:
        return "0.00"
    return "0.0000"
