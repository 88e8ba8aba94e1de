"""lesson5.interpret: PCA, neighbours, bias table and new-user fold-in, each against an oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesson5 import data as D
from lesson5 import interpret as I
from lesson5 import models, train


@pytest.fixture(scope="module")
def held_out():
    """Synthetic ratings with planted structure, 40 users held out, a model trained on the rest."""
    ds = D.synthetic(n_users=300, n_movies=400, n_ratings=24_000, seed=2)
    kept, held = I.hold_out_users(ds, n_users=40, min_ratings=40)
    torch.manual_seed(0)
    model = models.EmbeddingDotBias(kept.n_users, kept.n_movies, 5, kept.rating_range)
    opt = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=1e-5)
    train.fit(model, kept, 10, opt, bs=1024, seed=0, device="cpu", progress=False)
    return kept, held, model


def test_pca_matches_eigendecomposition_of_covariance():
    rng = np.random.default_rng(3)
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    x = rng.normal(size=(500, 6)) @ np.diag([5.0, 3.0, 2.0, 1.0, 0.5, 0.1]) @ rotation + 7.0
    p = I.pca(torch.tensor(x), k=3)
    evals, evecs = np.linalg.eigh(np.cov(x, rowvar=False))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    np.testing.assert_allclose(p.explained_variance.numpy(), evals[:3], rtol=1e-10)
    np.testing.assert_allclose(p.explained_ratio.numpy(), evals[:3] / evals.sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="k=7"):
        I.pca(torch.zeros(10, 6), k=7)
    for j in range(3):
        v = evecs[:, j] * np.sign(evecs[np.abs(evecs[:, j]).argmax(), j])  # largest loading > 0
        np.testing.assert_allclose(p.components[j].numpy(), v, atol=1e-10)
        np.testing.assert_allclose(p.scores[:, j].numpy(), (x - x.mean(0)) @ v, atol=1e-9)


def test_movie_pca_uses_the_most_rated_movies(held_out):
    ds, _, model = held_out
    table, p = I.movie_pca(model, ds, top=100, k=3)
    counts = ds.ratings.movieId.value_counts()
    # Brute force: rank by (-count, movieId).
    expected = sorted(counts.index, key=lambda mid: (-counts[mid], mid))[:100]
    assert table.movieId.tolist() == expected
    f = model.m.weight.detach().double().numpy()[ds.movies_map.encode(expected)]
    evals, evecs = np.linalg.eigh(np.cov(f, rowvar=False))
    v = evecs[:, -1] * np.sign(evecs[np.abs(evecs[:, -1]).argmax(), -1])
    np.testing.assert_allclose(table.PC1.to_numpy(), (f - f.mean(0)) @ v, atol=1e-9)
    ends = I.component_ends(table, "PC1", n=5)
    s = table.sort_values("PC1")
    assert ends.low.tolist() == s.title.head(5).tolist()
    assert ends.high.tolist() == s.title.tail(5).tolist()[::-1]


def test_cosine_neighbours_match_brute_force(held_out):
    ds, _, model = held_out
    f = model.m.weight.detach().double().numpy()
    target_id = int(ds.ratings.movieId.value_counts().index[0])
    got = I.cosine_neighbours(model, ds, target_id, n=8, among=None)
    t = ds.movies_map.encode([target_id])[0]
    norm = np.linalg.norm(f, axis=1)
    sims = [(-(f[j] @ f[t]) / (norm[j] * norm[t]), ds.movies_map.ids[j]) for j in range(len(f))]
    best = sorted(sims[:t] + sims[t + 1 :])[:8]
    assert got.movieId.tolist() == [mid for _, mid in best]
    np.testing.assert_allclose(got.cosine.to_numpy(), [-s for s, _ in best], atol=1e-12)


def test_movie_bias_table_against_pandas_and_the_average_users_prediction(held_out):
    ds, _, model = held_out
    table = I.movie_bias_table(model, ds, top=50)
    assert len(table) == 50 and table.bias.is_monotonic_increasing
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    ub, mb, u_avg = w["ub.weight"].ravel(), w["mb.weight"].ravel(), w["u.weight"].mean(0)
    lo, hi = model.y_range
    pred = lambda logit: lo + (hi - lo) / (1 + np.exp(-logit))  # noqa: E731
    for row in table.sample(10, random_state=0).itertuples():
        mine = ds.ratings[ds.ratings.movieId == row.movieId]
        j = ds.movies_map.encode([row.movieId])[0]
        assert row.n_ratings == len(mine) and row.title == ds.title(row.movieId)
        assert row.mean_rating == pytest.approx(mine.rating.astype(float).mean(), abs=1e-6)
        raters = ub[ds.users_map.encode(mine.userId.to_numpy())].mean()
        assert row.raters_bias == pytest.approx(raters, abs=1e-12)
        assert row.bias == pytest.approx(mb[j], abs=1e-12)
        # bias_stars: what the bias adds to the average user's prediction
        logit = w["m.weight"][j] @ u_avg + ub.mean()
        assert row.bias_stars == pytest.approx(pred(logit + mb[j]) - pred(logit), abs=1e-12)


def test_prediction_for_a_known_user_equals_the_model_forward(held_out):
    ds, _, model = held_out
    users, movies, _ = ds.tensors("valid")
    uid = int(users[0])
    w = I._weights(model)
    user = I.NewUser(w["u"][uid], float(w["ub"][uid]), np.array([]), np.array([]))
    sel = users == uid
    with torch.no_grad():
        expected = model(users[sel], movies[sel]).double().numpy()
    got = I.predict_new_user(model, user, movies[sel].numpy()).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_fold_in_is_a_stationary_point_by_finite_differences(held_out):
    """Oracle: the MAP objective in NumPy, differentiated by float64 central differences."""
    ds, _, model = held_out
    r = ds.ratings[ds.ratings.userId == ds.ratings.userId.iloc[0]].head(10)
    user = I.fold_in(model, ds, list(zip(r.movieId, r.rating)), noise_var=0.3)
    w = {k: v.numpy() for k, v in I._weights(model).items()}
    prior = np.column_stack([w["u"], w["ub"]])
    mu, var = prior.mean(0), prior.var(0, ddof=1)
    f, mb, y = w["m"][user.movie_idx], w["mb"][user.movie_idx], user.ratings
    lo, hi = model.y_range

    def objective(t):
        pred = lo + (hi - lo) / (1 + np.exp(-(f @ t[:-1] + t[-1] + mb)))
        return ((y - pred) ** 2).sum() + 0.3 * ((t - mu) ** 2 / var).sum()

    theta, h = np.append(user.factors.numpy(), user.bias), 1e-6
    grad = [(objective(theta + s) - objective(theta - s)) / (2 * h) for s in h * np.eye(len(theta))]
    assert max(abs(g) for g in grad) < 1e-5
    assert objective(theta) < objective(mu)  # it left the prior because the ratings say so


def test_fallback_is_the_average_user_and_recommend_excludes_rated_and_counts_exactly(held_out):
    ds, _, model = held_out
    empty, average = I.fold_in(model, ds, []), model.u.weight.detach().double().mean(0)
    np.testing.assert_allclose(empty.factors.numpy(), average.numpy(), atol=1e-12)
    assert empty.bias == pytest.approx(float(model.ub.weight.detach().double().mean()), abs=1e-12)
    base = I.recommend(model, ds, [], n=5, among=None)
    # Brute force: score every movie with the average user, best first.
    score = I.predict_new_user(model, empty).numpy()
    best = ds.movies_map.decode(np.argsort(-score, kind="stable")[:5])
    assert base.movieId.tolist() == best.tolist()
    rated = [(int(base.movieId[0]), 1.0), (int(base.movieId[1]), 0.5)]
    recs = I.recommend(model, ds, rated, n=20, among=None)
    assert not set(recs.movieId) & {m for m, _ in rated}
    assert recs.predicted.is_monotonic_decreasing
    assert len(I.recommend(model, ds, [], n=1, among=None)) == 1
    assert len(I.recommend(model, ds, [], n=ds.n_movies + 5, among=None)) == ds.n_movies
    assert len(I.recommend(model, ds, [], n=3, among=2)) == 2
    for noise_var in (0.0, 0.5):  # 0 is a legitimate choice: no prior, plain least squares
        user = I.fold_in(model, ds, [(int(ds.movies_map.ids[0]), 4.0)], noise_var=noise_var)
        assert torch.isfinite(user.factors).all() and np.isfinite(user.bias)


def test_held_out_users_are_removed_and_folding_them_in_beats_the_bias_only_fallback(held_out):
    kept, held, model = held_out
    assert len(held) == 40 and not set(held) & set(kept.ratings.userId)
    for uid, df in held.items():
        assert (df.userId == uid).all() and df.movieId.isin(kept.movies_map.ids).all()
    with pytest.raises(ValueError, match="only .* users have >= 10000 ratings"):
        I.hold_out_users(kept, n_users=1, min_ratings=10_000)
    res = I.fold_in_rmse(model, kept, held, n_fold=10)
    assert res["fold_in"] < 0.9 * res["fallback"], res


# Bad input (issue 10, class 6)
M10 = [(10, 4.0)]
NOISE_VARS = [float("nan"), float("inf"), -1.0, -1e-9]
BAD_COUNTS = [("n", -1), ("n", 0), ("n", 2.5), ("n", True), ("among", -1), ("among", 0)]
BAD = [
    ("fold_in", [(999_999, 4.0)], {}, KeyError, "movieId 999999 is not among"),
    ("fold_in", [(10, 4.0), (10, 3.0)], {}, ValueError, "rated twice"),
    ("fold_in", [(10, 9.0)], {}, ValueError, "rating 9.0 is outside"),
    ("fold_in", [(10,)], {}, ValueError, "expected a \\(movieId, rating\\) pair"),
    *[("fold_in", M10, dict(noise_var=v), ValueError, f"noise_var={v!r}") for v in NOISE_VARS],
    ("fold_in", M10, dict(max_iter=0), ValueError, "max_iter=0"),
    *[("recommend", [], {k: v}, ValueError, f"{k}={v}") for k, v in BAD_COUNTS],
    *[("cosine_neighbours", 10, {k: v}, ValueError, f"{k}={v}") for k, v in BAD_COUNTS],
]


@pytest.mark.parametrize(
    "fn, arg, kw, error, match", BAD, ids=lambda v: v if isinstance(v, str) else None
)
def test_bad_input_gives_a_clear_error(held_out, fn, arg, kw, error, match):
    ds, _, model = held_out
    with pytest.raises(error, match=match):
        getattr(I, fn)(model, ds, arg, **kw)
