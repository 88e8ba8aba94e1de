"""Notebook 06's numbers on the 2018 release: its `onecycle-bias` model (the session's `trained`
run), the recipe without weight decay and without 50 held-out users, with the notebook's seeds."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lesson5 import interpret, recipes
from lesson5.notebook import FIGURE_STYLE

# Notebook 06's made-up user: seven science-fiction films loved, five romances disliked.
FAN_RATINGS = {
    "Star Wars: Episode IV - A New Hope (1977)": 5.0,
    "Star Wars: Episode V - The Empire Strikes Back (1980)": 5.0,
    "Matrix, The (1999)": 5.0,
    "Terminator 2: Judgment Day (1991)": 5.0,
    "Alien (1979)": 5.0,
    "Blade Runner (1982)": 4.5,
    "Aliens (1986)": 5.0,
    "Notting Hill (1999)": 1.0,
    "Titanic (1997)": 1.5,
    "Pretty Woman (1990)": 1.0,
    "Sleepless in Seattle (1993)": 1.0,
    "You've Got Mail (1998)": 1.0,
}
TOY_STORY = 1  # the first movie in the table
PCS = ["PC1", "PC2", "PC3"]
PROPS = ["mean_rating", "log ratings", "year"]


def run(recipe, ds):
    """Trained once, in the cache notebook 06 trains it in (run_once leaves the generator as it was)."""
    return recipe.run_once(ds, progress=False, device="cpu")


@pytest.fixture(scope="module")
def model(trained):
    return trained("onecycle-bias", "2018")[0]


@pytest.fixture(scope="module")
def no_decay(ml2018):
    return run(dataclasses.replace(recipes.get("onecycle-bias"), wd=0.0), ml2018)


@pytest.fixture(scope="module")
def fan_table(ml2018):
    """The fan's movies as the notebook finds them: by title, with their genres and ratings."""
    table = ml2018.movies[ml2018.movies.title.isin(FAN_RATINGS)].reset_index(drop=True)
    return table.assign(rating=table.title.map(FAN_RATINGS))


@pytest.fixture(scope="module")
def oriented(ml2018, model):
    """The notebook's PCA table, each component turned to grow with what it follows most."""
    pcs, p = interpret.movie_pca(model, ml2018, top=1500, k=3)
    biases = interpret.movie_bias_table(model, ml2018, top=len(pcs))
    both = pcs.merge(biases, on=["movieId", "title"])
    both["log ratings"] = np.log(both.n_ratings)
    both["year"] = pd.to_numeric(both.title.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    reading = pd.DataFrame({c: [both[c].corr(both[q]) for q in PROPS] for c in PCS}, index=PROPS).T
    reading["strongest"] = reading.abs().idxmax(axis=1)
    for c, q in reading.strongest.items():
        sign = np.sign(reading.loc[c, q])
        pcs[c] *= sign
        both[c] *= sign
        reading.loc[c, PROPS] *= sign
    return pcs, p, both, reading


def test_without_weight_decay_the_model_memorises(trained, ml2018, model, no_decay):
    recipe = recipes.get("onecycle-bias")  # its target is in tests/test_lesson_03.py
    assert (
        model.u.weight.shape[1] == 50 and (recipe.epochs, recipe.bs) == (5, 256) and recipe.wd > 0
    )
    e, e0 = trained("onecycle-bias", "2018")[1].epochs, no_decay[1].epochs
    assert e0.train_loss.iloc[-1] < e.train_loss.iloc[-1] - 0.05  # fits the training set better
    assert e0.valid_rmse.iloc[-1] > e.valid_rmse.iloc[-1] + 0.01  # and the rest worse
    assert e0.valid_rmse.iloc[-1] > e0.valid_rmse.min() + 0.005  # rising after its best epoch
    counts = np.bincount(ml2018.movie_idx[ml2018.train_idx], minlength=ml2018.n_movies)
    groups = pd.cut(counts, [0, 2, 5, 20, 100, counts.max()])
    rated = counts > 0
    norms = {"decay": model.m.weight, "none": no_decay[0].m.weight}
    norms = pd.DataFrame({k: w.detach().norm(dim=1).numpy() for k, w in norms.items()})[rated]
    table = norms.groupby(groups[rated], observed=True).median()
    assert len(table) == 5 and (table.none > 1.3 * table.decay).all(), table
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > len(ml2018.train_idx) and np.median(counts[rated]) <= 5


def test_the_bias_follows_the_mean_rating_and_the_raters_bias_explains_more(ml2018, model):
    biases = interpret.movie_bias_table(model, ml2018, top=1000)
    assert len(biases) == 1000
    assert (np.sign(biases.bias) == np.sign(biases.bias_stars)).all()
    assert biases.bias.corr(biases.mean_rating) > 0.7

    def r2(columns):
        X = np.column_stack([np.ones(len(biases))] + [biases[c].to_numpy() for c in columns])
        y = biases.mean_rating.to_numpy()
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        return 1 - ((y - X @ coef) ** 2).sum() / ((y - y.mean()) ** 2).sum(), coef

    (r2_bias, _), (r2_both, coef) = r2(["bias"]), r2(["bias", "raters_bias"])
    assert r2_both > r2_bias + 0.01 and coef[2] > 0


def test_the_components_follow_rating_popularity_and_year(oriented):
    pcs, p, both, reading = oriented
    assert len(pcs) == 1500
    assert p.explained_ratio[0] > p.explained_ratio[1] >= p.explained_ratio[2]
    assert reading.strongest.to_dict() == dict(zip(PCS, PROPS)), reading
    assert reading.loc["PC1", "mean_rating"] > 0.5
    assert reading.loc["PC2", "log ratings"] > 0.2 and reading.loc["PC3", "year"] > 0.2
    # The notebook's medians of the 50 movies at each end: PC2 by ratings, PC3 by year.
    low2, high2 = both.nsmallest(50, "PC2"), both.nlargest(50, "PC2")
    low3, high3 = both.nsmallest(50, "PC3"), both.nlargest(50, "PC3")
    assert high2.n_ratings.median() > 1.3 * low2.n_ratings.median()
    assert high3.year.median() > low3.year.median() + 5


def test_the_pca_scatter_shows_whole_titles_that_do_not_overlap(oriented):
    """The notebook's labelled scatter, drawn the same way: at most 2 titles hidden, none overlap."""
    from adjustText import adjust_text
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pcs = oriented[0]
    span = pcs[["PC1", "PC2"]].quantile([0.01, 0.99]).diff().iloc[1].to_numpy()
    keep, placed = [], []
    for i, (x, y) in enumerate(pcs[["PC1", "PC2"]].head(300).to_numpy() / span):
        if all(abs(x - a) > 0.25 or abs(y - b) > 0.07 for a, b in placed):
            keep.append(i)
            placed.append((x, y))
    labelled = pcs.iloc[keep]
    with matplotlib.rc_context(FIGURE_STYLE | {"text.antialiased": False}):
        fig = Figure(figsize=(10, 7.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.scatter(pcs.PC1, pcs.PC2, s=4, color="0.75")
        ax.scatter(labelled.PC1, labelled.PC2, s=12, color="C0")
        texts = [ax.text(r.PC1, r.PC2, r.title, fontsize=9) for r in labelled.itertuples()]
        arrows = dict(arrowstyle="-", color="0.5", lw=0.5)
        adjust_text(texts, ax=ax, iter_lim=200, time_lim=None, arrowprops=arrows)
        renderer, shown = fig.canvas.get_renderer(), []
        for t in texts:
            box = t.get_window_extent(renderer)
            t.set_visible(not any(box.overlaps(b) for b in shown))
            shown += [box] if t.get_visible() else []
        assert [t.get_text() for t in texts] == labelled.title.tolist()
        visible = [t for t in texts if t.get_visible()]
        assert len(visible) >= len(texts) - 2
        boxes = [t.get_window_extent(FigureCanvasAgg(fig).get_renderer()) for t in visible]
    pairs = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not pairs, [(visible[i].get_text(), visible[j].get_text()) for i, j in pairs]


def test_toy_storys_nearest_movies_are_mostly_animated(ml2018, model):
    near = interpret.cosine_neighbours(model, ml2018, TOY_STORY, n=10, among=1500)
    cand = interpret.most_rated(ml2018, 1500)
    cand = cand[cand != ml2018.movies_map.encode([TOY_STORY])[0]]
    genres = ml2018.movies.set_index("movieId").genres
    animated = genres.reindex(near.movieId).str.contains("Animation").mean()
    overall = genres.reindex(ml2018.movies_map.decode(cand)).str.contains("Animation").mean()
    assert animated >= 0.5 and animated > 5 * overall, (animated, overall)


def test_the_fan_loves_science_fiction_and_dislikes_romances(ml2018, fan_table):
    loved, hated = fan_table[fan_table.rating >= 4.5], fan_table[fan_table.rating <= 1.5]
    assert len(fan_table) == 12 and len(loved) == 7 and len(hated) == 5
    assert loved.genres.str.contains("Sci-Fi").all()
    assert hated.genres.str.contains("Romance").all()
    assert int(ml2018.movies.movieId.iloc[0]) == TOY_STORY
    assert ml2018.title(TOY_STORY) == "Toy Story (1995)"


def test_the_fold_in_follows_acclaim_not_science_fiction(ml2018, model, oriented, fan_table):
    pcs = oriented[0]
    rated = list(zip(fan_table.movieId, fan_table.rating))
    fan = interpret.fold_in(model, ml2018, rated)
    average = interpret.fold_in(model, ml2018, [])
    assert fan.factors.numel() + 1 == 51

    def error(user):
        pred = interpret.predict_new_user(model, user, fan.movie_idx).numpy()
        return np.abs(pred - fan.ratings).mean()

    assert error(fan) < error(average)
    cand = interpret.most_rated(ml2018, 1500)
    cand = cand[~np.isin(cand, fan.movie_idx)]
    base = interpret.predict_new_user(model, average, cand)
    ids = ml2018.movies_map.decode(cand)
    scifi = ml2018.movies.set_index("movieId").genres.reindex(ids).str.contains("Sci-Fi")
    scifi = scifi.to_numpy(dtype=float)

    def lift(user):
        return (interpret.predict_new_user(model, user, cand) - base).numpy()

    pc1 = pcs.set_index("movieId").PC1.reindex(ids).to_numpy()
    corr_pc1 = np.corrcoef(lift(fan), pc1)[0, 1]
    corr_scifi = np.corrcoef(lift(fan), scifi)[0, 1]
    assert corr_pc1 > 0.5 and abs(corr_scifi) < 0.5 * corr_pc1, (corr_pc1, corr_scifi)
    # A prior 100 times weaker fits the twelve ratings far better, and still not science fiction.
    s2 = interpret.residual_variance(model, ml2018)
    loose = interpret.fold_in(model, ml2018, rated, noise_var=s2 / 100)
    assert error(loose) < 0.5 * error(fan)
    assert abs(np.corrcoef(lift(loose), scifi)[0, 1]) < 0.5 * corr_pc1


def test_folding_in_beats_the_fallback_on_50_held_out_users(ml2018):
    kept, held = interpret.hold_out_users(ml2018, n_users=50, min_ratings=50, seed=0)
    model_kept, _ = run(recipes.get("onecycle-bias"), kept)
    check = {
        n: interpret.fold_in_rmse(model_kept, kept, held, n_fold=n, seed=0) for n in (3, 10, 20)
    }
    assert len(held) == 50 and all(c["users"] == 50 for c in check.values())
    assert all(c["fold_in"] < c["fallback"] for c in check.values()), check
    assert check[20]["fold_in"] < check[10]["fold_in"] < check[3]["fold_in"], check
