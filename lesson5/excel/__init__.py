"""Excel workbooks written with openpyxl whose live formulas compute what Python computes (notebooks 01, 02).

`book` holds the small writing helpers (atomic save, the lesson's colours, defined names);
`recalc` recalculates a workbook with LibreOffice headless, the tests' spreadsheet oracle.
"""

# What `python -m lesson5 excel --out DIR` writes: "module:function" entries, each called as
# function(out_dir: Path, source=..., top_n=..., seed=...) -> list[Path]; every function
# takes **kwargs and ignores the options it does not use. Add a workbook by adding a line.
EXPORTS: tuple[str, ...] = (
    "lesson5.excel.collab:export_for_cli",
    "lesson5.excel.graddesc:export_for_cli",
)
