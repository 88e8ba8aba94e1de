"""MovieLens ratings: fetch (hashed, cached, atomic), load with validation, encode ids, split.

Notebook 00 shows the data; every later notebook starts from `load()`.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported only when tensors are asked for
    import torch

URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
ZIP_NAME = "ml-latest-small.zip"
SHA256 = "859da233c6929ebc9202e9516cdefa8a3c695aef67d1878249d6036c3513c023"
# The 2016 release the course was taught on; GroupLens no longer serves it, so it is only
# ever read from a folder someone put there (tests and CI use ../shared/data).
RELEASE_2016_DIR = "ml-latest-small-2016"
MIN_RATING, MAX_RATING = 0.5, 5.0
RATING_COLUMNS = ("userId", "movieId", "rating")
MOVIE_COLUMNS = ("movieId", "title")
SOURCE_ENV = "LESSON5_SOURCE"  # what load() reads when no source is given (set by `lesson5 run --data`)


class DataError(ValueError):
    """Raised for data that is missing, corrupt or malformed; the message says where and what."""


# ---------------------------------------------------------------- where the data lives


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: `path`, else $LESSON5_DATA, else a per-user cache (notebook 00)."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get("LESSON5_DATA"):
        return Path(os.environ["LESSON5_DATA"]).expanduser()
    import pooch

    return Path(pooch.os_cache("lesson5"))


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _by_hand_hint(target: Path) -> str:
    return (
        f"Download {URL} by hand and put it at {target} "
        f"(or point $LESSON5_DATA at the folder that holds {ZIP_NAME}); its SHA-256 must be {SHA256}."
    )


def fetch(
    directory: str | os.PathLike | None = None,
    *,
    url: str = URL,
    sha256: str = SHA256,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Path to a verified `ml-latest-small.zip`, downloading it into the cache if needed (notebook 00).

    The hash is checked on every call. A cached file that does not match is deleted before
    anything else happens; a download goes to a temporary file in the same folder and is
    renamed only once its hash matches (pooch does this), so the cache never holds a file
    that would be trusted wrongly.
    """
    import pooch
    import requests

    folder = data_dir(directory)
    target = folder / ZIP_NAME
    if target.exists():
        if _sha256(target) == sha256:
            return target
        try:
            target.unlink()
        except OSError as e:
            raise DataError(
                f"{target} does not have the expected SHA-256 {sha256} and cannot be removed ({e}). "
                + _by_hand_hint(target)
            ) from e
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data folder {folder}: {e}. " + _by_hand_hint(target)) from e
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    try:
        path = pooch.retrieve(
            url, known_hash=f"sha256:{sha256}", fname=ZIP_NAME, path=folder, downloader=downloader
        )
    except (requests.RequestException, OSError) as e:
        raise DataError(f"could not download {url}: {e}. " + _by_hand_hint(target)) from e
    except ValueError as e:  # pooch: hash mismatch (the temporary file is already removed)
        raise DataError(f"downloaded {url} but its content is wrong: {e}. " + _by_hand_hint(target)) from e
    return Path(path)


def release_2016(directory: str | os.PathLike | None = None) -> Path | None:
    """The folder of the 2016 release if someone put it in the data folder, else None (notebook 01).

    Also None while $LESSON5_SOURCE says "synthetic": an offline run then touches no MovieLens file.
    """
    if directory is None and os.environ.get(SOURCE_ENV) == "synthetic":
        return None
    folder = data_dir(directory) / RELEASE_2016_DIR
    return folder if (folder / "ratings.csv").exists() else None


# ---------------------------------------------------------------- reading and validating


def _open_member(source: Path, name: str) -> tuple[str, bytes]:
    """(label for messages, raw bytes) of `name` (ratings.csv or movies.csv) at `source`."""
    if source.is_dir():
        path = source / name
        if not path.exists():
            nested = sorted(source.glob(f"*/{name}"))
            if not nested:
                raise DataError(f"{source} holds no {name}")
            path = nested[0]
        return str(path), path.read_bytes()
    if source.suffix == ".zip":
        try:
            with zipfile.ZipFile(source) as zf:
                members = [m for m in zf.namelist() if m.rsplit("/", 1)[-1] == name]
                if not members:
                    raise DataError(f"{source} holds no {name}")
                return f"{source}!{members[0]}", zf.read(members[0])
        except zipfile.BadZipFile as e:
            raise DataError(f"{source} is not a valid zip file: {e}") from e
    if source.name == name or name == "ratings.csv":
        return str(source), source.read_bytes()
    sibling = source.with_name(name)
    if not sibling.exists():
        raise DataError(f"no {name} beside {source}")
    return str(sibling), sibling.read_bytes()


def _resolve(source: str | os.PathLike | None) -> Path:
    if source is None:
        return fetch()
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist (expected a zip, a folder or a ratings.csv)")
    return path


def _read_csv(label: str, raw: bytes, required: Iterable[str]) -> pd.DataFrame:
    if not raw.strip():
        raise DataError(f"{label} is empty")
    df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{label}: missing required column(s) {missing}; found {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{label} has a header but no rows")
    return df


def _where(label: str, df: pd.DataFrame, pos: int, column: str) -> str:
    # Line numbers count the header as line 1, as an editor shows them.
    return f"{label}, line {pos + 2}, column {column!r}: value {df[column].iloc[pos]!r}"


def _numeric(label: str, df: pd.DataFrame, column: str, integer: bool) -> np.ndarray:
    text = df[column].str.strip()
    blank = (text == "").to_numpy()
    if blank.any():
        raise DataError(f"{_where(label, df, int(blank.argmax()), column)} is missing")
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if bad.any():
        kind = "an integer" if integer else "a number"
        raise DataError(f"{_where(label, df, int(bad.argmax()), column)} is not {kind}")
    return values.astype(np.int64) if integer else values


def _validate_ratings(label: str, df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "userId": _numeric(label, df, "userId", integer=True),
            "movieId": _numeric(label, df, "movieId", integer=True),
            "rating": _numeric(label, df, "rating", integer=False).astype(np.float32),
        }
    )
    if "timestamp" in df.columns:
        out["timestamp"] = _numeric(label, df, "timestamp", integer=True)
    r = out["rating"].to_numpy()
    bad = (r < MIN_RATING) | (r > MAX_RATING)
    if bad.any():
        raise DataError(
            f"{_where(label, df, int(bad.argmax()), 'rating')} is outside [{MIN_RATING}, {MAX_RATING}]"
        )
    dup = out.duplicated(["userId", "movieId"]).to_numpy()
    if dup.any():
        pos = int(dup.argmax())
        u, m = out.userId.iloc[pos], out.movieId.iloc[pos]
        first = int(((out.userId == u) & (out.movieId == m)).to_numpy().argmax())
        raise DataError(
            f"{label}, line {pos + 2}, columns ('userId', 'movieId'): duplicate pair ({u}, {m}), "
            f"first seen on line {first + 2}"
        )
    return out


def load_ratings(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated ratings (userId, movieId, rating[, timestamp]) from a zip, folder or csv (notebook 00)."""
    label, raw = _open_member(_resolve(source), "ratings.csv")
    return _validate_ratings(label, _read_csv(label, raw, RATING_COLUMNS))


def load_movies(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated movie titles (movieId, title, genres) from a zip, folder or csv (notebook 00)."""
    label, raw = _open_member(_resolve(source), "movies.csv")
    df = _read_csv(label, raw, MOVIE_COLUMNS)
    out = pd.DataFrame({"movieId": _numeric(label, df, "movieId", integer=True), "title": df["title"]})
    if "genres" in df.columns:
        out["genres"] = df["genres"]
    dup = out.movieId.duplicated().to_numpy()
    if dup.any():
        raise DataError(f"{_where(label, df, int(dup.argmax()), 'movieId')} is a duplicate movie id")
    return out


# ---------------------------------------------------------------- ids and split


@dataclass(frozen=True)
class IdMap:
    """Raw ids <-> contiguous indices 0..n-1, in order of first appearance (notebook 03)."""

    name: str
    ids: np.ndarray

    @classmethod
    def from_values(cls, name: str, values: Iterable[int]) -> "IdMap":
        """Index the distinct values in order of first appearance, as the lesson's `unique()` does."""
        return cls(name, pd.unique(np.asarray(values)))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    def encode(self, raw: Iterable[int] | int) -> np.ndarray:
        """Indices of raw ids; an id never seen raises KeyError naming it."""
        arr = np.atleast_1d(np.asarray(raw))
        idx = self._index.get_indexer(arr)
        if (idx < 0).any():
            bad = arr[int(np.argmax(idx < 0))].item()
            raise KeyError(f"unknown {self.name} {bad!r}: it is not among the {len(self)} {self.name}s seen in training")
        return idx

    def decode(self, idx: Iterable[int] | int) -> np.ndarray:
        """Raw ids of indices; an index out of range raises IndexError naming it."""
        arr = np.atleast_1d(np.asarray(idx))
        bad = (arr < 0) | (arr >= len(self))
        if bad.any():
            raise IndexError(f"{self.name} index {arr[int(np.argmax(bad))].item()} is out of range 0..{len(self) - 1}")
        return self.ids[arr]


def split_indices(n: int, valid_pct: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) row indices: valid is exactly the lesson's `get_cv_idxs(n)` pick (notebook 03).

    `np.random.seed(seed); np.random.permutation(n)[:int(valid_pct * n)]` draws from the
    legacy global MT19937 stream; a private RandomState with the same seed draws the same
    numbers without touching the global state.
    """
    valid = np.random.RandomState(seed).permutation(n)[: int(valid_pct * n)]
    mask = np.ones(n, dtype=bool)
    mask[valid] = False
    return np.flatnonzero(mask), valid


@dataclass
class Ratings:
    """Everything a model needs: the raw table, titles, id maps, encoded indices and the split."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    users_map: IdMap
    movies_map: IdMap
    train_idx: np.ndarray
    valid_idx: np.ndarray
    source: str = ""
    truth: dict = field(default_factory=dict)

    @cached_property
    def user_idx(self) -> np.ndarray:
        return self.users_map.encode(self.ratings.userId.to_numpy())

    @cached_property
    def movie_idx(self) -> np.ndarray:
        return self.movies_map.encode(self.ratings.movieId.to_numpy())

    @property
    def n_users(self) -> int:
        return len(self.users_map)

    @property
    def n_movies(self) -> int:
        return len(self.movies_map)

    @property
    def rating_range(self) -> tuple[float, float]:
        return float(self.ratings.rating.min()), float(self.ratings.rating.max())

    def title(self, movie_id: int) -> str:
        """The title of a raw movie id ('movie <id>' when the titles table lacks it)."""
        hit = self.movies.loc[self.movies.movieId == movie_id, "title"]
        return str(hit.iloc[0]) if len(hit) else f"movie {movie_id}"

    def tensors(self, part: str, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(users, movies, ratings) tensors of the 'train', 'valid' or 'all' rows, on `device` (notebook 03)."""
        import torch

        rows = {"train": self.train_idx, "valid": self.valid_idx, "all": np.arange(len(self.ratings))}[part]
        u = torch.as_tensor(self.user_idx[rows], dtype=torch.long, device=device)
        m = torch.as_tensor(self.movie_idx[rows], dtype=torch.long, device=device)
        y = torch.as_tensor(self.ratings.rating.to_numpy()[rows], dtype=torch.float32, device=device)
        return u, m, y


def build(ratings: pd.DataFrame, movies: pd.DataFrame, *, valid_pct: float = 0.2, seed: int = 42,
          source: str = "", truth: dict | None = None) -> Ratings:
    """Index ids in order of first appearance and split off the lesson's validation rows (notebook 03)."""
    ratings = ratings.reset_index(drop=True)
    train, valid = split_indices(len(ratings), valid_pct, seed)
    return Ratings(
        ratings=ratings,
        movies=movies,
        users_map=IdMap.from_values("userId", ratings.userId),
        movies_map=IdMap.from_values("movieId", ratings.movieId),
        train_idx=train,
        valid_idx=valid,
        source=source,
        truth=truth or {},
    )


def load(source: str | os.PathLike | None = None, *, valid_pct: float = 0.2, seed: int = 42) -> Ratings:
    """Load MovieLens (fetched, or from a zip/folder/ratings.csv) ready for training (notebook 00).

    `source="synthetic"` gives the synthetic data set instead (offline runs and fast tests).
    With no `source`, $LESSON5_SOURCE decides (a path or "synthetic"): that is how
    `lesson5 run --data synthetic` switches every notebook at once.
    """
    if source is None:
        source = os.environ.get(SOURCE_ENV) or None
    if isinstance(source, str) and source == "synthetic":
        return synthetic()
    path = _resolve(source)
    ratings = load_ratings(path)
    try:
        movies = load_movies(path)
    except DataError:
        if path.suffix == ".csv":  # a bare ratings.csv: titles are optional
            movies = pd.DataFrame({"movieId": pd.unique(ratings.movieId), "title": ""})
            movies["title"] = [f"movie {m}" for m in movies.movieId]
        else:
            raise
    return build(ratings, movies, valid_pct=valid_pct, seed=seed, source=str(path))


# ---------------------------------------------------------------- synthetic data


def synthetic(
    n_users: int = 300,
    n_movies: int = 500,
    n_ratings: int = 20_000,
    n_factors: int = 5,
    noise: float = 0.3,
    seed: int = 0,
    *,
    valid_pct: float = 0.2,
) -> Ratings:
    """Ratings with planted structure: mean + user bias + movie bias + user·movie factors + noise (notebook 00).

    Same schema as MovieLens (raw ids are not contiguous, popularity is skewed, ratings are
    half stars in [0.5, 5]); the ground truth is kept in `.truth`.
    """
    if n_ratings > n_users * n_movies:
        raise ValueError(f"n_ratings={n_ratings} exceeds n_users * n_movies = {n_users * n_movies}")
    rng = np.random.default_rng(seed)
    user_f = rng.normal(0, 1 / np.sqrt(n_factors), (n_users, n_factors))
    movie_f = rng.normal(0, 1 / np.sqrt(n_factors), (n_movies, n_factors))
    user_b = rng.normal(0, 0.35, n_users)
    movie_b = rng.normal(0, 0.45, n_movies)
    mean = 3.5
    # Skewed activity and popularity, as in MovieLens: a few users and movies have most ratings.
    pu = rng.pareto(1.5, n_users) + 1
    pm = rng.pareto(1.2, n_movies) + 1
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < n_ratings:
        k = 2 * (n_ratings - len(codes)) + 16
        draw = rng.choice(n_users, k, p=pu / pu.sum()) * n_movies + rng.choice(n_movies, k, p=pm / pm.sum())
        codes = np.concatenate([codes, draw])
        _, first = np.unique(codes, return_index=True)
        codes = codes[np.sort(first)]  # drop repeated pairs, keep order of drawing
    codes = codes[:n_ratings]
    u, m = codes // n_movies, codes % n_movies
    clean = mean + user_b[u] + movie_b[m] + (user_f[u] * movie_f[m]).sum(1) * 1.5
    y = np.clip(np.round((clean + rng.normal(0, noise, len(u))) * 2) / 2, MIN_RATING, MAX_RATING)
    user_ids = 1 + 3 * np.arange(n_users)  # deliberately not 0..n-1
    movie_ids = 10 + 7 * np.arange(n_movies)
    ratings = pd.DataFrame(
        {
            "userId": user_ids[u],
            "movieId": movie_ids[m],
            "rating": y.astype(np.float32),
            "timestamp": 1_500_000_000 + rng.integers(0, 10**7, len(u)),
        }
    )
    movies_df = pd.DataFrame({"movieId": movie_ids, "title": [f"Synthetic movie {i} (2000)" for i in movie_ids],
                              "genres": "(no genres listed)"})
    truth = {"user_factors": user_f, "movie_factors": movie_f, "user_bias": user_b, "movie_bias": movie_b,
             "mean": mean, "noise": noise, "user_ids": user_ids, "movie_ids": movie_ids}
    return build(ratings, movies_df, valid_pct=valid_pct, seed=42, source="synthetic", truth=truth)


def summary(data: Ratings) -> str:
    """A short text summary: counts, sparsity and a histogram of ratings (`lesson5 data`)."""
    r = data.ratings
    lines = [
        f"source:  {data.source}",
        f"ratings: {len(r):,}",
        f"users:   {data.n_users:,}",
        f"movies:  {data.n_movies:,} rated ({len(data.movies):,} with titles)",
        f"density: {len(r) / (data.n_users * data.n_movies):.2%} of the user x movie matrix",
        f"split:   {len(data.train_idx):,} train / {len(data.valid_idx):,} valid (seed 42)",
        f"mean rating: {r.rating.mean():.3f}",
        "rating histogram:",
    ]
    counts = r.rating.value_counts().sort_index()
    width = 40 / counts.max()
    for value, count in counts.items():
        lines.append(f"  {value:3.1f} {count:7,d} {'#' * max(1, round(count * width))}")
    return "\n".join(lines)
