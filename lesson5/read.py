"""Reading MovieLens's CSV files, from a zip, a folder or a bare ratings.csv, with validation.

Notebook 00.

Contract: a bad file raises DataError naming the file, the column, the row and the value, and
nothing is guessed: no encoding but UTF-8, no rating outside 0.5..5 in half stars, no missing
or duplicated column. Encoding ids and splitting are `data`'s job.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lesson5.download import DataError, fetch

MIN_RATING, MAX_RATING = 0.5, 5.0
RATING_COLUMNS = ("userId", "movieId", "rating")
MOVIE_COLUMNS = ("movieId", "title")


# ---------------------------------------------------------------- finding the files


def _is_zip(path: Path) -> bool:
    """A file that is a zip archive, by its name or by its first bytes (a zip saved without `.zip`)."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _read_file(path: Path) -> bytes:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file: expected a CSV file there")
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(
            f"cannot read {path}: {e.strerror or e}; check its permissions and try again"
        ) from e


@dataclass(frozen=True)
class _Member:
    """One CSV file: a path on disk, or a member of a zip archive."""

    label: str  # for messages: the path, or "archive!member"
    path: Path  # the file, or the zip archive
    member: str | None = None  # the name inside the zip

    def read(self) -> bytes:
        if self.member is None:
            return _read_file(self.path)
        import zlib

        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (
            RuntimeError
        ) as e:  # zipfile: "File ... is encrypted, password required for extraction"
            raise DataError(
                f"{self.path} is password-protected: {self.member} cannot be read without it; "
                f"unzip it yourself and pass the folder instead"
            ) from e
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            raise DataError(
                f"{self.path} is damaged: {self.member} cannot be extracted ({e}); download it again"
            ) from e
        except OSError as e:
            raise DataError(f"cannot read {self.path}: {e.strerror or e}") from e

    def sibling(self, name: str) -> _Member | None:
        """The file `name` in the same folder (on disk or in the zip), or None."""
        if self.member is None:
            path = self.path.with_name(name)
            return _Member(str(path), path) if path.exists() else None
        prefix = self.member.rpartition("/")[0]
        member = f"{prefix}/{name}" if prefix else name
        return (
            _Member(f"{self.path}!{member}", self.path, member)
            if member in _zip_names(self.path)
            else None
        )


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except zipfile.BadZipFile as e:
        raise DataError(f"{path} is not a valid zip file: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e


def _one(source: Path, name: str, found: list[str]) -> str:
    if not found:
        raise DataError(f"{source} holds no {name}")
    if len(found) > 1:
        raise DataError(
            f"{source} holds {len(found)} {name} files ({', '.join(found)}): two data sets in one place; "
            f"point the source at the folder of the one you mean"
        )
    return found[0]


def _locate(source: Path, name: str) -> _Member:
    """Where `name` (ratings.csv or movies.csv) is at `source`: a folder, a zip, or a csv beside it."""
    if source.is_dir():
        top = source / name
        if top.exists():
            return _Member(str(top), top)
        nested = sorted(p.relative_to(source).as_posix() for p in source.glob(f"*/{name}"))
        found = source / _one(source, name, nested)
        return _Member(str(found), found)
    if _is_zip(source):
        members = [
            m for m in _zip_names(source) if m.rsplit("/", 1)[-1] == name and not m.endswith("/")
        ]
        member = _one(source, name, sorted(members))
        return _Member(f"{source}!{member}", source, member)
    if source.name == name or name == "ratings.csv":
        return _Member(str(source), source)
    sibling = source.with_name(name)
    if not sibling.exists():
        raise DataError(f"no {name} beside {source}")
    return _Member(str(sibling), sibling)


def _resolve(source: str | os.PathLike | None) -> Path:
    if source is None:
        return fetch()
    if not str(source).strip():
        raise DataError("the source is an empty source path: give a zip, a folder or a ratings.csv")
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist (expected a zip, a folder or a ratings.csv)")
    return path


# ---------------------------------------------------------------- reading and validating


def _decode(label: str, raw: bytes) -> str:
    """The text of a CSV file, or a DataError saying why these bytes are not UTF-8 CSV text."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f"{label} is UTF-16 text (what Excel's \"Unicode Text\" writes): save it as 'CSV UTF-8 "
            f"(Comma delimited)' and try again"
        )
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise DataError(
            f"{label} is a zip archive, not a CSV: pass the archive itself as the source"
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{label}, line {line}: holds binary data (a NUL byte), so it is not a CSV "
            f"text file (or it is UTF-16 text: save it as 'CSV UTF-8')"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(_not_utf8(label, raw, e.start)) from None


def _not_utf8(label: str, raw: bytes, at: int) -> str:
    line = raw.count(b"\n", 0, at) + 1
    start = raw.rfind(b"\n", 0, at) + 1
    end = raw.find(b"\n", at)
    text = (
        raw[start : end if end >= 0 else len(raw)].decode("utf-8", "surrogateescape").rstrip("\r")
    )
    where, value = "", text
    try:  # which field holds the byte: name its column and show its value
        header = next(
            csv.reader([raw[: raw.find(b"\n")].decode("utf-8", "replace").lstrip("\ufeff")])
        )
        fields = next(csv.reader([text]))
        for column, field_ in zip(header, fields):
            if any("\udc80" <= ch <= "\udcff" for ch in field_):
                where, value = f", column {column.strip()!r}", field_
                break
    except (csv.Error, StopIteration):
        pass
    shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return (
        f"{label}, line {line}{where}: byte 0x{raw[at]:02x} is not UTF-8 (the value reads {shown!r}); "
        f"the file looks like Latin-1/Windows-1252 text: save it as UTF-8 and try again"
    )


def _records(label: str, text: str) -> tuple[list[list[str]] | None, Sequence[int], Sequence[int]]:
    """(rows or None, line of each record's start, field count of each record), blank lines skipped.

    Files without quotes (ratings) are split by hand, fast; others go through the csv module,
    which also finds a quote that is never closed.
    """
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        # Vectorised over the bytes: ',' and '\n' never occur inside a UTF-8 multi-byte character.
        b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        ends = np.append(np.flatnonzero(b == 10), len(b))
        starts = np.concatenate(([0], ends[:-1] + 1))
        width = (
            ends - starts - (b[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
        )  # less a '\r' before '\n'
        commas = np.flatnonzero(b == 44)
        counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        keep = np.flatnonzero(width > 0)  # blank lines are skipped, as pandas skips them
        return None, keep + 1, counts[keep]  # arrays: a Python int per row would cost 36 bytes
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, lines, start = [], [], 1
    try:
        for row in reader:
            if row:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as e:
        if "end of data" in str(e) or reader.line_num > start and text.count('"') % 2:
            raise DataError(
                f"{label}, line {start}: a quote opened here is never closed (it runs to line {reader.line_num}); "
                f"close it, or quote the whole field"
            ) from None
        raise DataError(f"{label}, line {reader.line_num}: {e}") from None
    return rows, lines, [len(r) for r in rows]


@dataclass
class _Table:
    """A parsed CSV: text columns under the header's names, and each row's line in the file."""

    label: str
    df: pd.DataFrame
    lines: np.ndarray  # editor line of each data row (the header is line lines[0] - ...)

    def where(self, pos: int, column: str) -> str:
        return f"{self.label}, line {self.lines[pos]}, column {column!r}: value {self.df[column].iloc[pos]!r}"


def _c_parse(text: str, header: list[str], dtype) -> pd.DataFrame:
    """pandas' C parser on a file without quotes, every field kept as written (no NA guessing)."""
    return pd.read_csv(
        io.StringIO(text),
        dtype=dtype,
        keep_default_na=False,
        na_filter=False,
        header=0,
        names=header,
        skip_blank_lines=True,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )


class _NotTyped(ValueError):
    """The typed fast read met a value it does not take; the text read will name it."""


def _read_csv(
    label: str, raw: bytes, required: Iterable[str], typed: dict[str, type] | None = None
) -> _Table:
    if not raw.strip() or not raw.lstrip(codecs.BOM_UTF8).strip():
        raise DataError(f"{label} is empty")
    text = _decode(label, raw)
    if not text.strip():
        raise DataError(f"{label} is empty")
    rows, lines, counts = _records(label, text)
    if rows is None:
        # Split out one line when a message needs it: a list of every line would cost ~60 bytes each.
        fields_at = lambda k: (  # noqa: E731 (no quotes here)
            text.split("\n", int(lines[k]))[int(lines[k]) - 1].rstrip("\r").split(",")
        )
    else:
        fields_at = rows.__getitem__
    header = fields_at(0)
    for i, column in enumerate(header):
        if column in header[:i]:
            raise DataError(
                f"{label}, line {lines[0]}: column {column!r} appears twice in the header; rename one"
            )
    n = len(header)
    bad = np.flatnonzero(np.asarray(counts) != n)
    if len(bad):
        k = int(bad[0])
        fields = fields_at(k)
        if len(fields) > n:
            detail = (
                f"extra value {fields[n]!r}"
                if len(fields) == n + 1
                else f"extra values {fields[n:]!r}"
            )
            hint = "; is there a trailing comma, or a value the header has no column name for?"
        else:
            detail = (
                f"no value for {header[len(fields)]!r}"
                if len(fields) == n - 1
                else f"no values for {header[len(fields) :]!r}"
            )
            hint = ""
        raise DataError(
            f"{label}, line {lines[k]}: {len(fields)} fields but the header has {n} ({detail}){hint}"
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{label}: missing required column(s) {missing}; found {header}")
    if len(lines) == 1:
        raise DataError(f"{label} has a header but no rows")
    if typed is not None:
        # Only plain decimal numbers take the fast road: no exponent, inf or nan anywhere below
        # the header, where the C parser and Python's int()/float() could read a field differently.
        body = text.find("\n") + 1  # where the rows start (searched in place, not copied)
        if rows is not None or any(text.find(c, body) >= 0 for c in "eEiInN"):
            raise _NotTyped("quoted fields, or numbers the text read must judge")
        del counts  # only the typed columns stay, not a string per field
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. a float cast to an integer column
                df = _c_parse(text, header, {c: typed.get(c, object) for c in header})
        except (ValueError, OverflowError, TypeError, RuntimeWarning) as e:
            raise _NotTyped(str(e)) from None
        for c in header:
            # Beyond 2**53 a value may have passed through a float: the text read checks it exactly.
            if (
                typed.get(c) is np.int64
                and len(df)
                and not -(2**53) <= df[c].min() <= df[c].max() <= 2**53
            ):
                raise _NotTyped(f"{c} holds integers beyond 2**53")
    elif rows is None:  # every line checked: the C parser reads the same records, fast
        df = _c_parse(text, header, object)
    else:
        df = pd.DataFrame(rows[1:], columns=header, dtype=object)
    if len(df) != len(lines) - 1:  # never seen; a guard against the two readers disagreeing
        raise DataError(
            f"{label}: could not read it as CSV ({len(df)} rows parsed, {len(lines) - 1} expected)"
        )
    return _Table(label, df, np.asarray(lines[1:]))


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _integer(value: str) -> int | str:
    """The integer a field holds, or why it holds none."""
    try:
        number = int(value)
    except ValueError:
        try:
            f = float(value)
        except ValueError:
            return "is not an integer"
        if not math.isfinite(f) or f != round(f):
            return "is not an integer"
        number = int(f)
        if abs(f) > 2**53 and INT64_MIN <= number <= INT64_MAX:
            return "is not an integer (too large to be exact when written as a decimal number)"
    if not INT64_MIN <= number <= INT64_MAX:
        return f"does not fit in a 64-bit integer (from {INT64_MIN} to {INT64_MAX})"
    return number


def _numeric(t: _Table, column: str, integer: bool) -> np.ndarray:
    if t.df[column].dtype != object:  # read typed: only a non-finite float is left to refuse
        values = t.df[column].to_numpy()
        if not integer and not np.isfinite(values).all():
            raise _NotTyped(f"{column} holds a value that is not a finite number")
        return values
    raw = t.df[column].to_numpy(dtype=object)
    try:  # the common case, at C speed: numpy calls Python's int()/float() (exact, no float64 detour for ints)
        values = raw.astype(np.int64 if integer else np.float64)
        if integer or np.isfinite(values).all():
            return values
    except (ValueError, OverflowError, TypeError):
        pass
    out = np.empty(len(raw), dtype=np.int64 if integer else np.float64)
    for pos, value in enumerate(raw):
        if not value.strip():
            raise DataError(f"{t.where(pos, column)} is missing")
        if integer:
            got = _integer(value)
            if isinstance(got, str):
                raise DataError(f"{t.where(pos, column)} {got}")
        else:
            try:
                got = float(value)
            except ValueError:
                got = math.nan
            if not math.isfinite(got):
                raise DataError(f"{t.where(pos, column)} is not a number")
        out[pos] = got
    return out


def _validate_ratings(t: _Table) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "userId": _numeric(t, "userId", integer=True),
            "movieId": _numeric(t, "movieId", integer=True),
            "rating": _numeric(t, "rating", integer=False).astype(np.float32),
        }
    )
    if "timestamp" in t.df.columns:
        out["timestamp"] = _numeric(t, "timestamp", integer=True)
    r = out["rating"].to_numpy()
    bad = (r < MIN_RATING) | (r > MAX_RATING)
    if bad.any():
        raise DataError(
            f"{t.where(int(bad.argmax()), 'rating')} is outside [{MIN_RATING}, {MAX_RATING}]"
        )
    dup = out.duplicated(["userId", "movieId"]).to_numpy()
    if dup.any():
        pos = int(dup.argmax())
        u, m = out.userId.iloc[pos], out.movieId.iloc[pos]
        first = int(((out.userId == u) & (out.movieId == m)).to_numpy().argmax())
        raise DataError(
            f"{t.label}, line {t.lines[pos]}, columns ('userId', 'movieId'): duplicate pair ({u}, {m}), "
            f"first seen on line {t.lines[first]}"
        )
    return out


RATING_TYPES = {
    "userId": np.int64,
    "movieId": np.int64,
    "rating": np.float64,
    "timestamp": np.int64,
}


def _ratings_at(member: _Member) -> pd.DataFrame:
    raw = member.read()
    try:  # typed columns straight from the C parser: a few bytes a rating instead of ~470
        return _validate_ratings(_read_csv(member.label, raw, RATING_COLUMNS, typed=RATING_TYPES))
    except (DataError, _NotTyped):
        pass  # read it again as text, which names the file, line, column and value at fault
    return _validate_ratings(_read_csv(member.label, raw, RATING_COLUMNS))


def _movies_at(member: _Member) -> pd.DataFrame:
    t = _read_csv(member.label, member.read(), MOVIE_COLUMNS)
    out = pd.DataFrame(
        {"movieId": _numeric(t, "movieId", integer=True), "title": t.df["title"].astype(str)}
    )
    if "genres" in t.df.columns:
        out["genres"] = t.df["genres"].astype(str)
    dup = out.movieId.duplicated().to_numpy()
    if dup.any():
        raise DataError(f"{t.where(int(dup.argmax()), 'movieId')} is a duplicate movie id")
    return out


def load_ratings(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated ratings (userId, movieId, rating[, timestamp]) from a zip, folder or csv.

    Notebook 00.
    """
    return _ratings_at(_locate(_resolve(source), "ratings.csv"))


def load_movies(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated movie titles (movieId, title, genres) from a zip, folder or csv.

    Notebook 00.
    """
    return _movies_at(_locate(_resolve(source), "movies.csv"))


def movielens(source: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(ratings, movies, path read) from the fetched zip, or from a zip, folder or ratings.csv.

    Notebook 00.
    """
    path = _resolve(source)
    where = _locate(path, "ratings.csv")
    ratings = _ratings_at(where)
    # Titles come from the ratings' own folder, never from another data set's.
    beside = where.sibling("movies.csv")
    if beside is not None:
        movies = _movies_at(beside)
    elif not path.is_dir() and not _is_zip(path):  # a bare ratings.csv: titles are optional
        movies = pd.DataFrame({"movieId": pd.unique(ratings.movieId), "title": ""})
        movies["title"] = [f"movie {m}" for m in movies.movieId]
    else:
        raise DataError(f"{path} holds no movies.csv beside {where.label}")
    return ratings, movies, path
