"""What a trained EmbeddingDotBias learned: biases, PCA of factors, neighbours, new-user fold-in.

Notebook 06.

Works on anything shaped like the lesson's EmbeddingDotBias (`u`, `m`, `ub`, `mb`, `y_range`).
Fold-in ("what about a new user?"): the model's forward on one new user row, movies frozen,
minimising squared error + s2 * sum((theta - mu)**2 / v), the MAP estimate under "a new user looks
like a random trained user" (mu, v: the trained users' mean and variance; s2: the model's residual
variance), by L-BFGS in float64. No ratings: the prior mean, i.e. a bias-only recommender.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from lesson5.data import Ratings, build
from lesson5.models import sigmoid_range
from lesson5.train import evaluate

Rated = Iterable[tuple[int, float]] | pd.DataFrame  # a new user's (movieId, rating) pairs
_LBFGS = dict(lr=1, tolerance_grad=1e-10, tolerance_change=1e-14, line_search_fn="strong_wolfe")


def _count(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"{name}={value!r}: must be a positive whole number"
            + (" (or None for all)" if allow_none else "")
        )


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The four embedding tables as float64 CPU tensors (biases flattened)."""
    w = {k: getattr(model, k).weight.detach().cpu().double() for k in ("u", "m", "ub", "mb")}
    return w | {k: w[k].reshape(-1) for k in ("ub", "mb")}


def _one_user(model: nn.Module, factors: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """`model` in float64 on the CPU with one user row, the only trainable part (movies frozen)."""
    user = copy.deepcopy(model).cpu().double().eval().requires_grad_(False)
    user.u = nn.Embedding.from_pretrained(factors.reshape(1, -1).clone(), freeze=False)
    user.ub = nn.Embedding.from_pretrained(bias.reshape(1, 1).clone(), freeze=False)
    return user


def most_rated(data: Ratings, n: int | None = None) -> np.ndarray:
    """Movie indices by number of ratings, most rated first (ties: smaller movieId first)."""
    counts = np.bincount(data.movie_idx, minlength=data.n_movies)
    idx = np.lexsort((data.movies_map.ids, -counts))  # the last key sorts first
    return idx if n is None else idx[:n]


def _titles(data: Ratings, movie_ids: np.ndarray) -> list[str]:
    titles = data.movies.set_index("movieId")["title"]
    return [str(titles.get(int(m), f"movie {int(m)}")) for m in movie_ids]


def movie_bias_table(model: nn.Module, data: Ratings, top: int = 1000) -> pd.DataFrame:
    """The `top` most-rated movies by bias (a logit, and in stars), mean rating, raters' bias."""
    w = _weights(model)
    base = w["m"] @ w["u"].mean(0) + w["ub"].mean()  # the average user's logit, without the bias
    lo, hi = (float(y) for y in model.y_range)
    stars = (sigmoid_range(base + w["mb"], lo, hi) - sigmoid_range(base, lo, hi)).numpy()
    idx = most_rated(data, top)
    ub = w["ub"].numpy()[data.user_idx]  # generous raters lift the mean rating, not the bias
    r = pd.DataFrame({"m": data.movie_idx, "rating": data.ratings.rating.to_numpy(), "ub": ub})
    g = r.groupby("m").agg(
        n_ratings=("rating", "size"), mean_rating=("rating", "mean"), raters_bias=("ub", "mean")
    )
    ids, g = data.movies_map.decode(idx), g.reindex(idx)
    t = pd.DataFrame({"movieId": ids, "title": _titles(data, ids), "bias": w["mb"].numpy()[idx]})
    t = t.assign(bias_stars=stars[idx], **{c: g[c].to_numpy() for c in g.columns})
    return t.sort_values(["bias", "movieId"], kind="stable").reset_index(drop=True)


@dataclass
class PCA:
    """Principal components of a set of factor vectors: scores (n x k), axes (k x d), explained variance."""

    scores: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor
    explained_ratio: torch.Tensor
    mean: torch.Tensor


def pca(x: torch.Tensor, k: int = 3) -> PCA:
    """PCA by SVD of the centred rows of `x` in float64, each axis's largest loading positive."""
    x = torch.as_tensor(x).detach().cpu().double()
    if x.ndim != 2 or not 1 <= k <= min(x.shape):
        raise ValueError(
            f"pca needs a 2-D tensor and 1 <= k <= min(shape); got shape {tuple(x.shape)}, k={k}"
        )
    mean = x.mean(0)
    xc = x - mean
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    vh = vh[:k]  # SVD's signs are arbitrary: each axis's largest loading is made positive
    vh = vh * torch.sign(vh.gather(1, vh.abs().argmax(1, keepdim=True)))
    var = s**2 / (x.shape[0] - 1)
    return PCA(xc @ vh.T, vh, var[:k], var[:k] / var.sum(), mean)


def movie_pca(
    model: nn.Module, data: Ratings, top: int = 2000, k: int = 3
) -> tuple[pd.DataFrame, PCA]:
    """PCA of the movie factors of the `top` most-rated movies: a table movieId, title, PC1..PCk."""
    idx = most_rated(data, top)
    p = pca(_weights(model)["m"][idx], k)
    ids = data.movies_map.decode(idx)
    table = pd.DataFrame({"movieId": ids, "title": _titles(data, ids)})
    for j in range(k):
        table[f"PC{j + 1}"] = p.scores[:, j].numpy()
    return table, p


def component_ends(table: pd.DataFrame, component: str, n: int = 10) -> pd.DataFrame:
    """The `n` titles at the low and at the high end of one component column."""
    s = table.sort_values([component, "movieId"], kind="stable")
    return pd.DataFrame({"low": s.title.head(n).to_list(), "high": s.title.tail(n).to_list()[::-1]})


def cosine_neighbours(
    model: nn.Module, data: Ratings, movie_id: int, n: int = 10, among: int | None = 3000
) -> pd.DataFrame:
    """The `n` movies among the `among` most rated (None: all) closest in cosine to `movie_id`."""
    _count("n", n)
    _count("among", among, allow_none=True)
    m = _weights(model)["m"]
    target = int(data.movies_map.encode([movie_id])[0])
    cand = most_rated(data, among)  # barely trained factors would crowd the list
    cand = cand[cand != target]
    unit = torch.nn.functional.normalize(m, dim=1)
    sim = unit[cand] @ unit[target]
    top = torch.topk(sim, min(n, len(cand)))
    ids = data.movies_map.decode(cand[top.indices.numpy()])
    return pd.DataFrame({"movieId": ids, "title": _titles(data, ids), "cosine": top.values.numpy()})


@dataclass
class NewUser:
    """A folded-in user: factors and bias fitted with the movie side frozen, and what they rated."""

    factors: torch.Tensor
    bias: float
    movie_idx: np.ndarray
    ratings: np.ndarray


def _rated_pairs(data: Ratings, rated: Rated, y_range) -> tuple[np.ndarray, np.ndarray]:
    """Validate (movieId, rating) pairs; return (movie indices, ratings)."""
    if isinstance(rated, pd.DataFrame):
        rated = rated.itertuples(index=False, name=None)
    idx, ys, seen = [], [], {}
    known = set(data.movies_map.ids.tolist())
    for pos, pair in enumerate(rated):
        at = f"new user's rating #{pos}"
        try:
            movie_id, rating = pair
        except (TypeError, ValueError):
            raise ValueError(f"{at}: expected a (movieId, rating) pair, got {pair!r}") from None
        if movie_id not in known:
            raise KeyError(
                f"{at}: movieId {movie_id!r} is not among the {data.n_movies} movies the model "
                f"was trained on"
            )
        if (first := seen.get(movie_id)) is not None:
            raise ValueError(f"{at}: movieId {movie_id} is rated twice (first as #{first})")
        seen[movie_id] = pos
        r = float(rating)
        if not np.isfinite(r) or not y_range[0] <= r <= y_range[1]:
            raise ValueError(
                f"{at} (movieId {movie_id}): rating {rating!r} is outside the model's range "
                f"{tuple(y_range)}"
            )
        idx.append(int(data.movies_map.encode([movie_id])[0]))
        ys.append(r)
    return np.asarray(idx, dtype=np.int64), np.asarray(ys, dtype=np.float64)


def residual_variance(model: nn.Module, data: Ratings) -> float:
    """Mean squared error of the model on its training ratings: the fold-in prior's noise variance."""
    return evaluate(copy.deepcopy(model).cpu().double(), *data.tensors("train"))


def fold_in(
    model: nn.Module,
    data: Ratings,
    rated: Rated,
    *,
    noise_var: float | None = None,
    max_iter: int = 200,
) -> NewUser:
    """Fit a new user's factors and bias to their (movieId, rating) pairs (module docstring)."""
    number = isinstance(noise_var, (int, float, np.number))
    # NaN would pass every comparison below and come back as NaN factors; refuse it here.
    if noise_var is not None and not (number and np.isfinite(noise_var) and noise_var >= 0):
        raise ValueError(
            f"noise_var={noise_var!r}: must be a finite number >= 0 (or None: the model's "
            f"residual variance)"
        )
    _count("max_iter", max_iter)
    w = _weights(model)
    idx, y = _rated_pairs(data, rated, model.y_range)
    mu = torch.cat([w["u"].mean(0), w["ub"].mean().reshape(1)])
    if len(w["u"]) > 1:
        var = torch.cat([w["u"].var(0), w["ub"].var().reshape(1)]).clamp_min(1e-12)
    else:  # one trained user has no spread (a NaN variance): a unit one keeps the prior weak
        var = torch.ones_like(mu)
    if len(idx) == 0:
        return NewUser(mu[:-1].clone(), float(mu[-1]), idx, y)
    s2 = residual_variance(model, data) if noise_var is None else float(noise_var)
    user = _one_user(model, mu[:-1], mu[-1])
    movies = torch.as_tensor(idx)
    rows, target = torch.zeros_like(movies), torch.as_tensor(y)
    opt = torch.optim.LBFGS([user.u.weight, user.ub.weight], max_iter=max_iter, **_LBFGS)

    def objective() -> torch.Tensor:
        opt.zero_grad()
        theta = torch.cat([user.u.weight[0], user.ub.weight[0]])
        loss = ((target - user(rows, movies)) ** 2).sum() + s2 * ((theta - mu) ** 2 / var).sum()
        loss.backward()
        return loss

    opt.step(objective)
    return NewUser(user.u.weight.detach()[0], float(user.ub.weight.detach()[0, 0]), idx, y)


def predict_new_user(
    model: nn.Module, user: NewUser, movie_idx: np.ndarray | None = None
) -> torch.Tensor:
    """Predicted ratings (float64) of a folded-in user for movie indices, default every movie."""
    movies = torch.arange(model.m.num_embeddings) if movie_idx is None else movie_idx
    movies = torch.as_tensor(np.asarray(movies), dtype=torch.long)
    user = _one_user(model, user.factors, torch.tensor(user.bias, dtype=torch.float64))
    with torch.no_grad():
        return user(torch.zeros_like(movies), movies)


def recommend(
    model: nn.Module, data: Ratings, rated: Rated, n: int = 10, among: int | None = 3000, **fold_kw
) -> pd.DataFrame:
    """Top-`n` predicted movies of the `among` most rated for a new user, but those they rated."""
    _count("n", n)
    _count("among", among, allow_none=True)
    user = fold_in(model, data, rated, **fold_kw)
    cand = most_rated(data, among)
    cand = cand[~np.isin(cand, user.movie_idx)]
    pred = predict_new_user(model, user, cand).numpy()
    order = np.lexsort((data.movies_map.decode(cand), -pred))[:n]
    ids = data.movies_map.decode(cand[order])
    return pd.DataFrame({"movieId": ids, "title": _titles(data, ids), "predicted": pred[order]})


def hold_out_users(
    data: Ratings, n_users: int, min_ratings: int, seed: int = 0
) -> tuple[Ratings, dict]:
    """(the data without `n_users` random users of >= min_ratings ratings, {userId: their ratings})."""
    r = data.ratings
    counts = r.userId.value_counts()
    pool = np.sort(counts[counts >= min_ratings].index.to_numpy())
    if len(pool) < n_users:
        raise ValueError(
            f"only {len(pool)} users have >= {min_ratings} ratings; cannot hold out {n_users}"
        )
    chosen = np.random.default_rng(seed).choice(pool, n_users, replace=False)
    kept = build(r[~r.userId.isin(chosen)], data.movies, source=data.source)
    known = r.movieId.isin(set(kept.movies_map.ids.tolist()))  # the only movies its model knows
    held = {int(uid): r[(r.userId == uid) & known].reset_index(drop=True) for uid in chosen}
    return kept, held


def fold_in_rmse(
    model: nn.Module, data: Ratings, held: dict, n_fold: int = 10, seed: int = 0
) -> dict[str, float]:
    """RMSE on held-out users' other ratings after folding in `n_fold` random ones, and of the fallback."""
    rng = np.random.default_rng(seed)
    fallback = fold_in(model, data, [])
    noise_var = residual_variance(model, data)  # once, not once per user
    se_fold, se_base = [], []
    for df in held.values():
        perm = rng.permutation(len(df))
        given, rest = df.iloc[perm[:n_fold]], df.iloc[perm[n_fold:]]
        user = fold_in(model, data, list(zip(given.movieId, given.rating)), noise_var=noise_var)
        idx = data.movies_map.encode(rest.movieId.to_numpy())
        y = rest.rating.to_numpy(dtype=np.float64)
        se_fold.append((predict_new_user(model, user, idx).numpy() - y) ** 2)
        se_base.append((predict_new_user(model, fallback, idx).numpy() - y) ** 2)
    return {
        "fold_in": float(np.sqrt(np.concatenate(se_fold).mean())),
        "fallback": float(np.sqrt(np.concatenate(se_base).mean())),
        "users": len(held),
        "ratings": int(sum(len(s) for s in se_fold)),
    }
