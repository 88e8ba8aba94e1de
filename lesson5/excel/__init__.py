"""Excel workbooks written with openpyxl whose live formulas compute what Python computes (notebooks 01, 02).

`book` holds the small writing helpers (atomic save, the lesson's colours, defined names);
`recalc` recalculates a workbook with LibreOffice headless, the tests' spreadsheet oracle.
"""
