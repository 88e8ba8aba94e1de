"""Reading MovieLens's files, from a zip, a folder or a bare ratings file, with validation.

Every release's layout reads (.csv, `::`-separated .dat, ml-100k's u.*, each also gzip'd). A bad
file raises one DataError naming file, line, column and value. UTF-8 only (Latin-1 also for .dat
and u.*); ratings in [0.5, 5]; ids fit int64; no member over MAX_MEMBER_BYTES or a zip bomb.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import os
import re
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from lesson5.download import DataError, fetch

MIN_RATING, MAX_RATING = 0.5, 5.0
# The names each release gives its files, newest first; any of them may also be gzip'd (.gz).
FILES = {
    "ratings": ("ratings.csv", "ratings.dat", "u.data"),
    "movies": ("movies.csv", "movies.dat", "u.item"),
}
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
# Column names of the files without a header line (u.item: id|title|dates|URL|19 genre flags).
HEADERLESS = {
    "ratings": ("userId", "movieId", "rating", "timestamp"),
    "movies": ("movieId", "title", "genres"),
    "u.item": ("movieId", "title", "release date", "video release date", "IMDb URL") + GENRES_100K,
}
# A member is unpacked whole in memory (ml-32m's ratings.csv, the largest, is 0.88 GB); CSV
# shrinks 2-10 times in a zip, bombs 1000s.
MAX_MEMBER_BYTES = 2**30
MAX_RATIO = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TRAILING = "; is there a trailing comma, or a value the header has no column name for?"


def file_names(kind: str) -> list[str]:
    """The names of a `kind` ("ratings"/"movies") file in MovieLens releases, .gz too: notebook 00."""
    return [n for base in FILES[kind] for n in (base, f"{base}.gz")]


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _check_size(label: str, size: int, packed: int) -> None:
    if size > 2**26 and size > MAX_RATIO * max(packed, 1):
        raise DataError(
            f"{label} would unpack {_size(packed)} into {_size(size)} ({size // max(packed, 1):,} "
            f"times; MovieLens files shrink 2-10 times): it looks like a zip bomb, so it was not "
            f"read; if it is real, unpack it and pass its folder"
        )
    if size > MAX_MEMBER_BYTES:
        raise DataError(
            f"{label} would unpack to {_size(size)}, more than the {_size(MAX_MEMBER_BYTES)} "
            f"read.MAX_MEMBER_BYTES allows (the largest MovieLens file, ml-32m's ratings.csv, is "
            f"0.88 GB): if it is real, unpack it and pass its folder"
        )


def _bytes(label: str, zip_path: Path | None, name: str) -> bytes:
    """The bytes of a file (`name` a path) or of a zip member, gunzipped, size-checked first."""
    try:
        if zip_path is None:
            if Path(name).is_dir():
                raise DataError(f"{name} is a folder, not a file: expected a CSV file there")
            raw = Path(name).read_bytes()
        else:
            with zipfile.ZipFile(zip_path) as zf:  # zipfile never inflates past the declared size
                info = zf.getinfo(name)
                _check_size(label, info.file_size, info.compress_size)
                raw = zf.read(name)
        if raw.startswith(b"\x1f\x8b"):  # the gzip trailer declares the size (mod 2**32)
            _check_size(label, int.from_bytes(raw[-4:], "little"), len(raw))
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                out = f.read(MAX_MEMBER_BYTES + 1)
            _check_size(label, len(out), len(raw))
            raw = out
    except RuntimeError as e:  # zipfile: "File ... is encrypted, password required"
        raise DataError(
            f"{zip_path} is password-protected: {name} cannot be read without it; unzip it "
            f"yourself and pass the folder instead"
        ) from e
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, gzip.BadGzipFile) as e:
        what = f"{name} cannot be extracted" if zip_path else "it cannot be gunzipped"
        raise DataError(f"{zip_path or name} is damaged: {what} ({e}); download it again") from e
    except OSError as e:
        why = f"{e.strerror or e}; check its permissions and try again"
        raise DataError(f"cannot read {zip_path or name}: {why}") from e
    return raw


def _is_zip(path: Path) -> bool:
    if path.suffix.lower() == ".zip":
        return True
    with contextlib.suppress(OSError), open(path, "rb") as f:  # a zip without its extension
        return f.read(4) in ZIP_MAGIC
    return False


def _others(kind: str) -> str:
    return f"(nor {' or '.join(FILES[kind][1:])}, as older MovieLens releases name it, nor a .gz)"


def _one(source: Path, kind: str, found: list[str]) -> str:
    if not found:
        raise DataError(
            f"{source} holds no {FILES[kind][0]} {_others(kind)}: point the source at a "
            f"MovieLens zip or folder"
        )
    if len(found) > 1:
        names = {f.rsplit("/", 1)[-1] for f in found}
        raise DataError(
            f"{source} holds {len(found)} {names.pop() if len(names) == 1 else kind} files "
            f"({', '.join(found)}): two data sets in one place; point the source at the folder of the one you mean"
        )
    return found[0]


def _locate(source: Path, kind: str, beside: str | None = None) -> tuple | None:
    """(label, zip or None, path or member) of the `kind` file at `source`, or beside `beside`."""
    names, zipped, members = file_names(kind), _is_zip(source), []
    if zipped:
        try:
            with zipfile.ZipFile(source) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
        except zipfile.BadZipFile as e:
            raise DataError(f"{source} is not a valid zip file: {e}") from e
        except OSError as e:
            raise DataError(f"cannot read {source}: {e.strerror or e}") from e
    if beside is not None:  # the first name found in the ratings' own folder
        head, slash, _ = beside.rpartition("/")
        there = members.__contains__ if zipped else os.path.exists
        hit = next((p for n in names if there(p := head + slash + n)), None)
        if hit is None:
            return None
    elif zipped:
        hit = _one(source, kind, sorted(m for m in members if m.rpartition("/")[2] in names))
    elif source.is_dir():
        found = [n for n in names if (source / n).exists()] or sorted(
            p.relative_to(source).as_posix() for n in names for p in source.glob(f"*/{n}")
        )
        hit = str(source / _one(source, kind, found))
    elif kind == "ratings" or source.name in names:  # a bare file is the ratings (or what it names)
        hit = str(source)
    elif (found := _locate(source, kind, beside=str(source))) is None:
        raise DataError(f"no {FILES[kind][0]} beside {source} {_others(kind)}")
    else:
        return found
    return (f"{source}!{hit}", source, hit) if zipped else (hit, None, hit)


def _resolve(source: str | os.PathLike | None) -> Path:
    if source is None:
        return fetch()
    if not str(source).strip():
        raise DataError("the source is an empty source path: give a zip, a folder or a ratings.csv")
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist (expected a zip, a folder or a ratings.csv)")
    return path


def _not_utf8(label: str, raw: bytes) -> str:
    """Where the first byte that is not UTF-8 is: its line, column and value."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        at = e.start
    start, end = raw.rfind(b"\n", 0, at) + 1, raw.find(b"\n", at) % (len(raw) + 1)
    text = raw[start:end].decode("utf-8", "surrogateescape").rstrip("\r")
    where, value = "", text
    header = next(csv.reader([raw[: raw.find(b"\n")].decode("utf-8", "replace").lstrip("\ufeff")]))
    for column, field in zip(header, next(csv.reader([text]), [])):
        if any("\udc80" <= ch <= "\udcff" for ch in field):  # the undecodable byte's field
            where, value = f", column {column.strip()!r}", field
            break
    shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    line = raw.count(b"\n", 0, at) + 1
    return (
        f"{label}, line {line}{where}: byte 0x{raw[at]:02x} is not UTF-8 (the "
        f"value reads {shown!r}); the file looks like Latin-1/Windows-1252 text: save it as UTF-8"
    )


def _refuse_non_text(label: str, raw: bytes) -> None:
    if not raw.lstrip(codecs.BOM_UTF8).strip():
        raise DataError(f"{label} is empty")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f'{label} is UTF-16 text (what Excel\'s "Unicode Text" writes): save it as '
            f"'CSV UTF-8 (Comma delimited)' and try again"
        )
    if raw.startswith(ZIP_MAGIC):
        raise DataError(f"{label} is a zip archive, not a CSV: pass the archive as the source")
    if (nul := raw.find(b"\x00")) >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{label}, line {line}: holds binary data (a NUL byte), "
            f"so it is not a CSV text file (or it is UTF-16 text: save it as 'CSV UTF-8')"
        )


class _Table:
    """A file as pandas read it, and its text again for the rows a message names."""

    def __init__(self, label: str, raw: bytes, kind: str, required: tuple[str, ...]) -> None:
        _refuse_non_text(label, raw)
        name = label.replace("!", "/").rsplit("/", 1)[-1].removesuffix(".gz")
        first = raw[: raw.find(b"\n") % (len(raw) + 1)].removeprefix(codecs.BOM_UTF8).rstrip(b"\r")
        guess = next((s for s in (b",", b"::", b"\t") if s in first), b",")
        sep = {"u.item": b"|", "u.data": b"\t"}.get(name, b"::" if name.endswith(".dat") else guess)
        self.named = sep == b"," or not first.split(sep)[0].strip().isdigit()
        if sep == b"::":  # one byte for the C parser; ':' is never inside a UTF-8 character
            raw, first, sep = raw.replace(b"::", b"\x1f"), first.replace(b"::", b"\x1f"), b"\x1f"
        self.label, self.raw, self.sep = label, raw, sep.decode()
        self.quoting = csv.QUOTE_MINIMAL if sep == b"," else csv.QUOTE_NONE  # quotes are text
        h = self.header = list(HEADERLESS["u.item" if sep == b"|" else kind])
        if self.named:
            line = first.decode("utf-8", "replace")
            h = self.header = next(csv.reader([line], delimiter=self.sep, quoting=self.quoting))
        if (twice := next((c for i, c in enumerate(h) if c in h[:i]), None)) is not None:
            raise DataError(f"{label}, line 1: column {twice!r} appears twice in the header")
        if missing := [c for c in required if c not in h]:
            fix = ""
            if all(c.strip().replace(".", "", 1).isdigit() for c in h):
                fix = f" (a row of numbers: the file has no header line; add {','.join(HEADERLESS[kind])} as its first line)"  # noqa: E501
            raise DataError(f"{label}: missing required column(s) {missing}; found {h}{fix}")
        # pandas' C parser, types inferred: a bad value leaves its column text, not a stop.
        texts = {c: str for c in h if c not in (*HEADERLESS["ratings"], *GENRES_100K)}
        latin1 = name.endswith(".dat") or name.startswith("u.")
        for self.encoding in ("utf-8", "latin-1") if latin1 else ("utf-8",):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)  # all rows too long
                    warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # validated below
                    self.df = pd.read_csv(
                        io.BytesIO(raw), sep=self.sep, header=0 if self.named else None, names=h,
                        index_col=False, dtype=texts, encoding=self.encoding, engine="c",
                        keep_default_na=False, na_values=dict.fromkeys(h, [""]), quoting=self.quoting,
                    )  # fmt: skip
                break
            except UnicodeDecodeError:
                if not latin1:
                    raise DataError(_not_utf8(label, raw)) from None
            except (pd.errors.ParserError, pd.errors.ParserWarning) as e:
                self.fail(lambda row: None)  # names the row that is too long
                raise DataError(f"{label}: cannot be read as CSV ({e})") from None
        if self.df.empty:
            raise DataError(f"{label} has a header but no rows")

    def rows(self, wanted: np.ndarray | None = None):
        """(line, fields) of the data rows in `wanted` (all if None), blank lines skipped as pandas."""
        text = io.TextIOWrapper(io.BytesIO(self.raw), self.encoding, newline="")
        reader = csv.reader(text, delimiter=self.sep, quoting=self.quoting, strict=True)
        last = np.inf if wanted is None else wanted[-1]
        wanted, start, k = None if wanted is None else set(wanted.tolist()), 1, -int(self.named)
        try:
            for fields in reader:
                if k > last:
                    return
                if fields and (len(fields) > 1 or fields[0].strip()):
                    if k >= 0 and (wanted is None or k in wanted):
                        yield start, fields
                    k += 1
                start = reader.line_num + 1
        except csv.Error:
            raise DataError(
                f"{self.label}, line {start}: a quote opened here is never closed (it runs to "
                f"line {reader.line_num}); close it, or quote the whole field"
            ) from None

    def fail(self, judge, wanted: np.ndarray | None = None) -> None:
        """Raise for the first row in `wanted` whose field count is wrong or that `judge` faults."""
        n, header = len(self.header), self.header
        for line, fields in self.rows(wanted):
            if len(fields) > n:
                more = fields[n:]
                what = f"extra value {more[0]!r}" if len(more) == 1 else f"extra values {more!r}"
                hint = _TRAILING if self.sep == "," else f"; the file reads as {', '.join(header)}"
            elif len(fields) < n:
                less = header[len(fields) :]
                what = f"no value for {less[0]!r}" if len(less) == 1 else f"no values for {less!r}"
                hint = ""
            elif why := judge(dict(zip(header, fields))):
                raise DataError(f"{self.label}, line {line}, {why}")
            else:
                continue
            has = "the header has" if self.named else "this file's rows have"
            count = f"{len(fields)} fields but {has} {n}"
            raise DataError(f"{self.label}, line {line}: {count} ({what}){hint}")


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


def _integer(value: str, beside_decimals: bool = False) -> str | None:
    """Why a field holds no int64 (None when it holds one)."""
    if not value.strip():
        return "is missing"
    if _INTEGER.fullmatch(value):
        number = int(value)
    else:
        f = float(pd.to_numeric(value, errors="coerce"))  # NaN where pandas reads no number
        if not np.isfinite(f) or f != round(f):
            return "is not an integer"
        number = int(f)
        if abs(f) > 2**53 and INT64_MIN <= number <= INT64_MAX:
            return "is not an integer (too large to be exact when written as a decimal number)"
    if not INT64_MIN <= number <= INT64_MAX:
        return f"does not fit in a 64-bit integer (from {INT64_MIN} to {INT64_MAX})"
    if beside_decimals and abs(number) >= 2**53:  # pandas read the column as float64
        return "is too large to be exact in a column whose other ids are written as decimals (like 1.0)"
    return None


def _rating(value: str) -> str | None:
    if not value.strip():
        return "is missing"
    r = pd.to_numeric(value, errors="coerce")  # NaN where pandas reads no number
    if not np.isfinite(r):
        return "is not a number"
    return None if MIN_RATING <= r <= MAX_RATING else f"is outside [{MIN_RATING}, {MAX_RATING}]"


def _validate(t: _Table, ints: tuple[str, ...], ratings: tuple[str, ...] = ()) -> None:
    """One vectorised pass over every row; Python judges only the rows it marks, from their text."""
    df = t.df
    bad = np.zeros(len(df), bool)
    for c in df.columns:
        if df[c].dtype.kind not in "iu":  # a short row leaves NaN, in int columns too
            bad |= df[c].isna().to_numpy()
    for c in ints:  # rows that may not hold an int64
        v = df[c].to_numpy()
        if df[c].dtype == np.uint64:
            bad |= v > INT64_MAX
        elif df[c].dtype == np.float64:  # written as 1.0, 1e3, or missing somewhere
            bad |= ~(np.abs(v) < 2**53) | (v != np.round(v))
        elif df[c].dtype != np.int64:
            bad |= ~df[c].astype(str).str.fullmatch(r"\s*[+-]?\d{1,18}\s*").to_numpy(bool)
    for c in ratings:
        r = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
        bad |= ~((r >= MIN_RATING) & (r <= MAX_RATING))

    def judge(row: dict[str, str]) -> str | None:
        for c in (*ints, *ratings):
            why = _rating(row[c]) if c in ratings else _integer(row[c], df[c].dtype == np.float64)
            if why:
                return f"column {c!r}: value {row[c]!r} {why}"
        return None

    if bad.any():
        t.fail(judge, np.flatnonzero(bad))
        if any(df[c].dtype.kind not in "iuf" for c in (*ints, *ratings)):  # never seen
            raise DataError(f"{t.label}: its numbers cannot be read ({', '.join(ints + ratings)})")


def _ratings(label: str, raw: bytes) -> pd.DataFrame:
    t = _Table(label, raw, "ratings", ("userId", "movieId", "rating"))
    ints = tuple(c for c in ("userId", "movieId", "timestamp") if c in t.header)
    _validate(t, ints, ("rating",))
    out = pd.DataFrame({c: np.asarray(t.df[c], np.int64) for c in ints}, copy=False)
    out.insert(2, "rating", np.asarray(t.df["rating"], np.float32))
    u, m = out.userId.to_numpy(), out.movieId.to_numpy()
    # MovieLens is sorted by user, then movie: pairs that rise strictly repeat none (0.1 s, not 2).
    if not ((u[1:] > u[:-1]) | ((u[1:] == u[:-1]) & (m[1:] > m[:-1]))).all():
        dup = out.duplicated(["userId", "movieId"]).to_numpy()
        if dup.any():
            pos = int(dup.argmax())
            first = int(((u == u[pos]) & (m == m[pos])).argmax())
            (seen, _), (line, _) = t.rows(np.array([first, pos]))
            raise DataError(
                f"{label}, line {line}, columns ('userId', 'movieId'): duplicate pair "
                f"({u[pos]}, {m[pos]}), first seen on line {seen}"
            )
    return out


def _movies(label: str, raw: bytes) -> pd.DataFrame:
    t = _Table(label, raw, "movies", ("movieId", "title"))
    _validate(t, ("movieId",))
    out = pd.DataFrame({"movieId": np.asarray(t.df.movieId, np.int64)})
    out["title"] = t.df.title.fillna("")
    if "genres" in t.df.columns:
        out["genres"] = t.df.genres.fillna("")
    elif all(g in t.df.columns for g in GENRES_100K):  # ml-100k: a 0/1 column per genre
        flags = t.df[list(GENRES_100K)].to_numpy() == 1
        out["genres"] = ["|".join(g for g, on in zip(GENRES_100K, row) if on) for row in flags]
    dup = out.movieId.duplicated().to_numpy()
    if dup.any():
        line, fields = next(t.rows(np.array([dup.argmax()])))
        why = f"value {fields[t.header.index('movieId')]!r} is a duplicate movie id"
        raise DataError(f"{label}, line {line}, column 'movieId': {why}")
    return out


def _load(path: Path, kind: str, beside: str | None = None) -> pd.DataFrame:
    label, zip_path, name = _locate(path, kind, beside)
    return (_ratings if kind == "ratings" else _movies)(label, _bytes(label, zip_path, name))


def load_ratings(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated ratings (userId, movieId, rating[, timestamp]) from a zip/folder/file: notebook 00."""
    return _load(_resolve(source), "ratings")


def load_movies(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated movie titles (movieId, title, genres) from a zip, folder or file: notebook 00."""
    return _load(_resolve(source), "movies")


def movielens(source: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(ratings, movies, path read) from the fetched zip or a zip/folder/ratings.csv: notebook 00."""
    path = _resolve(source)
    label, _, name = found = _locate(path, "ratings")
    ratings = _ratings(label, _bytes(*found))
    if _locate(path, "movies", beside=name) is not None:  # titles from the ratings' own folder only
        return ratings, _load(path, "movies", beside=name), path
    if path.is_dir() or _is_zip(path):
        raise DataError(f"{path} holds no movies.csv beside {label} {_others('movies')}")
    movies = pd.DataFrame({"movieId": pd.unique(ratings.movieId)})  # a bare ratings.csv
    movies["title"] = [f"movie {m}" for m in movies.movieId]
    return ratings, movies, path
