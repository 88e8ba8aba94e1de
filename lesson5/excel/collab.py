"""The lesson's collaborative-filtering workbook `collab_filter.xlsx`, written with live formulas (notebook 01).

Sheets: `dotprod` (ratings, factor blocks, predictions, RMSE), `bias` (the same plus a user-bias
column and a movie-bias row), `long_format` (one row per rating, factors looked up by INDEX/MATCH:
the embedding idea) and `movie titles`. Every prediction and loss is a formula, so a student can
change a factor and watch the loss move; `python_values` computes the same cells in float64 so
the tests can compare them with what LibreOffice calculates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from openpyxl import Workbook

from lesson5.crosstab import Crosstab
from lesson5.excel import book
from lesson5.solver import FitResult, Factors, fit, init_factors, predict, rmse

FILENAME = "collab_filter.xlsx"
FITTED_FILENAME = "collab_filter_fitted.xlsx"
SHEETS = ("dotprod", "bias", "long_format", "movie titles")


@dataclass(frozen=True)
class Layout:
    """Where one factor sheet puts things (1-based rows and columns)."""

    n_users: int
    n_movies: int
    n_factors: int
    bias: bool
    loss: str = "B3"

    @property
    def k(self) -> int:  # factor rows/columns, plus one for the bias
        return self.n_factors + int(self.bias)

    @property
    def movie_factor_row(self) -> int:
        return 6

    @property
    def header_row(self) -> int:
        return self.movie_factor_row + self.k + 1

    @property
    def first_row(self) -> int:
        return self.header_row + 1

    @property
    def rating_col(self) -> int:
        return 2

    @property
    def user_id_col(self) -> int:
        return self.rating_col + self.n_movies + 1

    @property
    def user_factor_col(self) -> int:
        return self.user_id_col + 1

    @property
    def pred_col(self) -> int:
        return self.user_factor_col + self.k

    def rating(self, i: int, j: int) -> str:
        return book.addr(self.rating_col + j, self.first_row + i)

    def pred(self, i: int, j: int) -> str:
        return book.addr(self.pred_col + j, self.first_row + i)

    def user_factor(self, i: int, f: int) -> str:
        return book.addr(self.user_factor_col + f, self.first_row + i)

    def movie_factor(self, f: int, j: int) -> str:
        return book.addr(self.pred_col + j, self.movie_factor_row + f)

    def block(self, top_left: str, bottom_right: str) -> str:
        return f"{top_left}:{bottom_right}"

    @property
    def ratings_range(self) -> str:
        return self.block(self.rating(0, 0), self.rating(self.n_users - 1, self.n_movies - 1))

    @property
    def preds_range(self) -> str:
        return self.block(self.pred(0, 0), self.pred(self.n_users - 1, self.n_movies - 1))

    @property
    def user_factors_range(self) -> str:
        return self.block(self.user_factor(0, 0), self.user_factor(self.n_users - 1, self.k - 1))

    @property
    def movie_factors_range(self) -> str:
        return self.block(self.movie_factor(0, 0), self.movie_factor(self.k - 1, self.n_movies - 1))


def _abs(cell: str, col: bool = False, row: bool = False) -> str:
    letters = "".join(ch for ch in cell if ch.isalpha())
    return f"{'$' if col else ''}{letters}{'$' if row else ''}{cell[len(letters):]}"


def _prediction_formula(lay: Layout, i: int, j: int) -> str:
    # A plain sum of products spells out the dot product and needs no array evaluation
    # (SUMPRODUCT of a row and a column is #VALUE! in Excel).
    terms = [f"{_abs(lay.user_factor(i, f), col=True)}*{_abs(lay.movie_factor(f, j), row=True)}"
             for f in range(lay.n_factors)]
    if lay.bias:
        terms += [_abs(lay.user_factor(i, lay.n_factors), col=True), _abs(lay.movie_factor(lay.n_factors, j), row=True)]
    return f'=IF({_abs(lay.rating(i, j), col=True)}="",0,{"+".join(terms)})'


def _solver_note(ws, lay: Layout) -> str:
    changing = f"{book.ref(ws, lay.user_factors_range)},{book.ref(ws, lay.movie_factors_range)}"
    return (f"Solver: minimise {book.ref(ws, lay.loss)} (the RMSE, red) by changing the orange user "
            f"{'factors and bias' if lay.bias else 'factors'} {lay.user_factors_range} and the green movie "
            f"{'factors and bias' if lay.bias else 'factors'} {lay.movie_factors_range} "
            f"(Excel: Data > Solver, GRG Nonlinear; By Changing Variable Cells: {changing}).")


def _factor_sheet(wb: Workbook, name: str, ct: Crosstab, f: Factors) -> Layout:
    ws = wb.create_sheet(name)
    n_u, n_m = ct.ratings.shape
    lay = Layout(n_u, n_m, f.user.shape[1], f.has_bias)
    what = "dot product of user and movie factors" + (" plus user bias plus movie bias" if lay.bias else "")
    book.title(ws, "A1", f"{name}: each prediction is the {what}; blank ratings predict 0 and do not count")
    book.note(ws, "A2", _solver_note(ws, lay))
    ws["A3"] = "RMSE"
    ws["A3"].font = book.FONTS["loss"]
    ws[lay.loss] = f"=SQRT(SUMXMY2({lay.ratings_range},{lay.preds_range})/COUNT({lay.ratings_range}))"
    book.style(ws, lay.loss, "loss", book.NUMBER_FORMATS["loss"])
    book.note(ws, "C3", "RMSE: square root of (sum of squared errors over rated cells / number of ratings)")
    book.note(ws, "A4", "blue: ratings   purple: predictions   red: loss   green: movie factors   "
                        "orange: user factors")

    # Movie factors sit above the predictions, one column per movie (green).
    for fi in range(lay.k):
        label = "movie bias" if lay.bias and fi == lay.n_factors else f"factor {fi + 1}"
        book.header(ws, book.addr(lay.pred_col - 1, lay.movie_factor_row + fi), label)
        for j in range(n_m):
            ws[lay.movie_factor(fi, j)] = float(f.movie_bias[j] if label == "movie bias" else f.movie[j, fi])
    book.style(ws, lay.movie_factors_range, "movie", book.NUMBER_FORMATS["factor"])

    h = lay.header_row
    book.header(ws, book.addr(1, h), "userId")
    book.header(ws, book.addr(lay.user_id_col, h), "userId")
    for fi in range(lay.k):
        book.header(ws, book.addr(lay.user_factor_col + fi, h),
                    "user bias" if lay.bias and fi == lay.n_factors else f"factor {fi + 1}")
    for j, movie in enumerate(ct.movies):
        book.header(ws, book.addr(lay.rating_col + j, h), int(movie))
        book.header(ws, book.addr(lay.pred_col + j, h), int(movie))
    book.note(ws, book.addr(lay.rating_col, h - 1), "ratings (movieId across)")
    book.note(ws, book.addr(lay.user_factor_col, h - 1), "user factors")
    for i, user in enumerate(ct.users):
        r = lay.first_row + i
        book.header(ws, book.addr(1, r), int(user))
        book.header(ws, book.addr(lay.user_id_col, r), int(user))
        for j in range(n_m):
            if ct.mask[i, j]:
                ws[lay.rating(i, j)] = float(ct.ratings[i, j])
            ws[lay.pred(i, j)] = _prediction_formula(lay, i, j)
        for fi in range(lay.k):
            value = f.user_bias[i] if lay.bias and fi == lay.n_factors else f.user[i, fi]
            ws[lay.user_factor(i, fi)] = float(value)
    book.style(ws, lay.ratings_range, "rating", book.NUMBER_FORMATS["rating"])
    book.style(ws, lay.user_factors_range, "user", book.NUMBER_FORMATS["factor"])
    book.style(ws, lay.preds_range, "prediction", book.NUMBER_FORMATS["prediction"])
    book.widths(ws, 7.5, range(2, lay.pred_col + n_m))
    ws.column_dimensions["A"].width = 9
    book.freeze(ws, book.addr(lay.rating_col, lay.first_row))
    return lay


LONG_FIRST_ROW = 7


def _long_sheet(wb: Workbook, ct: Crosstab, lay: Layout, source: str = "dotprod") -> None:
    ws = wb.create_sheet("long_format")
    k = lay.n_factors
    long = ct.long()
    last = LONG_FIRST_ROW + len(long) - 1
    book.title(ws, "A1", "long_format: one row per rating; each user's and movie's factors are looked up "
                         f"from the '{source}' sheet by position (what an embedding layer does)")
    book.note(ws, "A2", f"No variables here: a Solver changes the factor cells of '{source}'; this RMSE "
                        f"equals {book.ref(source, lay.loss)}.")
    ws["A3"] = "RMSE"
    ws["A3"].font = book.FONTS["loss"]
    ws["B3"] = f"=SQRT(SUM(Q{LONG_FIRST_ROW}:Q{last})/COUNT(C{LONG_FIRST_ROW}:C{last}))"
    book.style(ws, "B3", "loss", book.NUMBER_FORMATS["loss"])
    heads = (["userId", "movieId", "rating", "user row", "movie col"] + [f"user f{i + 1}" for i in range(k)]
             + [f"movie f{i + 1}" for i in range(k)] + ["prediction", "squared error"])
    for c, text in enumerate(heads, start=1):
        book.header(ws, book.addr(c, LONG_FIRST_ROW - 1), text)
    ids = book.ref(source, book.addr(1, lay.first_row) + ":" + book.addr(1, lay.first_row + lay.n_users - 1))
    movie_ids = book.ref(source, book.addr(lay.rating_col, lay.header_row) + ":"
                         + book.addr(lay.rating_col + lay.n_movies - 1, lay.header_row))
    users_block = book.ref(source, book.addr(lay.user_factor_col, lay.first_row) + ":"
                           + book.addr(lay.user_factor_col + k - 1, lay.first_row + lay.n_users - 1))
    movies_block = book.ref(source, book.addr(lay.pred_col, lay.movie_factor_row) + ":"
                            + book.addr(lay.pred_col + lay.n_movies - 1, lay.movie_factor_row + k - 1))
    uf0, mf0, pc = 6, 6 + k, 6 + 2 * k
    for n, row in enumerate(long.itertuples(index=False)):
        r = LONG_FIRST_ROW + n
        ws.cell(r, 1, int(row.userId))
        ws.cell(r, 2, int(row.movieId))
        ws.cell(r, 3, float(row.rating))
        ws.cell(r, 4, f"=MATCH(A{r},{ids},0)")
        ws.cell(r, 5, f"=MATCH(B{r},{movie_ids},0)")
        for fi in range(k):
            ws.cell(r, uf0 + fi, f"=INDEX({users_block},$D{r},{fi + 1})")
            ws.cell(r, mf0 + fi, f"=INDEX({movies_block},{fi + 1},$E{r})")
        ws.cell(r, pc, f"=SUMPRODUCT({book.addr(uf0, r)}:{book.addr(uf0 + k - 1, r)},"
                       f"{book.addr(mf0, r)}:{book.addr(mf0 + k - 1, r)})")
        ws.cell(r, pc + 1, f"=(C{r}-{book.addr(pc, r)})^2")
    book.style(ws, f"C{LONG_FIRST_ROW}:C{last}", "rating", book.NUMBER_FORMATS["rating"])
    book.style(ws, f"{book.addr(uf0, LONG_FIRST_ROW)}:{book.addr(uf0 + k - 1, last)}", "user",
               book.NUMBER_FORMATS["factor"])
    book.style(ws, f"{book.addr(mf0, LONG_FIRST_ROW)}:{book.addr(mf0 + k - 1, last)}", "movie",
               book.NUMBER_FORMATS["factor"])
    book.style(ws, f"{book.addr(pc, LONG_FIRST_ROW)}:{book.addr(pc + 1, last)}", "prediction",
               book.NUMBER_FORMATS["loss"])
    book.widths(ws, 9, range(1, pc + 2))
    book.freeze(ws, f"A{LONG_FIRST_ROW}")


def _titles_sheet(wb: Workbook, ct: Crosstab) -> None:
    ws = wb.create_sheet("movie titles")
    book.title(ws, "A1", "The crosstab's movies and users")
    book.note(ws, "A2", "Top users and movies by number of ratings; ties go to the smaller id.")
    for c, text in enumerate(["movieId", "title", "ratings"], start=1):
        book.header(ws, book.addr(c, 4), text)
    for j, (movie, title, count) in enumerate(zip(ct.movies, ct.titles, ct.movie_counts)):
        ws.cell(5 + j, 1, int(movie))
        ws.cell(5 + j, 2, title)
        ws.cell(5 + j, 3, int(count))
    for c, text in enumerate(["userId", "ratings"], start=5):
        book.header(ws, book.addr(c, 4), text)
    for i, (user, count) in enumerate(zip(ct.users, ct.user_counts)):
        ws.cell(5 + i, 5, int(user))
        ws.cell(5 + i, 6, int(count))
    ws.column_dimensions["B"].width = 60
    book.freeze(ws, "A5")


def build(ct: Crosstab, dot: Factors, bias: Factors) -> Workbook:
    """The workbook with `dot` in the dotprod sheet and `bias` in the bias sheet (nothing saved)."""
    n_u, n_m = ct.ratings.shape
    for name, f, want_bias in (("dotprod", dot, False), ("bias", bias, True)):
        if f.user.shape[0] != n_u or f.movie.shape[0] != n_m or f.has_bias != want_bias:
            raise ValueError(f"{name} factors do not fit a {n_u} x {n_m} crosstab "
                             f"({'with' if want_bias else 'without'} biases)")
    wb = Workbook()
    wb.remove(wb.active)
    lay = _factor_sheet(wb, "dotprod", ct, dot)
    _factor_sheet(wb, "bias", ct, bias)
    _long_sheet(wb, ct, lay)
    _titles_sheet(wb, ct)
    return wb


def python_values(ct: Crosstab, dot: Factors, bias: Factors) -> dict[str, dict[str, float]]:
    """{sheet: {cell: value}} of every prediction, squared-error and loss formula, computed in float64."""
    out: dict[str, dict[str, float]] = {}
    for name, f in (("dotprod", dot), ("bias", bias)):
        lay = Layout(*ct.ratings.shape, f.user.shape[1], f.has_bias)
        pred = predict(f, ct.mask)
        cells = {lay.pred(i, j): float(pred[i, j]) for i in range(lay.n_users) for j in range(lay.n_movies)}
        cells[lay.loss] = rmse(ct.ratings, f)
        out[name] = cells
    long = ct.long()
    k = dot.user.shape[1]
    p = (dot.user[long.row] * dot.movie[long.col]).sum(1)
    cells = {"B3": rmse(ct.ratings, dot)}
    for n, (r, c, y, pr) in enumerate(zip(long.row, long.col, long.rating, p)):
        row = LONG_FIRST_ROW + n
        cells[f"D{row}"], cells[f"E{row}"] = float(r + 1), float(c + 1)
        for fi in range(k):
            cells[book.addr(6 + fi, row)] = float(dot.user[r, fi])
            cells[book.addr(6 + k + fi, row)] = float(dot.movie[c, fi])
        cells[book.addr(6 + 2 * k, row)] = float(pr)
        cells[book.addr(7 + 2 * k, row)] = float((y - pr) ** 2)
    out["long_format"] = cells
    return out


def write(ct: Crosstab, path: str | os.PathLike, dot: Factors | None = None, bias: Factors | None = None,
          seed: int = 42) -> Path:
    """Save the workbook atomically; factors default to seeded uniform [0, 1) numbers (notebook 01)."""
    n_u, n_m = ct.ratings.shape
    dot = dot if dot is not None else init_factors(n_u, n_m, seed=seed)
    bias = bias if bias is not None else init_factors(n_u, n_m, bias=True, seed=seed)
    return book.save_atomic(build(ct, dot, bias), path)


@dataclass(frozen=True)
class Export:
    """What `export` wrote: both workbooks, the starting factors and the two fits."""

    initial_path: Path
    fitted_path: Path
    dot: Factors
    bias: Factors
    dot_fit: FitResult
    bias_fit: FitResult


def export(ct: Crosstab, out_dir: str | os.PathLike, seed: int = 42, method: str = "lbfgs",
           max_iter: int = 1000) -> Export:
    """Write collab_filter.xlsx (seeded start) and collab_filter_fitted.xlsx (after the Python Solver)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise book.WorkbookError(f"cannot write the workbooks: the folder {out} does not exist")
    n_u, n_m = ct.ratings.shape
    dot, bias = init_factors(n_u, n_m, seed=seed), init_factors(n_u, n_m, bias=True, seed=seed)
    dot_fit = fit(ct.ratings, dot, method=method, max_iter=max_iter)
    bias_fit = fit(ct.ratings, bias, method=method, max_iter=max_iter)
    # Build both before saving either, so a bad input leaves no workbook written.
    initial, fitted = build(ct, dot, bias), build(ct, dot_fit.factors, bias_fit.factors)
    return Export(book.save_atomic(initial, out / FILENAME), book.save_atomic(fitted, out / FITTED_FILENAME),
                  dot, bias, dot_fit, bias_fit)


def export_for_cli(out_dir: Path, source: str | None = None, top_n: int = 15, seed: int = 42,
                   **_: object) -> list[Path]:
    """`python -m lesson5 excel`: load the data, build the crosstab, write both workbooks, print the fits."""
    from lesson5 import data
    from lesson5.crosstab import crosstab

    ct = crosstab(data.load(source), top_n=top_n)
    ex = export(ct, out_dir, seed=seed)
    print(f"crosstab: {len(ct.users)} users x {len(ct.movies)} movies, {ct.n_rated} ratings")
    for name, r in (("dotprod", ex.dot_fit), ("bias", ex.bias_fit)):
        print(f"{name}: RMSE {r.history[0]:.6f} -> {r.rmse:.6f} after {len(r.history) - 1} L-BFGS iterations")
    return [ex.initial_path, ex.fitted_path]
