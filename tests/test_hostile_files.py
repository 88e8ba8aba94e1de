"""Other MovieLens releases and zip bombs (issue 23): every layout reads, a bomb is refused unread.

The oracle is the list of (user, movie, rating, timestamp) rows each test writes itself, in each
release's own format (GroupLens' README files: ml-100k's u.data/u.item, ml-1m's and ml-10m's
`::`-separated .dat files, ml-20m and later's CSV), gzip'd too.
"""

from __future__ import annotations

import gzip
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lesson5 import data, read

ROWS = [(196, 242, 3.0, 881250949), (186, 302, 3.5, 891717742), (22, 242, 1.0, 878887116)]
TITLES = {242: "Kolya (1996)", 302: "L.A. Confidential, été (1997)"}


def as_csv() -> str:
    return "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{r},{t}\n" for u, m, r, t in ROWS
    )


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
    genres = {242: "Comedy", 302: "Crime|Film-Noir|Mystery|Thriller"}
    return "".join(f"{m}::{t}::{genres[m]}\n" for m, t in TITLES.items()).encode(encoding)


def zipped(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def check(ratings, movies) -> None:
    want = np.array(ROWS, dtype=np.float64)
    got = ratings[["userId", "movieId", "rating", "timestamp"]].to_numpy(dtype=np.float64)
    assert np.array_equal(got, want)
    assert dict(zip(movies.movieId, movies.title)) == TITLES
    assert dict(zip(movies.movieId, movies.genres))[302] == "Crime|Film-Noir|Mystery|Thriller"


RELEASES = {
    "ml-100k": {"ml-100k/u.data": as_sep("\t"), "ml-100k/u.item": u_item()},
    "ml-1m": {"ml-1m/ratings.dat": as_sep("::"), "ml-1m/movies.dat": movies_dat("latin-1")},
    "ml-10m": {
        "ml-10M100K/ratings.dat": as_sep("::"),
        "ml-10M100K/movies.dat": movies_dat("utf-8"),
    },
    "ml-32m": {
        "ml-32m/ratings.csv": as_csv(),
        "ml-32m/movies.csv": "movieId,title,genres\n242,Kolya (1996),Comedy\n"
        '302,"L.A. Confidential, été (1997)",Crime|Film-Noir|Mystery|Thriller\n',
    },
    "gzip": {
        "ml/ratings.csv.gz": gzip.compress(as_csv().encode()),
        "ml/movies.dat.gz": gzip.compress(movies_dat("latin-1")),
    },
}


@pytest.mark.parametrize("release", RELEASES)
def test_every_release_reads_from_its_zip_and_its_folder(tmp_path, release):
    members = RELEASES[release]
    check(*read.movielens(zipped(tmp_path / f"{release}.zip", members))[:2])
    for name, content in members.items():
        path = tmp_path / "unzipped" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    check(*read.movielens(tmp_path / "unzipped")[:2])
    ratings_file = next(
        p for p in (tmp_path / "unzipped").rglob("*") if "u.data" in p.name or "ratings" in p.name
    )
    check(*read.movielens(ratings_file)[:2])  # a bare ratings file finds its titles beside it
    assert data.load(tmp_path / f"{release}.zip").n_users == 3


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("u.data", "1\t2\t3\t4\n1\t3\tx\t4\n", "u.data, line 2, column 'rating': value 'x'"),
        (
            "ratings.dat",
            "1::2::3::4\n1::3::7::4\n",
            "ratings.dat, line 2, column 'rating': value '7'",
        ),
        ("ratings.dat", "1::2::3::4\n1::3::4\n", "ratings.dat, line 2: 3 fields"),
        (
            "ratings.dat",
            "1::2::3::4\n1::2::4::5\n",
            "ratings.dat, line 2, columns ('userId', 'movieId')",
        ),
    ],
)
def test_the_validation_messages_name_file_line_column_and_value_in_every_format(
    tmp_path, name, content, where
):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(
        data.DataError, match=r"^" + str(tmp_path).replace("\\", "\\\\") + "/"
    ) as info:
        read.load_ratings(path)
    assert where in str(info.value)
    path = tmp_path / f"{name}.gz"
    path.write_bytes(gzip.compress(content.encode()))
    with pytest.raises(data.DataError) as info:
        read.load_ratings(path)
    assert where.replace(name, f"{name}.gz") in str(info.value)


def test_a_folder_without_any_ratings_file_names_every_name_it_looked_for(tmp_path):
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    with pytest.raises(data.DataError) as info:
        read.load_ratings(tmp_path)
    message = str(info.value)
    assert all(n in message for n in ("holds no ratings.csv", "ratings.dat", "u.data", ".gz"))


# ---------------------------------------------------------------- zip bombs


def declare_size(path: Path, member_size: int) -> Path:
    """Rewrite the zip's declared uncompressed size (local and central headers), as a bomb's are."""
    raw = bytearray(path.read_bytes())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = raw.find(sig)
        raw[pos + at : pos + at + 4] = struct.pack("<I", member_size)
    path.write_bytes(bytes(raw))
    return path


def test_a_zip_bomb_is_refused_from_its_declared_size_before_reading(tmp_path):
    bomb = declare_size(
        zipped(tmp_path / "b.zip", {"ml/ratings.csv": as_csv() * 2000}), 1_100_000_000
    )
    start = time.perf_counter()
    with pytest.raises(data.DataError) as info:
        read.load_ratings(bomb)
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "b.zip!ml/ratings.csv would unpack" in message and "zip bomb" in message
    assert "1.10 GB" in message and "\n" not in message


def test_a_member_over_the_cap_is_refused_and_the_cap_is_a_setting(tmp_path, monkeypatch):
    path = zipped(
        tmp_path / "z.zip", {"ml/ratings.csv": as_csv(), "ml/movies.csv": "movieId,title\n"}
    )
    monkeypatch.setattr(read, "MAX_MEMBER_BYTES", 50)
    with pytest.raises(
        data.DataError, match=r"z.zip!ml/ratings.csv would unpack to .*MAX_MEMBER_BYTES"
    ):
        read.load_ratings(path)
    monkeypatch.setattr(read, "MAX_MEMBER_BYTES", 2**30)
    assert len(read.load_ratings(path)) == 3
    assert read.MAX_MEMBER_BYTES >= 880_000_000  # ml-32m's ratings.csv still fits


def test_a_member_that_lies_small_is_read_only_as_far_as_it_says(tmp_path):
    lie = declare_size(zipped(tmp_path / "l.zip", {"ml/ratings.csv": as_csv() * 20000}), 100)
    with pytest.raises(
        data.DataError, match=r"l.zip is damaged: ml/ratings.csv cannot be extracted"
    ):
        read.load_ratings(lie)


def test_a_gzip_bomb_is_refused_from_its_declared_size(tmp_path):
    raw = bytearray(gzip.compress(as_csv().encode() * 2000))
    raw[-4:] = struct.pack("<I", 1_100_000_000)  # the gzip trailer's size field
    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=r"ratings.csv.gz would unpack .* zip bomb"):
        read.load_ratings(path)


def test_a_csv_without_its_header_line_says_so_and_how_to_fix_it(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(as_sep(","))
    with pytest.raises(data.DataError, match=r"ratings.csv: missing required column") as info:
        read.load_ratings(path)
    assert "no header line; add userId,movieId,rating,timestamp as its first line" in str(
        info.value
    )
