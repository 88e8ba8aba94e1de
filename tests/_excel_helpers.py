"""Shared by the workbook tests: soffice or a skip (a failure in CI), block comparisons, widths."""

from __future__ import annotations

import math

import numpy as np
from _helpers import need

from lesson5.excel import book
from lesson5.excel.recalc import find_soffice


def require_soffice() -> str:
    """The soffice path; skip the test when it is missing, but fail in CI (where .ci/run installs it)."""
    path = find_soffice()
    need(path is not None, "LibreOffice (soffice) is not installed; install libreoffice-calc-nogui")
    return path


def first(wb, name: str):
    """The first cell of the defined name `name`."""
    return book.cells(wb, name)[0][0]


def width(cell) -> float:
    """The width of the cell's column, in characters."""
    return cell.parent.column_dimensions[cell.column_letter].width


def assert_close(got: object, want: float, where: str, rel: float = 1e-9) -> None:
    """`got` is a number equal to `want` to `rel` relative tolerance (absolute near zero)."""
    assert isinstance(got, (int, float)) and not isinstance(got, bool), (
        f"{where}: {got!r} is not a number"
    )
    assert math.isclose(got, want, rel_tol=rel, abs_tol=rel), (
        f"{where}: workbook {got!r} != python {want!r}"
    )


def assert_blocks(got: dict, want: dict, where: str, rel: float = 1e-9) -> int:
    """Each named block of `want` is the same shape in `got`, cell for cell; returns the cells compared."""
    n = 0
    for name, block in want.items():
        have = got[name]
        assert have.shape == np.shape(block), f"{where} {name}: {have.shape} != {np.shape(block)}"
        for idx, value in np.ndenumerate(np.asarray(block, dtype=object)):
            if isinstance(value, str):  # an id kept as text
                assert have[idx] == value, f"{where} {name}{list(idx)}: {have[idx]!r} != {value!r}"
            else:
                assert_close(have[idx], float(value), f"{where} {name}{list(idx)}", rel)
            n += 1
    return n
