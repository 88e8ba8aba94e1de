"""lesson5.data: loading, validation, id maps, the lesson's split, synthetic data, the CLI."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from _helpers import write

from lesson5 import data, download, read
from lesson5.tools import cli

# ---------------------------------------------------------------- reading, and the CLI


def test_2018_release_counts(ml2018):
    d = ml2018
    assert (len(d.ratings), d.n_users, d.n_movies, len(d.movies)) == (100_836, 610, 9_724, 9_742)
    assert d.rating_range == (0.5, 5.0)


def test_2016_release_counts_folder_and_csv(movielens_2016):
    for source in (movielens_2016, movielens_2016 / "ratings.csv"):
        ds = data.load(source)
        assert (len(ds.ratings), ds.n_users, ds.n_movies) == (100_004, 671, 9_066)
    first = ds.ratings.iloc[0]
    assert (first.userId, first.movieId, first.rating, first.timestamp) == (1, 31, 2.5, 1260759144)


def test_zip_and_extracted_folder_load_the_same(movielens_zip, tmp_path):
    with zipfile.ZipFile(movielens_zip) as zf:
        zf.extractall(tmp_path)
    # In the folder, the csv sits one level down: ml-latest-small/ratings.csv.
    pd.testing.assert_frame_equal(read.load_ratings(movielens_zip), read.load_ratings(tmp_path))


def test_cli_data_prints_the_summary(movielens_zip, capsys):
    assert cli.main(["data", "--source", str(movielens_zip)]) == 0
    out = capsys.readouterr().out
    assert "ratings: 100,836" in out and "users:   610" in out and "movies:  9,724 rated" in out
    assert "  4.0  26,818 " in out  # the histogram's tallest bar


def oracle(fields: str) -> tuple | None:
    """Python's int() and float() on each field, or None where one is bad (no 1_0 separators)."""

    def whole(v: str) -> int:
        if re.fullmatch(r"\s*[+-]?\d+\s*", v):
            return int(v)
        f = float(v)
        if f != int(f) or abs(f) >= 2**53:
            raise ValueError(v)
        return int(f)

    try:
        u, m, r, t = fields.split(",")
        ids = [whole(v) for v in (u, m, t)]
        ok = "_" not in fields and all(-(2**63) <= i < 2**63 for i in ids) and 0.5 <= float(r) <= 5
        return (ids[0], ids[1], float(r), ids[2]) if ok else None
    except ValueError:
        return None


FIELDS = "1,2,3.5,0| 5,+7,4,1|05,9,0.1,9223372036854775807|1,2,4.4999999999999999,"
FIELDS += "-9223372036854775808|2,3.0,2.675,12|9007199254740993,4,5,1|1_0,4,5,1|1,2,1e0,1|1,2,3,|"
FIELDS += "1,2,nan,1|1,2,3.5,1.5"


@pytest.mark.parametrize("fields", FIELDS.split("|"))
def test_the_pandas_read_agrees_with_python_on_each_field(tmp_path, fields):
    """Oracle: Python's int() and float() on the fields; a row they refuse is named, line 3."""
    path = write(tmp_path, f"userId,movieId,rating,timestamp\n9,9,1,1\n{fields}\n")
    want = oracle(fields)
    if want is None:
        with pytest.raises(data.DataError, match=r"ratings.csv, line 3, column '\w+': value "):
            read.load_ratings(path)
        return
    df = read.load_ratings(path)
    assert list(df.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert df.userId.dtype == np.int64 and df.rating.dtype == np.float32
    row, (u, m, r, t) = df.iloc[1], want
    assert (row.userId, row.movieId, row.rating, row.timestamp) == (u, m, np.float32(r), t)


# ---------------------------------------------------------------- the split and the id maps


@pytest.mark.parametrize("n", [10, 1_001, 100_836])
def test_split_is_the_lessons_pick_and_leaves_global_state_alone(n):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    train, valid = data.split_indices(n)
    assert (np.random.get_state()[1] == before).all(), "split_indices touched the global state"
    np.random.seed(42)
    expected = np.random.permutation(n)[: int(0.2 * n)]  # fastai 0.7's get_cv_idxs
    np.testing.assert_array_equal(valid, expected)
    # a partition: every index once, so disjoint and of total length n
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(n))


def test_ids_indexed_in_order_of_first_appearance_and_round_trip(ml2018):
    d = ml2018
    for ids, idx, id_map in [
        (d.ratings.userId, d.user_idx, d.users_map),
        (d.ratings.movieId, d.movie_idx, d.movies_map),
    ]:
        to_idx = {o: i for i, o in enumerate(ids.unique())}  # the lesson's own construction
        np.testing.assert_array_equal(idx, ids.map(to_idx).to_numpy())
        np.testing.assert_array_equal(id_map.decode(idx), ids.to_numpy())


def test_unknown_ids_and_indices_are_named():
    m = data.IdMap.from_values("movieId", [31, 1029, 31, 7])
    assert list(m.encode([7, 31])) == [2, 0]
    with pytest.raises(KeyError, match="unknown movieId 999"):
        m.encode([31, 999])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        m.decode([0, 3])


def test_tensors_follow_the_split():
    ds = data.synthetic(n_users=20, n_movies=30, n_ratings=200, seed=1)
    u, m, y = ds.tensors("valid")
    assert len(u) == len(ds.valid_idx) == 40
    np.testing.assert_array_equal(y.numpy(), ds.ratings.rating.to_numpy()[ds.valid_idx])
    want = ds.ratings.userId.to_numpy()[ds.valid_idx]
    np.testing.assert_array_equal(ds.users_map.decode(u.numpy()), want)


# ---------------------------------------------------------------- synthetic data, LESSON5_DATA


def test_synthetic_has_the_schema_and_is_seeded():
    a, b = data.synthetic(seed=3), data.synthetic(seed=3)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    r = a.ratings
    assert list(r.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(r) == 20_000 and not r.duplicated(["userId", "movieId"]).any()
    assert r.rating.between(0.5, 5).all() and ((r.rating * 2) % 1 == 0).all()
    assert a.truth["user_factors"].shape == (300, 5) and a.truth["movie_factors"].shape == (500, 5)
    assert not (r.userId.unique() == np.arange(r.userId.nunique())).all()  # ids are not indices
    # Skewed popularity, as in MovieLens: the top 10% of movies hold well over 10% of ratings.
    counts = r.movieId.value_counts()
    assert counts.iloc[: len(counts) // 10].sum() > 0.3 * len(r)


def test_synthetic_planted_structure_is_recoverable():
    # The planted mean + biases + factors explain ratings far better than the global mean.
    ds = data.synthetic(seed=0)
    t, r = ds.truth, ds.ratings
    u = (r.userId.to_numpy() - 1) // 3
    m = (r.movieId.to_numpy() - 10) // 7
    clean = t["mean"] + t["user_bias"][u] + t["movie_bias"][m]
    clean = clean + 1.5 * (t["user_factors"][u] * t["movie_factors"][m]).sum(1)
    y = r.rating.to_numpy()
    rmse_truth = np.sqrt(np.mean((np.clip(clean, 0.5, 5) - y) ** 2))
    rmse_mean = np.sqrt(np.mean((y.mean() - y) ** 2))
    assert rmse_truth < 0.5 * rmse_mean


def test_load_and_the_cache_folder_follow_the_user_setting(monkeypatch, movielens_zip, tmp_path):
    """data.load() in a notebook reads $LESSON5_DATA: a cache folder, a MovieLens copy, or synthetic."""
    monkeypatch.setenv("LESSON5_SOURCE", "synthetic")  # an earlier version's variable: ignored
    monkeypatch.setenv("LESSON5_DATA", str(movielens_zip.parent))
    assert data.load().source == str(movielens_zip.resolve())  # the cache folder's zip
    monkeypatch.setenv("LESSON5_DATA", "synthetic")
    assert data.load().source == "synthetic"
    small = data.synthetic(n_users=20, n_movies=15, n_ratings=200, seed=1)
    small.ratings.to_csv(tmp_path / "ratings.csv", index=False)
    small.movies.to_csv(tmp_path / "movies.csv", index=False)
    for setting in (tmp_path, tmp_path / "ratings.csv"):  # a MovieLens folder, or its ratings.csv
        monkeypatch.setenv("LESSON5_DATA", str(setting))
        assert data.load().n_users == 20
    assert data.load("synthetic").n_users == 300  # an argument wins over the setting


def test_the_cache_folder_and_a_summary_naming_the_home_folder_as_a_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("LESSON5_DATA", str(tmp_path / "env"))
    assert download.data_dir() == tmp_path / "env"
    assert download.data_dir(tmp_path / "arg") == tmp_path / "arg"  # an argument wins
    monkeypatch.delenv("LESSON5_DATA")
    assert "lesson5" in str(download.data_dir())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert download.shown(tmp_path / ".cache" / "lesson5") == "~/.cache/lesson5"
    assert download.shown("/srv/data") == "/srv/data"
    assert download.shown(str(tmp_path) + "-other/x") == str(tmp_path) + "-other/x"
