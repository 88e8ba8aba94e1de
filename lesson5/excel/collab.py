"""The lesson's collaborative-filtering workbook `collab_filter.xlsx`, written with live formulas.

Notebook 01.

Every block a formula reads or computes is a workbook name; `expected` gives each computed
block by the Python model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Alignment
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.worksheet import Worksheet

from lesson5.crosstab import Crosstab
from lesson5.excel import book, notes
from lesson5.excel.book import span
from lesson5.solver import Factors, FitResult, fit, init_factors, predict, rmse

FILENAME = "collab_filter.xlsx"
FITTED_FILENAME = "collab_filter_fitted.xlsx"
SHEETS = ("dotprod", "bias", "word_emb", "long_format", "movie titles")
FACTOR, PREDICTION, LOSS = "0.000", "0.00", "0.0000"
# The widest number a cell of each format is meant to show: a factor or prediction a student's
# edit may make, an RMSE up to 99.9999, a position up to 99 (sizes the columns).
WIDEST = {FACTOR: -9.876, PREDICTION: -9.99, LOSS: 99.9999, "0": 99}
# Excel's Solver keeps its model in hidden names on the sheet (what Excel writes after "Save" in
# Data > Solver). solver_typ 2 = Min; solver_eng 1 = GRG Nonlinear; solver_neg 2 = variables may be
# negative; solver_num 0 = no constraints; solver_ver 3 = the Solver of Excel 2010 and later.
SOLVER_OPTIONS = dict(
    solver_typ="2", solver_val="0", solver_eng="1", solver_ver="3", solver_neg="2", solver_num="0",
    solver_lin="2", solver_est="1", solver_nwt="1", solver_drv="1", solver_cvg="0.0001",
    solver_pre="0.000001", solver_scl="1", solver_sho="2", solver_msl="2",
    solver_itr="2147483647", solver_tim="2147483647",
)  # fmt: skip
LEGEND = [("rating", "ratings"), ("movie", "movie factors"), ("user", "user factors"),
          ("prediction", "predictions"), ("loss", "RMSE (the loss)"), ("input", "a cell to edit")]  # fmt: skip
LONG_FIRST_ROW, BATCH = 7, 8


def _finish(ws: Worksheet, landscape: bool = True) -> None:
    book.fit_columns(ws, WIDEST)
    if landscape:
        ws.page_setup.orientation = "landscape"
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToWidth = ws.page_setup.fitToHeight = 1


def _factor_sheet(wb: Workbook, name: str, ct: Crosstab, f: Factors) -> None:
    # Ratings on top (users down, movies across); the movie factors under them in the same
    # columns; then the predictions, the user factors on their left, the RMSE on their right.
    ws = wb.create_sheet(name)
    (n_u, n_m), n_f = ct.ratings.shape, f.user.shape[1]
    k = n_f + f.has_bias
    mc, mr = 2 + k, 3 + n_u  # first movie column, first movie-factor row
    head = mr + k  # the predictions' header row
    lc = mc + n_m + 1  # the loss column
    what = "user factors · movie factors" + (" + user bias + movie bias" if f.has_bias else "")
    title = f"{name}: prediction = {what} (0 where there is no rating); the Solver lowers the red "
    book.put(ws, "A1", title + "RMSE by changing the green and orange cells", "title")
    labels = [f"f{i + 1}" for i in range(n_f)] + ["bias"] * f.has_bias
    movie = np.column_stack([f.movie, f.movie_bias]) if f.has_bias else f.movie
    user = np.column_stack([f.user, f.user_bias]) if f.has_bias else f.user
    for row in (2, head):
        book.put(ws, f"A{row}", "userId", "header")
        for j, m in enumerate(ct.movies):
            book.put(ws, ws.cell(row, mc + j).coordinate, book.exact(m), "header")
    book.put(ws, ws.cell(2, mc - 1).coordinate, "movieId", "header")
    book.put(ws, "B3", "ratings", "note")
    book.put(ws, ws.cell(mr, 2).coordinate, "movie factors →", "note")
    for i, u in enumerate(ct.users):
        for row in (3 + i, head + 1 + i):
            book.put(ws, f"A{row}", book.exact(u), "header")
        for j in np.flatnonzero(ct.mask[i]):
            ws.cell(3 + i, mc + int(j), float(ct.ratings[i, j]))
    for fi, label in enumerate(labels):
        book.put(ws, ws.cell(mr + fi, mc - 1).coordinate, label, "header")
        book.put(ws, ws.cell(head, 2 + fi).coordinate, label, "header")
        for j in range(n_m):
            ws.cell(mr + fi, mc + j, float(movie[j, fi]))
        for i in range(n_u):
            ws.cell(head + 1 + i, 2 + fi, float(user[i, fi]))
    for i in range(n_u):
        for j in range(n_m):
            # A sum of products spells out the dot product and needs no array evaluation
            # (SUMPRODUCT of a row and a column is #VALUE! in Excel); user factors keep their
            # column, movie factors their row, so the formula copies as the lesson's did.
            us = [book.pin(ws.cell(head + 1 + i, 2 + fi).coordinate, row=False) for fi in range(k)]
            ms = [book.pin(ws.cell(mr + fi, mc + j).coordinate, col=False) for fi in range(k)]
            terms = [f"{u}*{m}" for u, m in zip(us[:n_f], ms[:n_f])] + us[n_f:] + ms[n_f:]
            rating = ws.cell(3 + i, mc + j).coordinate
            ws.cell(head + 1 + i, mc + j, f'=IF({rating}="",0,{"+".join(terms)})')
    blocks = {
        "ratings": (span(mc, 3, n_u, n_m), "rating", "0.0"),
        "movie_factors": (span(mc, mr, n_f, n_m), "movie", FACTOR),
        "user_factors": (span(2, head + 1, n_u, n_f), "user", FACTOR),
        "predictions": (span(mc, head + 1, n_u, n_m), "prediction", PREDICTION),
        "rmse": (ws.cell(head + 1, lc).coordinate, "loss", LOSS),
        "user_ids": (span(1, head + 1, n_u), "header", None),
        "movie_ids": (span(mc, 2, 1, n_m), "header", None),
    }
    if f.has_bias:
        blocks["movie_bias"] = (span(mc, mr + n_f, 1, n_m), "movie", FACTOR)
        blocks["user_bias"] = (span(2 + n_f, head + 1, n_u), "user", FACTOR)
    for block, (cells, kind, fmt) in blocks.items():
        book.define_name(wb, f"{name}_{block}", ws, cells)
        book.style(ws, cells, kind, fmt)
    ratings, preds, loss = f"{name}_ratings", f"{name}_predictions", blocks["rmse"][0]
    book.put(ws, ws.cell(head, lc).coordinate, "RMSE", "header")
    ws[loss] = f"=SQRT(SUMXMY2({ratings},{preds})/COUNT({ratings}))"
    ws[loss].alignment = Alignment(horizontal="right")
    book.put(ws, ws.cell(head + 2, lc).coordinate, "Data > Solver", "note")
    book.put(ws, ws.cell(head + 3, lc).coordinate, "minimises it", "note")
    for n, (kind, label) in enumerate(LEGEND):  # a note's font: it may overflow to the right
        book.put(ws, cell := ws.cell(head + 5 + n, lc).coordinate, label, "note")
        ws[cell].fill = book.FILLS[kind]
    adj = f"{span(2, head + 1, n_u, k)},{span(mc, mr, k, n_m)}"
    solver = {"solver_opt": book.ref(ws, loss), "solver_adj": book.ref(ws, adj), **SOLVER_OPTIONS}
    for key, target in solver.items():
        ws.defined_names[key] = DefinedName(key, attr_text=target, hidden=True)
    plus = " plus this user's bias plus this movie's bias" if f.has_bias else ""
    for block, note in notes.COLLAB.items():
        if block in blocks:
            cell = blocks[block][0].split(":")[0]
            book.comment(ws, cell, note.format(plus=plus), height=150 if cell == loss else 110)
    ws.column_dimensions[ws.cell(1, lc - 1).column_letter].width = 2.0
    _finish(ws)


def _picks(ct: Crosstab) -> tuple[int, list[int]]:
    # The long_format row word_emb looks up first (the middle rating), and its mini-batch's rows:
    # evenly spread, so that the batch holds several users.
    n = ct.n_rated
    return n // 2, np.linspace(0, n - 1, BATCH).astype(int).tolist()


def _word_emb_sheet(wb: Workbook, ct: Crosstab, k: int, source: str = "dotprod") -> None:
    ws = wb.create_sheet("word_emb")
    long = ct.long()
    first, batch = _picks(ct)
    title = "word_emb: looking up an embedding = multiplying a one-hot row by the factor matrix"
    book.put(ws, "A1", title, "title")
    note = f"MMULT(one-hot row, factor matrix) picks one row of the '{source}' factors, exactly "
    book.put(ws, "A2", note + "what INDEX (and nn.Embedding) return. Change a yellow cell.", "note")
    for r0, label, n, pos in (
        (4, "user", len(ct.users), long.row),
        (10, "movie", len(ct.movies), long.col),
    ):
        matrix = f"{source}_{label}_factors"
        chosen = book.define_name(wb, f"word_emb_{label}", ws, f"B{r0}")
        ws[f"B{r0}"] = int(pos[first]) + 1
        book.style(ws, f"B{r0}", "input", "0")
        book.put(ws, f"A{r0}", f"{label} #", "header")
        which = f"which {label} (1 to {n}): its position in the '{source}' sheet"
        book.put(ws, f"C{r0}", which, "note")
        for row, head in enumerate(("position", "one-hot", "MMULT", "INDEX"), start=r0 + 1):
            book.put(ws, f"A{row}", head, "header")
        for p in range(n):
            book.put(ws, ws.cell(r0 + 1, 2 + p).coordinate, p + 1, "header")
            ws.cell(r0 + 2, 2 + p, f"=IF({ws.cell(r0 + 1, 2 + p).coordinate}={chosen},1,0)")
        onehot = book.define_name(wb, f"word_emb_{label}_onehot", ws, span(2, r0 + 2, 1, n))
        book.style(ws, span(2, r0 + 2, 1, n), "body", "0")
        book.define_name(wb, f"word_emb_{label}_mmult", ws, span(2, r0 + 3, 1, k))
        mat = matrix if label == "user" else f"TRANSPOSE({matrix})"
        ws[f"B{r0 + 3}"] = ArrayFormula(span(2, r0 + 3, 1, k), f"=MMULT({onehot},{mat})")
        book.define_name(wb, f"word_emb_{label}_index", ws, span(2, r0 + 4, 1, k))
        for fi in range(k):
            pick = f"{chosen},{fi + 1}" if label == "user" else f"{fi + 1},{chosen}"
            ws.cell(r0 + 4, 2 + fi, f"=INDEX({matrix},{pick})")
        book.style(ws, span(2, r0 + 3, 2, k), label, FACTOR)
        which = "the user factors" if label == "user" else "the movie factors (transposed)"
        book.put(ws, ws.cell(r0 + 3, 3 + k).coordinate, f"one-hot row × {which}", "note")
        same = "the same numbers, looked up directly"
        book.put(ws, ws.cell(r0 + 4, 3 + k).coordinate, same, "note")
        hot = f"One 1 at the chosen position, 0 elsewhere: the {label} as a one-hot vector."
        book.comment(ws, f"B{r0 + 2}", hot)
        mmult = "{=MMULT(one-hot, factors)}: every factor row is multiplied by 0 except the chosen "
        book.comment(ws, f"B{r0 + 3}", mmult + f"one, so the result is that {label}'s factors.")
    book.put(ws, "A16", "prediction", "header")
    ws["B16"] = "=SUMPRODUCT(word_emb_user_mmult,word_emb_movie_mmult)"
    ws["C16"] = f"=INDEX({source}_predictions,word_emb_user,word_emb_movie)"
    book.define_name(wb, "word_emb_prediction", ws, "B16")
    book.define_name(wb, "word_emb_sheet_prediction", ws, "C16")
    book.style(ws, "B16:C16", "prediction", PREDICTION)
    note = f"dot product of the two looked-up rows; beside it the '{source}' sheet's prediction "
    book.put(ws, "D16", note + "for that cell (0 if unrated)", "note")

    b0, n_u, last = 20, len(ct.users), 20 + BATCH - 1
    note = f"A mini-batch: the users of {BATCH} ratings spread through long_format, one-hot "
    note += "encoded, times the user factors in one MMULT: one row of factors per rating"
    book.put(ws, "A18", note, "note")
    for c, head in enumerate(["userId", "user #", *range(1, n_u + 1)], start=1):
        book.put(ws, ws.cell(b0 - 1, c).coordinate, head, "header")
    for fi in range(k):
        book.put(ws, ws.cell(b0 - 1, 4 + n_u + fi).coordinate, f"f{fi + 1}", "header")
    for n, pick in enumerate(batch):
        r = b0 + n
        ws.cell(r, 1, f"={book.ref('long_format', f'A{LONG_FIRST_ROW + pick}', absolute=False)}")
        ws.cell(r, 2, f"=MATCH(A{r},{source}_user_ids,0)")
        for p in range(n_u):
            head = book.pin(ws.cell(b0 - 1, 3 + p).coordinate, col=False)
            ws.cell(r, 3 + p, f"=IF({head}=$B{r},1,0)")
    blocks = {"ids": span(1, b0, BATCH), "positions": span(2, b0, BATCH)}
    blocks |= {"onehot": span(3, b0, BATCH, n_u), "factors": span(4 + n_u, b0, BATCH, k)}
    for block, cells in blocks.items():
        book.define_name(wb, f"word_emb_batch_{block}", ws, cells)
    ws.cell(b0, 4 + n_u).value = ArrayFormula(
        blocks["factors"], f"=MMULT(word_emb_batch_onehot,{source}_user_factors)"
    )
    book.style(ws, f"A{b0}:B{last}", "header", "0")
    book.style(ws, blocks["onehot"], "body", "0")
    book.style(ws, blocks["factors"], "user", FACTOR)
    note = "{=MMULT(one-hot block, user factors)}: a whole batch of lookups in one matrix product, "
    book.comment(ws, ws.cell(b0, 4 + n_u).coordinate, note + "as an embedding layer does on a GPU.")
    ws.column_dimensions["A"].width = 11  # the batch's ids are formulas, sized by hand
    _finish(ws)


def _long_sheet(wb: Workbook, ct: Crosstab, k: int, source: str = "dotprod") -> None:
    ws = wb.create_sheet("long_format")
    long = ct.long()
    r0, n = LONG_FIRST_ROW, len(long)
    title = "long_format: one row per rating; each user's and movie's factors are looked up from "
    title += f"the '{source}' sheet by position (what an embedding layer does)"
    book.put(ws, "A1", title, "title")
    note = f"No variables here: a Solver changes the factor cells of '{source}'; this RMSE equals "
    book.put(ws, "A2", note + f"{source}_rmse.", "note")
    book.put_text(ws, "A3", "RMSE", "loss")
    blocks = {
        "ids": (span(1, r0, n, 2), "body", "0"),
        "ratings": (span(3, r0, n), "rating", "0.0"),
        "positions": (span(4, r0, n, 2), "body", "0"),
        "user_factors": (span(6, r0, n, k), "user", FACTOR),
        "movie_factors": (span(6 + k, r0, n, k), "movie", FACTOR),
        "predictions": (span(6 + 2 * k, r0, n), "prediction", LOSS),
        "sq_errors": (span(7 + 2 * k, r0, n), "prediction", LOSS),
        "rmse": ("B3", "loss", LOSS),
    }
    for block, (cells, kind, fmt) in blocks.items():
        book.define_name(wb, f"long_{block}", ws, cells)
        book.style(ws, cells, kind, fmt)
    ws["B3"] = "=SQRT(SUM(long_sq_errors)/COUNT(long_ratings))"
    heads = ["userId", "movieId", "rating", "user #", "movie #"]
    heads += [f"{who} f{i + 1}" for who in ("user", "movie") for i in range(k)]
    for c, head in enumerate([*heads, "prediction", "sq. error"], start=1):
        book.put(ws, ws.cell(r0 - 1, c).coordinate, head, "header")
    for i, row in enumerate(long.itertuples(index=False)):
        r = r0 + i
        # Ids as the dotprod sheet writes them, so that MATCH finds each (text beyond 2**53).
        ws.cell(r, 1, book.exact(row.userId))
        ws.cell(r, 2, book.exact(row.movieId))
        ws.cell(r, 3, float(row.rating))
        ws.cell(r, 4, f"=MATCH(A{r},{source}_user_ids,0)")
        ws.cell(r, 5, f"=MATCH(B{r},{source}_movie_ids,0)")
        for fi in range(k):
            ws.cell(r, 6 + fi, f"=INDEX({source}_user_factors,$D{r},{fi + 1})")
            ws.cell(r, 6 + k + fi, f"=INDEX({source}_movie_factors,{fi + 1},$E{r})")
        users, movies = span(6, r, 1, k), span(6 + k, r, 1, k)
        ws.cell(r, 6 + 2 * k, f"=SUMPRODUCT({users},{movies})")
        ws.cell(r, 7 + 2 * k, f"=(C{r}-{ws.cell(r, 6 + 2 * k).coordinate})^2")
    match = "MATCH finds the user's position (1 to 15) in the dotprod sheet: the index an "
    book.comment(ws, "D7", match + "embedding layer needs.")
    book.comment(ws, "F7", "INDEX(user factors, position, factor): an embedding lookup.")
    ws.freeze_panes = f"A{r0}"
    _finish(ws, landscape=False)


def _titles_sheet(wb: Workbook, ct: Crosstab) -> None:
    ws = wb.create_sheet("movie titles")
    book.put(ws, "A1", "The crosstab's movies and users", "title")
    note = "Top users and movies by number of ratings; ties go to the smaller id."
    book.put(ws, "A2", note, "note")
    for c, head in enumerate(["movieId", "title", "ratings", None, "userId", "ratings"], start=1):
        if head:
            book.put(ws, ws.cell(4, c).coordinate, head, "header")
    for j, (movie, title, count) in enumerate(zip(ct.movies, ct.titles, ct.movie_counts)):
        book.put(ws, f"A{5 + j}", book.exact(movie))
        book.put_text(ws, f"B{5 + j}", title)  # a title is text, even one that starts with "="
        book.put(ws, f"C{5 + j}", int(count))
    for i, (user, count) in enumerate(zip(ct.users, ct.user_counts)):
        book.put(ws, f"E{5 + i}", book.exact(user))
        book.put(ws, f"F{5 + i}", int(count))
    book.fit_columns(ws, {}, minimum=9, maximum=70)
    ws.freeze_panes = "A5"


def as_written(f: Factors) -> Factors:
    """The factors exactly as the workbook stores them (16 significant digits)."""
    arrays = [f.user, f.movie] + ([f.user_bias, f.movie_bias] if f.has_bias else [])
    return Factors(*map(book.as_written, arrays))


def build(ct: Crosstab, dot: Factors, bias: Factors) -> Workbook:
    """The workbook with `dot` in the dotprod sheet and `bias` in the bias sheet, not yet saved."""
    n_u, n_m = ct.ratings.shape
    for name, f, want_bias in (("dotprod", dot, False), ("bias", bias, True)):
        if f.user.shape[0] != n_u or f.movie.shape[0] != n_m or f.has_bias != want_bias:
            how = "with" if want_bias else "without"
            raise ValueError(f"{name} factors do not fit a {n_u} x {n_m} crosstab ({how} biases)")
    wb = Workbook()
    wb.remove(wb.active)
    _factor_sheet(wb, "dotprod", ct, dot)
    _factor_sheet(wb, "bias", ct, bias)
    _word_emb_sheet(wb, ct, dot.user.shape[1])
    _long_sheet(wb, ct, dot.user.shape[1])
    _titles_sheet(wb, ct)
    return wb


def one_hot(index: np.ndarray | int, n: int) -> np.ndarray:
    """Rows of the n x n identity: row i is 1 at position i, else 0."""
    return np.eye(n)[np.asarray(index)]


def expected(ct: Crosstab, dot: Factors, bias: Factors) -> dict[str, np.ndarray]:
    """What each named block of computed cells holds, by the Python model: {name: 2-D array}."""
    out: dict[str, np.ndarray] = {}
    for name, f in (("dotprod", dot), ("bias", bias)):
        out[f"{name}_predictions"] = predict(f, ct.mask)
        out[f"{name}_rmse"] = np.array([[rmse(ct.ratings, f)]])
    long = ct.long()
    u, m = long.row.to_numpy(), long.col.to_numpy()
    pred = (dot.user[u] * dot.movie[m]).sum(1)
    out |= {
        "long_positions": np.column_stack([u, m]) + 1.0,
        "long_user_factors": dot.user[u],
        "long_movie_factors": dot.movie[m],
        "long_predictions": pred[:, None],
        "long_sq_errors": ((long.rating.to_numpy() - pred) ** 2)[:, None],
        "long_rmse": out["dotprod_rmse"],
    }
    first, batch = _picks(ct)
    for label, idx, matrix in (("user", u[first], dot.user), ("movie", m[first], dot.movie)):
        hot = one_hot([idx], len(matrix))
        out[f"word_emb_{label}_onehot"] = hot
        out[f"word_emb_{label}_mmult"] = hot @ matrix  # a one-hot row times the matrix ...
        out[f"word_emb_{label}_index"] = matrix[[idx]]  # ... is the row looked up
    out["word_emb_prediction"] = np.array([[dot.user[u[first]] @ dot.movie[m[first]]]])
    out["word_emb_sheet_prediction"] = out["dotprod_predictions"][[u[first]]][:, [m[first]]]
    rows = u[batch]
    out["word_emb_batch_positions"] = rows[:, None] + 1.0
    out["word_emb_batch_onehot"] = one_hot(rows, len(ct.users))
    out["word_emb_batch_factors"] = one_hot(rows, len(ct.users)) @ dot.user
    # The ids the batch looks up from long_format, as the sheet writes them (text beyond 2**53).
    out["word_emb_batch_ids"] = np.array([[book.exact(ct.users[r])] for r in rows], dtype=object)
    return out


def write(
    ct: Crosstab,
    path: str | os.PathLike,
    dot: Factors | None = None,
    bias: Factors | None = None,
    seed: int = 42,
) -> Path:
    """Save the workbook atomically; factors default to seeded uniform [0, 1) numbers."""
    n_u, n_m = ct.ratings.shape
    dot = dot if dot is not None else init_factors(n_u, n_m, seed=seed)
    bias = bias if bias is not None else init_factors(n_u, n_m, bias=True, seed=seed)
    return book.save_atomic(build(ct, dot, bias), path)


@dataclass(frozen=True)
class Export:
    """What `export` wrote: both workbooks, their starting factors and the two Solver fits.

    Factors as the workbooks hold them (`as_written`); each fit's `rmse` recomputed from those.
    """

    initial_path: Path
    fitted_path: Path
    dot: Factors
    bias: Factors
    dot_fit: FitResult
    bias_fit: FitResult

    @property
    def paths(self) -> list[Path]:
        """The two workbooks written, the seeded start first."""
        return [self.initial_path, self.fitted_path]

    def fit_lines(self) -> list[str]:
        """One line per Solver fit: its RMSE before and after, and whether L-BFGS converged."""
        return [
            f"{name}: RMSE {r.history[0]:.6f} -> {r.rmse:.6f} after {len(r.history) - 1} L-BFGS "
            f"iterations ({'converged' if r.converged else 'stopped at the iteration cap'})"
            for name, r in (("dotprod", self.dot_fit), ("bias", self.bias_fit))
        ]


def export(
    ct: Crosstab,
    out_dir: str | os.PathLike,
    seed: int = 42,
    method: str = "lbfgs",
    max_iter: int = 1000,
) -> Export:
    """Write collab_filter.xlsx (seeded start) and collab_filter_fitted.xlsx (Python Solver fit)."""
    out = Path(out_dir)
    for name in (FILENAME, FITTED_FILENAME):  # fail before any work or any write
        book.check_writable(out / name)
    n_u, n_m = ct.ratings.shape
    dot = as_written(init_factors(n_u, n_m, seed=seed))
    bias = as_written(init_factors(n_u, n_m, bias=True, seed=seed))
    fits = []
    for start in (dot, bias):
        res = fit(ct.ratings, start, method=method, max_iter=max_iter)
        fitted = as_written(res.factors)
        fits.append(replace(res, factors=fitted, rmse=rmse(ct.ratings, fitted)))
    # Build both before saving either, so a bad input leaves no workbook written.
    initial, fitted_wb = build(ct, dot, bias), build(ct, fits[0].factors, fits[1].factors)
    saved = [(initial, FILENAME), (fitted_wb, FITTED_FILENAME)]
    paths = [book.save_atomic(wb, out / name) for wb, name in saved]
    return Export(*paths, dot, bias, *fits)
