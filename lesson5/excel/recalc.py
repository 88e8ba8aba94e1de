"""Recalculate workbooks with LibreOffice headless and read back what their formulas computed.

Notebook 01.

openpyxl writes no cached results and LibreOffice trusts cached ones, so a throwaway profile makes
it recalculate every formula.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from openpyxl import load_workbook
from openpyxl.worksheet.formula import ArrayFormula

from lesson5.excel import book

ERROR_VALUES = ("#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#N/A", "#NUM!", "#NULL!", "Err:")

# Formula/Load recalc modes: 0 = always recalculate, 1 = never, 2 = ask (the default).
_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">\
<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">\
<prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


class RecalcError(RuntimeError):
    """LibreOffice is missing, timed out or did not produce the recalculated file."""


def find_soffice() -> str | None:
    """Path of the LibreOffice binary ($LESSON5_SOFFICE, else `soffice` on PATH), or None."""
    if env := os.environ.get("LESSON5_SOFFICE"):
        return env if Path(env).exists() else shutil.which(env)
    if found := shutil.which("soffice") or shutil.which("libreoffice"):
        return found
    mac = Path("/Applications/LibreOffice.app/Contents/MacOS/soffice")
    return str(mac) if mac.exists() else None


def recalculate_many(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None = None,
    timeout: float = 180.0,
) -> list[Path]:
    """Recalculated xlsx copies of `paths`, all converted by one LibreOffice start."""
    soffice = find_soffice()
    if soffice is None:
        raise RecalcError(
            "LibreOffice (soffice) was not found on PATH; install libreoffice-calc-nogui "
            "or set LESSON5_SOFFICE to the soffice binary"
        )
    inputs = [Path(p).resolve() for p in paths]
    if not inputs:
        return []
    if absent := [p for p in inputs if not p.is_file()]:
        raise RecalcError(f"cannot recalculate {absent[0]}: no such file")
    names = [p.name for p in inputs]
    if len(set(names)) != len(names):
        raise RecalcError(f"cannot recalculate files with the same name in one call: {names}")
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="lesson5-recalc-"))
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    if any(p.parent == out for p in inputs):
        raise RecalcError(
            f"out_dir {out} must differ from the inputs' folder (the copy would overwrite them)"
        )
    with tempfile.TemporaryDirectory(prefix="lesson5-lo-profile-") as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_PROFILE, encoding="utf-8")
        flags = (
            "--headless --norestore --nologo --nodefault --nolockcheck --convert-to xlsx".split()
        )
        cmd = [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", *flags]
        cmd += ["--outdir", str(out), *map(str, inputs)]
        # Its own process group, so that a timeout kills soffice.bin as well as the wrapper script.
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RecalcError(
                f"LibreOffice took more than {timeout:.0f} s to recalculate {names}"
            ) from None
    results = [out / p.name for p in inputs]
    missing = [r for r in results if not r.exists()]
    if proc.returncode != 0 or missing:
        raise RecalcError(
            f"LibreOffice failed to recalculate {[m.name for m in missing] or names} "
            f"(exit {proc.returncode}): {stderr.strip() or stdout.strip()}"
        )
    return results


def read_values(path: str | os.PathLike) -> dict[str, dict[str, object]]:
    """{sheet: {cell: value}} of every non-empty cell, formulas replaced by their stored results."""
    # openpyxl closes the file once it has read it (wb.close() matters only read-only).
    return {
        ws.title: {
            c.coordinate: c.value for row in ws.iter_rows() for c in row if c.value is not None
        }
        for ws in load_workbook(path, data_only=True).worksheets
    }


def _formula_text(value: object) -> str | None:
    """The formula of a cell value read with openpyxl: a string "=...", or an array formula's text."""
    if isinstance(value, ArrayFormula):
        return value.text
    return value if isinstance(value, str) else None


def read_formulas(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """{sheet: {cell: formula text}} of every formula cell (an array formula: its top-left cell).

    A text cell that merely starts with "=" (a movie title, say) is text, not a formula.
    """
    return {
        ws.title: {
            c.coordinate: _formula_text(c.value)
            for row in ws.iter_rows()
            for c in row
            if c.data_type == "f" and _formula_text(c.value) is not None
        }
        for ws in load_workbook(path).worksheets
    }


def find_problems(recalculated: str | os.PathLike) -> list[str]:
    """Every error value and every formula cell without a result in a recalculated workbook ([] if clean)."""
    values = read_values(recalculated)
    formulas = read_formulas(recalculated)
    problems = []
    for sheet, cells in formulas.items():
        for cell, formula in cells.items():
            value = values.get(sheet, {}).get(cell)
            if value is None or value == "":
                problems.append(f"{sheet}!{cell}: formula {formula} has no result")
    for sheet, cells in values.items():
        for cell, value in cells.items():
            if isinstance(value, str) and value.startswith(ERROR_VALUES):  # #NAME?, Err:502
                source = formulas.get(sheet, {}).get(cell, "a constant")
                problems.append(f"{sheet}!{cell}: {value} from {source}")
    return problems


def recalculated_names(
    paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike | None = None
) -> list[dict[str, np.ndarray]]:
    """Per workbook, {name: its block's values} after one LibreOffice start; raises if find_problems."""
    out = []
    for copy in recalculate_many(list(paths), out_dir):
        if problems := find_problems(copy):
            shown = "\n  ".join(problems[:20])
            raise RecalcError(
                f"{copy.name}: {len(problems)} formula problem(s) after recalculation:\n  {shown}"
            )
        wb = load_workbook(copy, data_only=True)
        names = {
            name: np.array([[c.value for c in row] for row in book.cells(wb, name)], dtype=object)
            for name in wb.defined_names
        }
        out.append(names)
    return out
