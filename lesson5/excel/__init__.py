"""Excel workbooks written with openpyxl whose live formulas compute what Python computes.

Notebooks 01 and 02.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_all(
    out_dir: str | os.PathLike, *, source: str | None = None, top_n: int = 15, seed: int = 42
) -> list[Path]:
    """Write every workbook of the lesson into `out_dir`; return their paths.

    Raises DataError, CrosstabError or WorkbookError, each naming the file or value at fault.
    """
    # Imported here: the Solver brings torch, which `book` and `recalc` users need not load.
    from lesson5 import data
    from lesson5.crosstab import crosstab
    from lesson5.excel import book, collab, graddesc

    out = Path(out_dir)
    book.check_writable(out / graddesc.FILENAME)  # collab.export checks its own two before any work
    ct = crosstab(data.load(source), top_n=top_n)
    print(f"crosstab: {len(ct.users)} users x {len(ct.movies)} movies, {ct.n_rated} ratings")
    ex = collab.export(ct, out, seed=seed)
    print("\n".join(ex.fit_lines()))
    return [*ex.paths, graddesc.write(out / graddesc.FILENAME)]
