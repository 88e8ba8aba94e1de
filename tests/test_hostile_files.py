"""Other MovieLens releases (issue 23): ROWS written in each release's own format (GroupLens'
READMEs), gzip'd too, read back; the unpacked-size cap is a setting (bad files: test_bad_input.py)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from _helpers import write, zip_of

from lesson5 import data, read

ROWS = [(196, 242, 3.0, 881250949), (186, 302, 3.5, 891717742), (22, 242, 1.0, 878887116)]
TITLES = {242: "Kolya (1996)", 302: "L.A. Confidential, été (1997)"}
GENRES = {242: "Comedy", 302: "Crime|Film-Noir|Mystery|Thriller"}
CSV = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in ROWS)


def as_sep(sep: str) -> str:
    return "".join(f"{u}{sep}{m}{sep}{r:g}{sep}{t}\n" for u, m, r, t in ROWS)


def u_item() -> bytes:
    # id|title|release date|video release date|IMDb URL|19 genre flags (unknown, Action, ...)
    flags = {242: [5], 302: [6, 10, 13, 16]}  # Comedy; Crime, Film-Noir, Mystery, Thriller
    lines = []
    for movie, title in TITLES.items():
        bits = ["1" if g in flags[movie] else "0" for g in range(19)]
        lines.append("|".join([str(movie), title, "01-Jan-1997", "", "http://x?a,b", *bits]))
    return ("\n".join(lines) + "\n").encode("latin-1")  # ml-100k is Latin-1


def movies_dat(encoding: str) -> bytes:
    return "".join(f"{m}::{t}::{GENRES[m]}\n" for m, t in TITLES.items()).encode(encoding)


def check(ratings, movies) -> None:
    want = np.array(ROWS, dtype=np.float64)
    got = ratings[["userId", "movieId", "rating", "timestamp"]].to_numpy(dtype=np.float64)
    assert np.array_equal(got, want)
    assert dict(zip(movies.movieId, movies.title)) == TITLES
    assert dict(zip(movies.movieId, movies.genres)) == GENRES


ML_32M_MOVIES = (
    'movieId,title,genres\n242,Kolya (1996),Comedy\n302,"L.A. Confidential, été (1997)",'
    "Crime|Film-Noir|Mystery|Thriller\n"
)
RELEASES = {  # each release's ratings file first
    "ml-100k": {"ml-100k/u.data": as_sep("\t"), "ml-100k/u.item": u_item()},
    "ml-1m": {"ml-1m/ratings.dat": as_sep("::"), "ml-1m/movies.dat": movies_dat("latin-1")},
    "ml-10m": {"ml-10M100K/ratings.dat": as_sep("::"), "ml-10M100K/movies.dat": movies_dat("utf-8")},
    "ml-32m": {"ml-32m/ratings.csv": CSV, "ml-32m/movies.csv": ML_32M_MOVIES},
    "gzip": {"ml/ratings.csv.gz": gzip.compress(CSV.encode()),
             "ml/movies.dat.gz": gzip.compress(movies_dat("latin-1"))},
}  # fmt: skip


@pytest.mark.parametrize("release", RELEASES)
def test_every_release_reads_from_its_zip_and_its_folder(tmp_path, release):
    members = RELEASES[release]
    zip_path = write(tmp_path, zip_of(members), f"{release}.zip")
    check(*read.movielens(zip_path)[:2])
    ratings_file, *_ = [write(tmp_path / "unzipped", c, n) for n, c in members.items()]
    check(*read.movielens(tmp_path / "unzipped")[:2])
    check(*read.movielens(ratings_file)[:2])  # a bare ratings file finds its titles beside it
    assert data.load(zip_path).n_users == 3


def test_a_member_over_the_cap_is_refused_and_the_cap_is_a_setting(tmp_path, monkeypatch):
    path = write(tmp_path, zip_of(RELEASES["ml-32m"]), "z.zip")
    monkeypatch.setattr(read, "MAX_MEMBER_BYTES", 50)
    match = r"z.zip!ml-32m/ratings.csv would unpack to .*MAX_MEMBER_BYTES"
    with pytest.raises(data.DataError, match=match):
        read.load_ratings(path)
    monkeypatch.setattr(read, "MAX_MEMBER_BYTES", 2**30)
    assert len(read.load_ratings(path)) == 3
    assert read.MAX_MEMBER_BYTES >= 880_000_000  # ml-32m's ratings.csv still fits
