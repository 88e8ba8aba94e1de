"""Small helpers for writing the lesson's workbooks with openpyxl (notebooks 01 and 02).

Colours follow the lesson's spreadsheets: ratings blue, predictions purple, the loss red,
movie factors green, user factors orange; inputs a student may edit are yellow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.worksheet import Worksheet

from lesson5.atomic import atomic_write

if TYPE_CHECKING:
    import numpy as np


class WorkbookError(OSError):
    """A workbook could not be written (missing folder, locked or unwritable target); says which file."""


def _fill(rgb: str) -> PatternFill:
    return PatternFill(fill_type="solid", start_color=rgb, end_color=rgb)


# Light fills keep the numbers readable; the font colour carries the same meaning in print.
FILLS = {
    "rating": _fill("DDEBF7"),      # blue: actual ratings
    "prediction": _fill("E4DFEC"),  # purple: predictions
    "loss": _fill("F8CBAD"),        # red: the loss a Solver minimises
    "movie": _fill("E2EFDA"),       # green: movie factors
    "user": _fill("FCE4D6"),        # orange: user factors
    "input": _fill("FFF2CC"),       # yellow: a parameter to edit (learning rate, ...)
    "header": _fill("D9D9D9"),      # grey: ids and labels
}
FONTS = {
    "rating": Font(color="1F4E79"),
    "prediction": Font(color="7030A0"),
    "loss": Font(color="C00000", bold=True),
    "movie": Font(color="375623"),
    "user": Font(color="C65911"),
    "input": Font(color="7F6000", bold=True),
    "header": Font(bold=True),
    "note": Font(italic=True, color="595959"),
    "title": Font(bold=True, size=13),
}
NUMBER_FORMATS = {"rating": "0.0", "factor": "0.000", "prediction": "0.00", "loss": "0.000000", "id": "0"}


def as_written(x: float | np.ndarray) -> float | np.ndarray:
    """The number(s) a workbook will hold for `x`: openpyxl writes floats as "%.16g", dropping the 17th digit.

    Compute with these, not the raw floats, and Python and the spreadsheet see the very same inputs.
    """
    import numpy as np

    snap = np.vectorize(lambda v: float("%.16g" % v), otypes=[np.float64])
    return float(snap(x)) if np.ndim(x) == 0 else snap(np.asarray(x, dtype=np.float64))


def ref(ws: Worksheet | str, cell: str, absolute: bool = True) -> str:
    """`'sheet name'!$B$2` (or `!B2`): a cell or range reference usable in formulas and defined names."""
    title = ws if isinstance(ws, str) else ws.title
    if absolute:
        parts = []
        for part in cell.split(":"):
            letters = "".join(ch for ch in part if ch.isalpha())
            digits = part[len(letters):]
            parts.append(f"${letters}${digits}")
        cell = ":".join(parts)
    return f"'{title}'!{cell}"


def addr(col: int, row: int) -> str:
    """A1-style address of 1-based (column, row)."""
    return f"{get_column_letter(col)}{row}"


def style(ws: Worksheet, cells: str, kind: str, number_format: str | None = None) -> None:
    """Give every cell of the range `cells` the fill and font of `kind` (a key of FILLS/FONTS)."""
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
    """A bold grey label (or id) cell."""
    ws[cell] = text
    ws[cell].fill = FILLS["header"]
    ws[cell].font = FONTS["header"]
    ws[cell].alignment = Alignment(horizontal="center")


def note(ws: Worksheet, cell: str, text: str) -> None:
    """An italic grey explanation cell (e.g. which cells a Solver changes, which it minimises)."""
    ws[cell] = text
    ws[cell].font = FONTS["note"]
    ws[cell].alignment = Alignment(wrap_text=False, vertical="top")


def title(ws: Worksheet, cell: str, text: str) -> None:
    """A large bold sheet title."""
    ws[cell] = text
    ws[cell].font = FONTS["title"]


def widths(ws: Worksheet, width: float, columns: Iterable[int]) -> None:
    """Set the width of the 1-based `columns`."""
    for col in columns:
        ws.column_dimensions[get_column_letter(col)].width = width


def freeze(ws: Worksheet, cell: str) -> None:
    """Freeze the rows above and the columns left of `cell` (headers stay visible while scrolling)."""
    ws.freeze_panes = cell


def define_name(wb: Workbook, name: str, target: str) -> None:
    """A workbook-level name for a cell or range, e.g. `define_name(wb, "lr", ref(ws, "B2"))`."""
    wb.defined_names[name] = DefinedName(name, attr_text=target)


def _lock_files(path: Path) -> list[Path]:
    # LibreOffice and Excel leave these beside a file while it is open in them.
    return [p for p in (path.with_name(f".~lock.{path.name}#"), path.with_name(f"~${path.name}")) if p.exists()]


def check_writable(path: str | os.PathLike) -> Path:
    """Raise WorkbookError unless `path` could be (over)written now: folder exists, not a folder, not open."""
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
    """Save to a temporary file in the target's folder, then rename over `path` (never half-written)."""
    path = check_writable(path)
    try:
        return atomic_write(path, wb.save)
    except OSError as e:
        raise WorkbookError(f"cannot write {path}: {e}") from e


# ---- appended for graddesc.xlsx (notebook 02): cell comments, column widths, readable number formats

def comment(ws: Worksheet, cell: str, text: str, width: int = 300, height: int = 110) -> None:
    """A red-triangle note on `cell` (what the cell is, what to try), as the lesson's workbook had."""
    from openpyxl.comments import Comment

    note_ = Comment(text, "lesson5")
    note_.width, note_.height = width, height
    ws[cell].comment = note_


def fit_widths(ws: Worksheet, columns: Iterable[int], minimum: float = 8, maximum: float = 40,
               skip_rows: Iterable[int] = ()) -> None:
    """Make each of `columns` wide enough for its longest label or header (rows in `skip_rows` may overflow)."""
    skip = set(skip_rows)
    for col in columns:
        longest = minimum
        for (cell,) in ws.iter_rows(min_col=col, max_col=col):
            if cell.row in skip or not isinstance(cell.value, str) or cell.value.startswith("="):
                continue
            longest = max(longest, len(cell.value) * (1.15 if cell.font is not None and cell.font.b else 1.0) + 2)
        ws.column_dimensions[get_column_letter(col)].width = min(longest, maximum)


def readable_format(values: Iterable[float]) -> str:
    """A number format a student reads at a glance for numbers like `values`: 4 significant-ish digits, or 1.23E+07."""
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
