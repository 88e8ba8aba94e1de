"""The lesson's collaborative-filtering workbook `collab_filter.xlsx`, written with live formulas.

Notebook 01.

Sheets: `dotprod` (ratings, factor blocks, predictions, RMSE on one screen, as in the lesson), `bias`
(the same plus a user-bias column and a movie-bias row), `word_emb` (an embedding lookup is a one-hot
row times the factor matrix: MMULT), `long_format` (one row per rating, factors looked up by
INDEX/MATCH) and `movie titles`. Every prediction and loss is a formula, so a student can change a
factor and watch the loss move; the factor sheets carry Excel's Solver model (hidden sheet names
solver_opt, solver_adj, ...), so Data > Solver opens with the lesson's problem filled in.
`python_values` computes every formula cell in float64 so the tests can compare them with what
LibreOffice calculates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Alignment
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.worksheet import Worksheet

from lesson5.crosstab import Crosstab
from lesson5.excel import book
from lesson5.solver import Factors, FitResult, fit, init_factors, predict, rmse

FILENAME = "collab_filter.xlsx"
FITTED_FILENAME = "collab_filter_fitted.xlsx"
SHEETS = ("dotprod", "bias", "word_emb", "long_format", "movie titles")

# Excel's Solver keeps its model in hidden names on the sheet (what Excel writes after "Save" in
# Data > Solver). solver_typ 2 = Min; solver_eng 1 = GRG Nonlinear; solver_neg 2 = variables may be
# negative; solver_num 0 = no constraints; solver_ver 3 = the Solver of Excel 2010 and later.
SOLVER_OPTIONS = {
    "solver_typ": "2",
    "solver_val": "0",
    "solver_eng": "1",
    "solver_ver": "3",
    "solver_neg": "2",
    "solver_num": "0",
    "solver_lin": "2",
    "solver_est": "1",
    "solver_nwt": "1",
    "solver_drv": "1",
    "solver_cvg": "0.0001",
    "solver_pre": "0.000001",
    "solver_scl": "1",
    "solver_sho": "2",
    "solver_msl": "2",
    "solver_itr": "2147483647",
    "solver_tim": "2147483647",
}

# Column widths (Excel units: about one digit each). Numbers are at most "-0.123" / "10.12" wide.
ID_WIDTH, FACTOR_WIDTH, MOVIE_WIDTH, LOSS_WIDTH = 8.0, 7.5, 7.0, 11.0


@dataclass(frozen=True)
class Layout:
    """Where a factor sheet puts things (1-based rows and columns), like the lesson's sheet.

    Notebook 01.

    Top: the ratings (users down, movies across). Below them, in the same columns, the movie
    factors (one row per factor), then a header row, then the predictions; the user factors sit
    left of the predictions (one column per factor); the RMSE sits right of the predictions.
    """

    n_users: int
    n_movies: int
    n_factors: int
    bias: bool

    @property
    def k(self) -> int:  # factor rows/columns, plus one for the bias
        return self.n_factors + int(self.bias)

    user_col0 = 2  # user factors B.., ids in column A
    rating_header_row = 2
    rating_row0 = 3

    @property
    def movie_col0(self) -> int:
        return self.user_col0 + self.k

    @property
    def movie_factor_row0(self) -> int:
        return self.rating_row0 + self.n_users

    @property
    def pred_header_row(self) -> int:
        return self.movie_factor_row0 + self.k

    @property
    def pred_row0(self) -> int:
        return self.pred_header_row + 1

    @property
    def last_row(self) -> int:
        return self.pred_row0 + self.n_users - 1

    @property
    def loss_col(self) -> int:
        return self.movie_col0 + self.n_movies + 1

    @property
    def loss(self) -> str:
        return book.addr(self.loss_col, self.pred_row0)

    def rating(self, i: int, j: int) -> str:
        return book.addr(self.movie_col0 + j, self.rating_row0 + i)

    def pred(self, i: int, j: int) -> str:
        return book.addr(self.movie_col0 + j, self.pred_row0 + i)

    def user_factor(self, i: int, f: int) -> str:
        return book.addr(self.user_col0 + f, self.pred_row0 + i)

    def movie_factor(self, f: int, j: int) -> str:
        return book.addr(self.movie_col0 + j, self.movie_factor_row0 + f)

    @property
    def ratings_range(self) -> str:
        return f"{self.rating(0, 0)}:{self.rating(self.n_users - 1, self.n_movies - 1)}"

    @property
    def preds_range(self) -> str:
        return f"{self.pred(0, 0)}:{self.pred(self.n_users - 1, self.n_movies - 1)}"

    def user_factors_range(self, k: int | None = None) -> str:
        return f"{self.user_factor(0, 0)}:{self.user_factor(self.n_users - 1, (self.k if k is None else k) - 1)}"

    def movie_factors_range(self, k: int | None = None) -> str:
        return f"{self.movie_factor(0, 0)}:{self.movie_factor((self.k if k is None else k) - 1, self.n_movies - 1)}"

    @property
    def user_ids_range(self) -> str:
        return f"{book.addr(1, self.pred_row0)}:{book.addr(1, self.last_row)}"

    @property
    def movie_ids_range(self) -> str:
        return (
            f"{book.addr(self.movie_col0, self.rating_header_row)}:"
            f"{book.addr(self.movie_col0 + self.n_movies - 1, self.rating_header_row)}"
        )

    @property
    def changing_cells(self) -> str:
        """The Solver's variable cells: user factors and movie factors (with their biases)."""
        return f"{self.user_factors_range()},{self.movie_factors_range()}"


def _prediction_formula(lay: Layout, i: int, j: int) -> str:
    # A plain sum of products spells out the dot product and needs no array evaluation
    # (SUMPRODUCT of a row and a column is #VALUE! in Excel).
    # User factors keep their column, movie factors their row: the formula copies as the lesson's.
    def user(f: int) -> str:
        return book.pin(lay.user_factor(i, f), row=False)

    def movie(f: int) -> str:
        return book.pin(lay.movie_factor(f, j), col=False)

    terms = [f"{user(f)}*{movie(f)}" for f in range(lay.n_factors)]
    if lay.bias:
        terms += [user(lay.n_factors), movie(lay.n_factors)]
    return f'=IF({lay.rating(i, j)}="",0,{"+".join(terms)})'


def solver_model(ws: Worksheet, lay: Layout) -> dict[str, str]:
    """Write the sheet's Solver model as Excel saves one: hidden sheet-level names.

    Notebook 01.
    """
    model = {
        "solver_opt": book.ref(ws, lay.loss),
        "solver_adj": book.ref(ws, lay.changing_cells),
        **SOLVER_OPTIONS,
    }
    for name, target in model.items():
        book.sheet_name(ws, name, target, hidden=True)
    return model


def _legend(ws: Worksheet, col: int, row: int) -> None:
    for n, (kind, label) in enumerate(
        [
            ("rating", "ratings"),
            ("movie", "movie factors"),
            ("user", "user factors"),
            ("prediction", "predictions"),
            ("loss", "RMSE (the loss)"),
            ("input", "a cell to edit"),
        ]
    ):
        cell = book.addr(col, row + n)
        book.put_text(ws, cell, label)
        book.style(ws, cell, kind)


def _factor_sheet(wb: Workbook, name: str, ct: Crosstab, f: Factors) -> Layout:
    ws = wb.create_sheet(name)
    ws.sheet_view.zoomScale = 100
    n_u, n_m = ct.ratings.shape
    lay = Layout(n_u, n_m, f.user.shape[1], f.has_bias)
    what = "user factors · movie factors" + (" + user bias + movie bias" if lay.bias else "")
    book.title(
        ws,
        "A1",
        f"{name}: prediction = {what} (0 where there is no rating); "
        "the Solver lowers the red RMSE by changing the green and orange cells",
    )

    # Ratings on top: users down column A, movies across (blue).
    book.header(ws, book.addr(1, lay.rating_header_row), "userId")
    for j, movie in enumerate(ct.movies):
        book.header(ws, book.addr(lay.movie_col0 + j, lay.rating_header_row), book.exact(movie))
        book.header(ws, book.addr(lay.movie_col0 + j, lay.pred_header_row), book.exact(movie))
    book.header(ws, book.addr(lay.movie_col0 - 1, lay.rating_header_row), "movieId")
    book.note(ws, book.addr(lay.user_col0, lay.rating_row0), "ratings")
    for i, user in enumerate(ct.users):
        book.header(ws, book.addr(1, lay.rating_row0 + i), book.exact(user))
        book.header(ws, book.addr(1, lay.pred_row0 + i), book.exact(user))
        for j in range(n_m):
            if ct.mask[i, j]:
                ws[lay.rating(i, j)] = float(ct.ratings[i, j])
    book.style(ws, lay.ratings_range, "rating", book.NUMBER_FORMATS["rating"])

    # Movie factors under the ratings, one row per factor (green), labelled on their left.
    for fi in range(lay.k):
        label = "bias" if lay.bias and fi == lay.n_factors else f"f{fi + 1}"
        book.header(ws, book.addr(lay.movie_col0 - 1, lay.movie_factor_row0 + fi), label)
        for j in range(n_m):
            ws[lay.movie_factor(fi, j)] = float(
                f.movie_bias[j] if label == "bias" else f.movie[j, fi]
            )
    book.style(ws, lay.movie_factors_range(), "movie", book.NUMBER_FORMATS["factor"])
    book.note(ws, book.addr(lay.user_col0, lay.movie_factor_row0), "movie factors →")

    # User factors left of the predictions, one column per factor (orange); predictions (purple).
    book.header(ws, book.addr(1, lay.pred_header_row), "userId")
    for fi in range(lay.k):
        book.header(
            ws,
            book.addr(lay.user_col0 + fi, lay.pred_header_row),
            "bias" if lay.bias and fi == lay.n_factors else f"f{fi + 1}",
        )
    for i in range(n_u):
        for fi in range(lay.k):
            value = f.user_bias[i] if lay.bias and fi == lay.n_factors else f.user[i, fi]
            ws[lay.user_factor(i, fi)] = float(value)
        for j in range(n_m):
            ws[lay.pred(i, j)] = _prediction_formula(lay, i, j)
    book.style(ws, lay.user_factors_range(), "user", book.NUMBER_FORMATS["factor"])
    book.style(ws, lay.preds_range, "prediction", book.NUMBER_FORMATS["prediction"])

    # The loss beside the predictions (red), a colour legend under it.
    lc = lay.loss_col
    book.header(ws, book.addr(lc, lay.pred_header_row), "RMSE")
    ws[lay.loss] = (
        f"=SQRT(SUMXMY2({lay.ratings_range},{lay.preds_range})/COUNT({lay.ratings_range}))"
    )
    book.style(ws, lay.loss, "loss", book.NUMBER_FORMATS["loss"])
    ws[lay.loss].alignment = Alignment(horizontal="right")
    book.note(ws, book.addr(lc, lay.pred_row0 + 1), "Data > Solver")
    book.note(ws, book.addr(lc, lay.pred_row0 + 2), "minimises it")
    _legend(ws, lc, lay.pred_row0 + 4)

    _comments(ws, lay, name)
    solver_model(ws, lay)
    book.widths(ws, ID_WIDTH, [1])
    book.widths(ws, FACTOR_WIDTH, range(lay.user_col0, lay.movie_col0))
    book.widths(ws, MOVIE_WIDTH, range(lay.movie_col0, lay.movie_col0 + n_m))
    book.widths(ws, 2.0, [lc - 1])
    book.widths(ws, LOSS_WIDTH, [lc])
    book.fit_columns(ws)  # a 6-digit movie id or a long label widens its column
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = ws.page_setup.fitToHeight = 1
    return lay


def _comments(ws: Worksheet, lay: Layout, name: str) -> None:
    bias = " plus this user's bias plus this movie's bias" if lay.bias else ""
    book.comment(
        ws,
        lay.loss,
        "The loss: root mean squared error over the rated cells, "
        "SQRT(sum of (rating - prediction)^2 / number of ratings). "
        "Try: type another number into a green or orange cell and watch it move; "
        "or Data > Solver > Solve (the model is saved in this sheet: minimise this "
        "cell by changing the green and orange cells, GRG Nonlinear).",
        height=150,
    )
    book.comment(
        ws,
        lay.pred(0, 0),
        f"A prediction: the dot product of the orange factors on this row and "
        f"the green factors in this column{bias}. It is 0 where the blue grid has "
        "no rating: those cells do not count in the loss.",
    )
    book.comment(
        ws,
        lay.user_factor(0, 0),
        "This user's factors (an embedding): numbers the Solver changes. "
        "They start random, like the lesson's RAND().",
    )
    book.comment(
        ws,
        lay.movie_factor(0, 0),
        "This movie's factors (an embedding). Try: set one to 0 and see which predictions change.",
    )
    book.comment(
        ws,
        lay.rating(0, 0),
        "The ratings of the 15 most active users for the 15 most rated movies. "
        "A blank cell is a rating the model must predict, not a zero.",
    )
    if lay.bias:
        book.comment(
            ws,
            lay.user_factor(0, lay.n_factors),
            "A user bias: how much more generous than average this user rates, whatever the movie.",
        )


def _word_emb_sheet(wb: Workbook, ct: Crosstab, lay: Layout, source: str = "dotprod") -> WordEmb:
    ws = wb.create_sheet("word_emb")
    ws.sheet_view.zoomScale = 100
    k, n_u, n_m = lay.n_factors, lay.n_users, lay.n_movies
    we = WordEmb(n_users=n_u, n_movies=n_m, n_factors=k)
    long = ct.long()
    book.title(
        ws,
        "A1",
        "word_emb: looking up an embedding = multiplying a one-hot row by the factor matrix",
    )
    book.note(
        ws,
        "A2",
        f"MMULT(one-hot row, factor matrix) picks one row of the '{source}' factors, exactly what "
        "INDEX (and nn.Embedding) return. Change a yellow cell.",
    )
    users = book.ref(source, lay.user_factors_range(k))
    movies = book.ref(source, lay.movie_factors_range(k))
    preds = book.ref(source, lay.preds_range)
    for block, (label, n, which, matrix) in enumerate(
        (("user", n_u, we.user_input, users), ("movie", n_m, we.movie_input, movies))
    ):
        r0 = we.block_row(block)
        book.header(ws, book.addr(1, r0), f"{label} #")
        ws[which] = int((long.row if label == "user" else long.col)[we.first_pick(len(long))]) + 1
        book.style(ws, which, "input", "0")
        book.note(
            ws, book.addr(3, r0), f"which {label} (1 to {n}): its position in the '{source}' sheet"
        )
        book.header(ws, book.addr(1, r0 + 1), "position")
        book.header(ws, book.addr(1, r0 + 2), "one-hot")
        for p in range(n):
            book.header(ws, book.addr(2 + p, r0 + 1), p + 1)
            ws.cell(r0 + 2, 2 + p, f"=IF({book.addr(2 + p, r0 + 1)}={book.pin(which)},1,0)")
        onehot = f"{book.addr(2, r0 + 2)}:{book.addr(1 + n, r0 + 2)}"
        book.style(ws, onehot, "body", "0")
        book.header(ws, book.addr(1, r0 + 3), "MMULT")
        book.header(ws, book.addr(1, r0 + 4), "INDEX")
        out = f"{book.addr(2, r0 + 3)}:{book.addr(1 + k, r0 + 3)}"
        mat = matrix if label == "user" else f"TRANSPOSE({matrix})"
        ws[book.addr(2, r0 + 3)] = ArrayFormula(out, f"=MMULT({onehot},{mat})")
        for fi in range(k):
            chosen = book.pin(which)
            pick = f"{chosen},{fi + 1}" if label == "user" else f"{fi + 1},{chosen}"
            ws.cell(r0 + 4, 2 + fi, f"=INDEX({matrix},{pick})")
        kind = "user" if label == "user" else "movie"
        book.style(
            ws,
            f"{book.addr(2, r0 + 3)}:{book.addr(1 + k, r0 + 4)}",
            kind,
            book.NUMBER_FORMATS["factor"],
        )
        book.note(
            ws,
            book.addr(3 + k, r0 + 3),
            f"one-hot row × {'the user factors' if label == 'user' else 'the movie factors (transposed)'}",
        )
        book.note(ws, book.addr(3 + k, r0 + 4), "the same numbers, looked up directly")
        book.comment(
            ws,
            book.addr(2, r0 + 2),
            f"One 1 at the chosen position, 0 elsewhere: the {label} as a one-hot vector.",
        )
        book.comment(
            ws,
            book.addr(2, r0 + 3),
            f"{{=MMULT(one-hot, factors)}}: every factor row is multiplied by 0 "
            f"except the chosen one, so the result is that {label}'s factors.",
        )
    r = we.pred_row
    book.header(ws, book.addr(1, r), "prediction")
    u_out = f"{book.addr(2, we.block_row(0) + 3)}:{book.addr(1 + k, we.block_row(0) + 3)}"
    m_out = f"{book.addr(2, we.block_row(1) + 3)}:{book.addr(1 + k, we.block_row(1) + 3)}"
    ws[we.pred] = f"=SUMPRODUCT({u_out},{m_out})"
    ws[we.sheet_pred] = f"=INDEX({preds},{book.pin(we.user_input)},{book.pin(we.movie_input)})"
    book.style(ws, f"{we.pred}:{we.sheet_pred}", "prediction", book.NUMBER_FORMATS["prediction"])
    book.note(
        ws,
        book.addr(4, r),
        f"dot product of the two looked-up rows; beside it the '{source}' sheet's "
        "prediction for that cell (0 if unrated)",
    )

    # A mini-batch: the first ratings of long_format, each user one-hot; one MMULT looks them all up.
    b0 = we.batch_row0
    book.header(ws, book.addr(1, b0 - 1), "userId")
    book.header(ws, book.addr(2, b0 - 1), "user #")
    for p in range(n_u):
        book.header(ws, book.addr(3 + p, b0 - 1), p + 1)
    for fi in range(k):
        book.header(ws, book.addr(4 + n_u + fi, b0 - 1), f"f{fi + 1}")
    book.note(
        ws,
        book.addr(1, b0 - 2),
        f"A mini-batch: the users of {we.batch} ratings spread through long_format, "
        "one-hot encoded, times the user factors in one MMULT: one row of factors "
        "per rating",
    )
    for n, pick in enumerate(we.batch_picks(len(long))):
        rr = b0 + n
        ws.cell(rr, 1, f"={book.ref('long_format', f'A{LONG_FIRST_ROW + pick}', absolute=False)}")
        ws.cell(rr, 2, f"=MATCH(A{rr},{book.ref(source, lay.user_ids_range)},0)")
        for p in range(n_u):
            ws.cell(
                rr, 3 + p, f"=IF({book.addr(3 + p, b0 - 1)}={book.pin(f'B{rr}', row=False)},1,0)"
            )
    batch_onehot = f"{book.addr(3, b0)}:{book.addr(2 + n_u, b0 + we.batch - 1)}"
    batch_out = f"{book.addr(4 + n_u, b0)}:{book.addr(3 + n_u + k, b0 + we.batch - 1)}"
    ws[book.addr(4 + n_u, b0)] = ArrayFormula(batch_out, f"=MMULT({batch_onehot},{users})")
    book.style(ws, f"A{b0}:B{b0 + we.batch - 1}", "header", "0")
    book.style(ws, batch_onehot, "body", "0")
    book.style(ws, batch_out, "user", book.NUMBER_FORMATS["factor"])
    book.comment(
        ws,
        book.addr(4 + n_u, b0),
        "{=MMULT(one-hot block, user factors)}: a whole batch of lookups "
        "in one matrix product, as an embedding layer does on a GPU.",
    )
    book.widths(ws, 4.5, range(2, 3 + n_u))
    book.widths(ws, 11, [1])
    book.widths(ws, FACTOR_WIDTH, range(3 + n_u, 4 + n_u + k))
    book.widths(ws, FACTOR_WIDTH, range(2, 2 + k))  # the MMULT/INDEX results and the prediction
    book.fit_columns(ws)
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = ws.page_setup.fitToHeight = 1
    return we


@dataclass(frozen=True)
class WordEmb:
    """Where the word_emb sheet puts things.

    Notebook 01.
    """

    n_users: int
    n_movies: int
    n_factors: int
    batch: int = 8

    def block_row(self, block: int) -> int:  # 0: the user lookup, 1: the movie lookup
        return 4 + 6 * block

    @property
    def user_input(self) -> str:
        return book.addr(2, self.block_row(0))

    @property
    def movie_input(self) -> str:
        return book.addr(2, self.block_row(1))

    @property
    def pred_row(self) -> int:
        return self.block_row(2)

    @property
    def pred(self) -> str:
        return book.addr(2, self.pred_row)

    @property
    def sheet_pred(self) -> str:
        return book.addr(3, self.pred_row)

    @property
    def batch_row0(self) -> int:
        return self.pred_row + 4

    def first_pick(self, n_rated: int) -> int:
        """The long_format row whose user and movie the sheet looks up first: the middle rating."""
        return n_rated // 2

    def batch_picks(self, n_rated: int) -> list[int]:
        """The long_format rows of the mini-batch: evenly spread, so that it holds several users."""
        return np.linspace(0, n_rated - 1, self.batch).astype(int).tolist()


LONG_FIRST_ROW = 7


def _long_sheet(wb: Workbook, ct: Crosstab, lay: Layout, source: str = "dotprod") -> None:
    ws = wb.create_sheet("long_format")
    k = lay.n_factors
    long = ct.long()
    last = LONG_FIRST_ROW + len(long) - 1
    book.title(
        ws,
        "A1",
        "long_format: one row per rating; each user's and movie's factors are looked up "
        f"from the '{source}' sheet by position (what an embedding layer does)",
    )
    book.note(
        ws,
        "A2",
        f"No variables here: a Solver changes the factor cells of '{source}'; this RMSE "
        f"equals {book.ref(source, lay.loss)}.",
    )
    book.put_text(ws, "A3", "RMSE", "loss")
    ws["B3"] = f"=SQRT(SUM(Q{LONG_FIRST_ROW}:Q{last})/COUNT(C{LONG_FIRST_ROW}:C{last}))"
    book.style(ws, "B3", "loss", book.NUMBER_FORMATS["loss"])
    heads = (
        ["userId", "movieId", "rating", "user #", "movie #"]
        + [f"user f{i + 1}" for i in range(k)]
        + [f"movie f{i + 1}" for i in range(k)]
        + ["prediction", "sq. error"]
    )
    for c, text in enumerate(heads, start=1):
        book.header(ws, book.addr(c, LONG_FIRST_ROW - 1), text)
    ids = book.ref(source, lay.user_ids_range)
    movie_ids = book.ref(source, lay.movie_ids_range)
    users_block = book.ref(source, lay.user_factors_range(k))
    movies_block = book.ref(source, lay.movie_factors_range(k))
    uf0, mf0, pc = 6, 6 + k, 6 + 2 * k
    for n, row in enumerate(long.itertuples(index=False)):
        r = LONG_FIRST_ROW + n
        # Ids as the dotprod sheet writes them, so that MATCH finds each (text beyond 2**53).
        ws.cell(r, 1, book.exact(row.userId))
        ws.cell(r, 2, book.exact(row.movieId))
        ws.cell(r, 3, float(row.rating))
        ws.cell(r, 4, f"=MATCH(A{r},{ids},0)")
        ws.cell(r, 5, f"=MATCH(B{r},{movie_ids},0)")
        for fi in range(k):
            ws.cell(r, uf0 + fi, f"=INDEX({users_block},{book.pin(f'D{r}', row=False)},{fi + 1})")
            ws.cell(r, mf0 + fi, f"=INDEX({movies_block},{fi + 1},{book.pin(f'E{r}', row=False)})")
        ws.cell(
            r,
            pc,
            f"=SUMPRODUCT({book.addr(uf0, r)}:{book.addr(uf0 + k - 1, r)},"
            f"{book.addr(mf0, r)}:{book.addr(mf0 + k - 1, r)})",
        )
        ws.cell(r, pc + 1, f"=(C{r}-{book.addr(pc, r)})^2")
    book.style(ws, f"A{LONG_FIRST_ROW}:B{last}", "body", "0")
    book.style(ws, f"D{LONG_FIRST_ROW}:E{last}", "body", "0")
    book.style(ws, f"C{LONG_FIRST_ROW}:C{last}", "rating", book.NUMBER_FORMATS["rating"])
    book.style(
        ws,
        f"{book.addr(uf0, LONG_FIRST_ROW)}:{book.addr(uf0 + k - 1, last)}",
        "user",
        book.NUMBER_FORMATS["factor"],
    )
    book.style(
        ws,
        f"{book.addr(mf0, LONG_FIRST_ROW)}:{book.addr(mf0 + k - 1, last)}",
        "movie",
        book.NUMBER_FORMATS["factor"],
    )
    book.style(
        ws, f"{book.addr(pc, LONG_FIRST_ROW)}:{book.addr(pc + 1, last)}", "prediction", "0.0000"
    )
    book.comment(
        ws,
        "D7",
        "MATCH finds the user's position (1 to 15) in the dotprod sheet: the index an "
        "embedding layer needs.",
    )
    book.comment(ws, "F7", "INDEX(user factors, position, factor): an embedding lookup.")
    book.widths(ws, 9, range(1, pc + 2))
    book.fit_columns(ws)
    book.freeze(ws, f"A{LONG_FIRST_ROW}")


def _titles_sheet(wb: Workbook, ct: Crosstab) -> None:
    ws = wb.create_sheet("movie titles")
    book.title(ws, "A1", "The crosstab's movies and users")
    book.note(ws, "A2", "Top users and movies by number of ratings; ties go to the smaller id.")
    for c, text in enumerate(["movieId", "title", "ratings"], start=1):
        book.header(ws, book.addr(c, 4), text)
    for j, (movie, title, count) in enumerate(zip(ct.movies, ct.titles, ct.movie_counts)):
        ws.cell(5 + j, 1, book.exact(movie))
        book.put_text(ws, f"B{5 + j}", title)  # a title is text, even one that starts with "="
        ws.cell(5 + j, 3, int(count))
    for c, text in enumerate(["userId", "ratings"], start=5):
        book.header(ws, book.addr(c, 4), text)
    for i, (user, count) in enumerate(zip(ct.users, ct.user_counts)):
        ws.cell(5 + i, 5, book.exact(user))
        ws.cell(5 + i, 6, int(count))
    n = 4 + max(len(ct.movies), len(ct.users))
    book.style(ws, f"A5:A{n}", "body", "0")
    book.style(ws, f"C5:F{n}", "body", "0")
    book.fit_columns(ws, minimum=9, maximum=70, skip=[])
    book.freeze(ws, "A5")


def as_written(f: Factors) -> Factors:
    """The factors exactly as the workbook stores them (16 significant digits).

    Notebook 01.
    """
    arrays = [book.as_written(a) for a in (f.user, f.movie)]
    if f.has_bias:
        arrays += [book.as_written(f.user_bias), book.as_written(f.movie_bias)]
    return Factors(*arrays)


def build(ct: Crosstab, dot: Factors, bias: Factors) -> Workbook:
    """The workbook with `dot` in the dotprod sheet and `bias` in the bias sheet, not yet saved.

    Notebook 01.
    """
    n_u, n_m = ct.ratings.shape
    for name, f, want_bias in (("dotprod", dot, False), ("bias", bias, True)):
        if f.user.shape[0] != n_u or f.movie.shape[0] != n_m or f.has_bias != want_bias:
            raise ValueError(
                f"{name} factors do not fit a {n_u} x {n_m} crosstab "
                f"({'with' if want_bias else 'without'} biases)"
            )
    wb = Workbook()
    wb.remove(wb.active)
    lay = _factor_sheet(wb, "dotprod", ct, dot)
    _factor_sheet(wb, "bias", ct, bias)
    _word_emb_sheet(wb, ct, lay)
    _long_sheet(wb, ct, lay)
    _titles_sheet(wb, ct)
    return wb


def python_values(ct: Crosstab, dot: Factors, bias: Factors) -> dict[str, dict[str, float | str]]:
    """{sheet: {cell: value}} of every formula cell (and array-formula result) in float64.

    Notebook 01.
    """
    out: dict[str, dict[str, float | str]] = {}
    for name, f in (("dotprod", dot), ("bias", bias)):
        lay = Layout(*ct.ratings.shape, f.user.shape[1], f.has_bias)
        pred = predict(f, ct.mask)
        cells = {
            lay.pred(i, j): float(pred[i, j])
            for i in range(lay.n_users)
            for j in range(lay.n_movies)
        }
        cells[lay.loss] = rmse(ct.ratings, f)
        out[name] = cells
    long = ct.long()
    k = dot.user.shape[1]
    lay = Layout(*ct.ratings.shape, k, False)
    out["word_emb"] = word_emb_values(ct, dot)
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


def one_hot(index: np.ndarray | int, n: int) -> np.ndarray:
    """Rows of the n x n identity: row i is 1 at position i, else 0.

    Notebook 01.
    """
    return np.eye(n)[np.asarray(index)]


def word_emb_values(ct: Crosstab, dot: Factors) -> dict[str, float | str]:
    """The word_emb sheet's formula cells in float64: one-hot rows times factor matrices.

    Notebook 01.
    """
    n_u, n_m = ct.ratings.shape
    k = dot.user.shape[1]
    we = WordEmb(n_u, n_m, k)
    long = ct.long()
    pick = we.first_pick(len(long))
    u, m = int(long.row[pick]), int(long.col[pick])  # the sheet's default choice
    cells: dict[str, float | str] = {}
    for block, (n, idx, matrix) in enumerate(((n_u, u, dot.user), (n_m, m, dot.movie))):
        r0 = we.block_row(block)
        hot = one_hot(idx, n)
        looked_up = hot @ matrix  # (n,) @ (n, k): the chosen row
        for p in range(n):
            cells[book.addr(2 + p, r0 + 2)] = float(hot[p])
        for fi in range(k):
            cells[book.addr(2 + fi, r0 + 3)] = float(looked_up[fi])
            cells[book.addr(2 + fi, r0 + 4)] = float(matrix[idx, fi])
    cells[we.pred] = float(dot.user[u] @ dot.movie[m])
    cells[we.sheet_pred] = float(predict(dot, ct.mask)[u, m])
    rows = long.row.to_numpy()[we.batch_picks(len(long))]
    batch = one_hot(rows, n_u) @ dot.user
    for n, r in enumerate(rows):
        rr = we.batch_row0 + n
        shown = book.exact(ct.users[r])  # the id's digits as text beyond 2**53, as the sheet has it
        cells[f"A{rr}"] = float(shown) if isinstance(shown, int) else shown
        cells[f"B{rr}"] = float(r + 1)
        for p in range(n_u):
            cells[book.addr(3 + p, rr)] = float(p == r)
        for fi in range(k):
            cells[book.addr(4 + n_u + fi, rr)] = float(batch[n, fi])
    return cells


def write(
    ct: Crosstab,
    path: str | os.PathLike,
    dot: Factors | None = None,
    bias: Factors | None = None,
    seed: int = 42,
) -> Path:
    """Save the workbook atomically; factors default to seeded uniform [0, 1) numbers.

    Notebook 01.
    """
    n_u, n_m = ct.ratings.shape
    dot = dot if dot is not None else init_factors(n_u, n_m, seed=seed)
    bias = bias if bias is not None else init_factors(n_u, n_m, bias=True, seed=seed)
    return book.save_atomic(build(ct, dot, bias), path)


@dataclass(frozen=True)
class Export:
    """What `export` wrote: both workbooks, their starting factors and the two Solver fits.

    Notebook 01.

    All factors are as the workbooks hold them (`as_written`); each fit's `rmse` is recomputed
    from those, so it is the number the fitted workbook's formulas give.
    """

    initial_path: Path
    fitted_path: Path
    dot: Factors
    bias: Factors
    dot_fit: FitResult
    bias_fit: FitResult

    @property
    def paths(self) -> list[Path]:
        """The two workbooks written, the seeded start first.

        Notebook 01.
        """
        return [self.initial_path, self.fitted_path]

    def fit_lines(self) -> list[str]:
        """One line per Solver fit: its RMSE before and after, and whether L-BFGS converged.

        Notebook 01.
        """
        lines = []
        for name, r in (("dotprod", self.dot_fit), ("bias", self.bias_fit)):
            stop = "converged" if r.converged else "stopped at the iteration cap"
            lines.append(
                f"{name}: RMSE {r.history[0]:.6f} -> {r.rmse:.6f} "
                f"after {len(r.history) - 1} L-BFGS iterations ({stop})"
            )
        return lines


def export(
    ct: Crosstab,
    out_dir: str | os.PathLike,
    seed: int = 42,
    method: str = "lbfgs",
    max_iter: int = 1000,
) -> Export:
    """Write collab_filter.xlsx (seeded start) and collab_filter_fitted.xlsx (after the Python Solver).

    Notebook 01.
    """
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
    return Export(
        book.save_atomic(initial, out / FILENAME),
        book.save_atomic(fitted_wb, out / FITTED_FILENAME),
        dot,
        bias,
        fits[0],
        fits[1],
    )
