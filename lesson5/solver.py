"""A Python "Solver" for the spreadsheet: fit the factor cells to minimise the sheet's RMSE.

Notebook 01.

Excel's Solver changes the factor cells; here full-batch L-BFGS (or Adam) in float64 does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

N_FACTORS = 5


@dataclass(frozen=True)
class Factors:
    """The Solver's variables: user factors (n_users, k), movie factors (n_movies, k), optional biases."""

    user: np.ndarray
    movie: np.ndarray
    user_bias: np.ndarray | None = None
    movie_bias: np.ndarray | None = None

    @property
    def has_bias(self) -> bool:
        return self.user_bias is not None

    def as_tensors(self) -> list[torch.Tensor]:
        biases = [self.user_bias, self.movie_bias] if self.has_bias else []
        return [torch.tensor(a, dtype=torch.float64) for a in [self.user, self.movie, *biases]]


def init_factors(
    n_users: int, n_movies: int, n_factors: int = N_FACTORS, bias: bool = False, seed: int = 42
) -> Factors:
    """Uniform random numbers in [0, 1), like the lesson's sheet (`RAND()`), from a seeded generator."""
    rng = np.random.default_rng(seed)  # factors first: both sheets from one seed share them
    user = rng.random((n_users, n_factors))
    movie = rng.random((n_movies, n_factors))
    if not bias:
        return Factors(user, movie)
    return Factors(user, movie, rng.random(n_users), rng.random(n_movies))


def predict(f: Factors, mask: np.ndarray) -> np.ndarray:
    """The prediction block in float64: dot product (+ biases) where rated, else 0, like the sheet."""
    pred = f.user @ f.movie.T
    if f.has_bias:
        pred = pred + f.user_bias[:, None] + f.movie_bias[None, :]
    return np.where(mask, pred, 0.0)


def rmse(ratings: np.ndarray, f: Factors) -> float:
    """The sheet's loss, SQRT(SUMXMY2(ratings, predictions) / COUNT(ratings)), over rated cells only."""
    mask = ~np.isnan(ratings)
    err = (ratings - predict(f, mask))[mask]
    return float(np.sqrt(np.mean(err**2)))


def loss_torch(
    params: list[torch.Tensor], ratings: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The same RMSE as a differentiable torch expression of the factor tensors."""
    pred = params[0] @ params[1].T  # users x movies
    if len(params) == 4:
        pred = pred + params[2][:, None] + params[3][None, :]
    err = torch.where(mask, ratings - pred, torch.zeros_like(pred))
    return torch.sqrt((err**2).sum() / mask.sum())


@dataclass(frozen=True)
class FitResult:
    """Fitted factors, the RMSE after each iteration (history[0]: the start), the final RMSE."""

    factors: Factors
    history: list[float]
    rmse: float
    method: str
    converged: bool = False  # L-BFGS stopped improving before `max_iter` (never Adam's fixed steps)


def fit(
    ratings: np.ndarray,
    init: Factors,
    method: str = "lbfgs",
    max_iter: int = 1000,
    lr: float | None = None,
    tol: float = 1e-12,
) -> FitResult:
    """Minimise the sheet's RMSE over the factor cells in float64, full batch.

    "lbfgs": strong-Wolfe L-BFGS, one iteration per history entry, until one gains less than
    `tol` (relative); "adam": `max_iter` steps at `lr` (default 0.05).
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    if ratings.shape != (init.user.shape[0], init.movie.shape[0]):
        raise ValueError(
            f"ratings have shape {ratings.shape} but the factors are for "
            f"{init.user.shape[0]} users x {init.movie.shape[0]} movies"
        )
    mask_np = ~np.isnan(ratings)
    if not mask_np.any():
        raise ValueError("there is no rating to fit")
    y = torch.tensor(np.nan_to_num(ratings), dtype=torch.float64)
    mask = torch.tensor(mask_np)
    params = [p.requires_grad_() for p in init.as_tensors()]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_torch(params, y, mask)
        loss.backward()
        return loss

    with torch.no_grad():
        history = [float(loss_torch(params, y, mask))]
    if method == "lbfgs":
        # One iteration per step() so that history records every iteration; max_eval must leave
        # room for the line search (its default, 5/4 of max_iter, would allow none).
        wolfe = dict(line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)
        lr = 1 if lr is None else lr
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=1, max_eval=26, history_size=50, **wolfe)
    elif method == "adam":
        opt = torch.optim.Adam(params, lr=0.05 if lr is None else lr)
    else:
        raise ValueError(f"unknown method {method!r}: use 'lbfgs' or 'adam'")
    converged = False
    for _ in range(max_iter):
        opt.step(closure)
        with torch.no_grad():
            history.append(float(loss_torch(params, y, mask)))
        if method == "lbfgs" and history[-2] - history[-1] <= tol * history[-2]:
            converged = True
            break
    arrays = [p.detach().numpy().copy() for p in params]
    fitted = replace(init, **dict(zip(("user", "movie", "user_bias", "movie_bias"), arrays)))
    return FitResult(fitted, history, rmse(ratings, fitted), method, converged)
