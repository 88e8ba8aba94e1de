"""Reading MovieLens's files, from a zip, a folder or a bare ratings file, with validation.

Notebook 00.

Every release's layout is read: ratings.csv/movies.csv (ml-latest, ml-20m and later),
ratings.dat/movies.dat with `::` between fields (ml-1m, ml-10m), u.data/u.item (ml-100k: tabs
and `|`, no header), each also gzip'd. Contract: a bad file raises DataError naming the file, the
column, the row and the value, and nothing is guessed: no encoding but UTF-8 (Latin-1 only for
the .dat and u.* files, which GroupLens wrote in it), no rating outside 0.5..5 in half stars, no
missing or duplicated column, no zip member bigger than MAX_MEMBER_BYTES. Encoding ids and
splitting are `data`'s job.
"""

from __future__ import annotations

import codecs
import csv
import gzip
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

# The names each release gives its files, newest first; any of them may also be gzip'd (.gz).
FILES = {
    "ratings": ("ratings.csv", "ratings.dat", "u.data"),
    "movies": ("movies.csv", "movies.dat", "u.item"),
}
# ml-100k's u.item: id|title|release date|video release date|IMDb URL|one 0/1 flag per genre.
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
# Column names of the files without a header line, by (kind, separator).
HEADERLESS = {
    ("ratings", "::"): ("userId", "movieId", "rating", "timestamp"),
    ("ratings", "\t"): ("userId", "movieId", "rating", "timestamp"),
    ("movies", "::"): ("movieId", "title", "genres"),
    ("movies", "|"): ("movieId", "title", "release date", "video release date", "IMDb URL")
    + GENRES_100K,
}
# A zip member or .gz is unpacked whole in memory: refuse one larger than this (ml-32m's
# ratings.csv, the largest MovieLens file, is 0.88 GB), or one that would grow more than
# MAX_RATIO times (CSV text shrinks 2-10 times; a zip bomb, thousands). Raise them if you must.
MAX_MEMBER_BYTES = 2**30
MAX_RATIO = 100


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
            return _gunzip(self.label, _read_file(self.path))
        import zlib

        try:
            with zipfile.ZipFile(self.path) as zf:
                info = zf.getinfo(self.member)
                # Declared sizes, checked before inflating; zipfile never inflates past file_size.
                _check_size(self.label, info.file_size, info.compress_size)
                raw = zf.read(self.member)
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
        return _gunzip(self.label, raw)

    def sibling(self, kind: str) -> _Member | None:
        """The `kind` file ("movies") in the same folder (on disk or in the zip), or None."""
        prefix = (self.member or "").rpartition("/")[0]
        names = _zip_names(self.path) if self.member is not None else []
        for name in file_names(kind):
            if self.member is None:
                path = self.path.with_name(name)
                if path.exists():
                    return _Member(str(path), path)
            elif (member := f"{prefix}/{name}" if prefix else name) in names:
                return _Member(f"{self.path}!{member}", self.path, member)
        return None


def file_names(kind: str) -> list[str]:
    """The names a `kind` file ("ratings" or "movies") has in the MovieLens releases, .gz included.

    Notebook 00.
    """
    return [n for base in FILES[kind] for n in (base, f"{base}.gz")]


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _check_size(label: str, size: int, packed: int) -> None:
    """Refuse a member that would unpack bigger than MAX_MEMBER_BYTES, or like a zip bomb."""
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


def _gunzip(label: str, raw: bytes) -> bytes:
    """The bytes of a gzip'd file unpacked (size-checked like a zip member), others as they are."""
    if not raw.startswith(b"\x1f\x8b"):
        return raw
    import zlib

    # The gzip trailer declares the size (modulo 2**32); the read is capped whatever it says.
    _check_size(label, int.from_bytes(raw[-4:], "little"), len(raw))
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(MAX_MEMBER_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{label} is damaged: it cannot be gunzipped ({e}); get it again") from e
    _check_size(label, len(out), len(raw))
    return out


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except zipfile.BadZipFile as e:
        raise DataError(f"{path} is not a valid zip file: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e


def _others(kind: str) -> str:
    """'(nor movies.dat or u.item, ...)': the other names a message says were looked for."""
    return f"(nor {' or '.join(FILES[kind][1:])}, as older MovieLens releases name it, nor a .gz)"


def _one(source: Path, kind: str, found: list[str]) -> str:
    if not found:
        raise DataError(
            f"{source} holds no {FILES[kind][0]} {_others(kind)}: point the source at a "
            f"MovieLens zip or folder"
        )
    if len(found) > 1:
        names = {f.rsplit("/", 1)[-1] for f in found}
        what = names.pop() if len(names) == 1 else kind
        raise DataError(
            f"{source} holds {len(found)} {what} files ({', '.join(found)}): two data sets in one place; "
            f"point the source at the folder of the one you mean"
        )
    return found[0]


def _locate(source: Path, kind: str) -> _Member:
    """Where the `kind` file ("ratings" or "movies") is at `source`: a folder, a zip, or beside a file."""
    names = file_names(kind)
    if source.is_dir():
        found = [n for n in names if (source / n).exists()] or sorted(
            p.relative_to(source).as_posix() for n in names for p in source.glob(f"*/{n}")
        )
        hit = source / _one(source, kind, found)
        return _Member(str(hit), hit)
    if _is_zip(source):
        members = [
            m for m in _zip_names(source) if m.rsplit("/", 1)[-1] in names and not m.endswith("/")
        ]
        member = _one(source, kind, sorted(members))
        return _Member(f"{source}!{member}", source, member)
    if kind == "ratings" or source.name in names:  # a bare file is the ratings (or what it names)
        return _Member(str(source), source)
    sibling = _Member(str(source), source).sibling(kind)
    if sibling is None:
        raise DataError(f"no {FILES[kind][0]} beside {source} {_others(kind)}")
    return sibling


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


def _decode(label: str, raw: bytes, latin1: bool = False) -> str:
    """The text of a CSV file, or a DataError saying why these bytes are not UTF-8 CSV text.

    With `latin1`, bytes that are not UTF-8 are read as Latin-1 (what ml-100k and ml-1m hold).
    """
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
        if latin1:
            return raw.decode("latin-1")
        raise DataError(_not_utf8(label, raw, e.start)) from None


def _dialect(label: str, text: str, kind: str) -> tuple[str, tuple[str, ...] | None]:
    """(separator, column names if the file has no header line), by the file's name and first line."""
    name = label.replace("!", "/").rsplit("/", 1)[-1].removesuffix(".gz")
    first = text[: text.find("\n")] if "\n" in text else text
    if name == "u.item":
        sep = "|"
    elif name.endswith(".dat") or ("::" in first and "," not in first):
        sep = "::"
    elif name == "u.data" or ("\t" in first and "," not in first):
        sep = "\t"
    else:
        return ",", None
    head = first.lstrip("\ufeff").split(sep)[0].strip()
    if not head.isdigit():  # a header line, as a user's own export may have
        return sep, None
    return sep, HEADERLESS.get((kind, sep), HEADERLESS[(kind, "::")])


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


def _records(
    label: str, text: str, sep: str = ",", quoted: bool = True
) -> tuple[list[list[str]] | None, Sequence[int], Sequence[int]]:
    """(rows or None, line of each record's start, field count of each record), blank lines skipped.

    Files without quotes (ratings, and every file but a CSV: their quotes are text) are split by
    hand, fast; others go through the csv module, which also finds a quote that is never closed.
    """
    if (not quoted or '"' not in text) and text.count("\r") == text.count("\r\n"):
        # Vectorised over the bytes: an ASCII separator or '\n' never occurs inside a UTF-8
        # multi-byte character.
        b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        ends = np.append(np.flatnonzero(b == 10), len(b))
        starts = np.concatenate(([0], ends[:-1] + 1))
        width = (
            ends - starts - (b[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
        )  # less a '\r' before '\n'
        commas = np.flatnonzero(b == ord(sep))
        counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        keep = np.flatnonzero(width > 0)  # blank lines are skipped, as pandas skips them
        return None, keep + 1, counts[keep]  # arrays: a Python int per row would cost 36 bytes
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=sep,
        strict=True,
        quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
    )
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


def _c_parse(
    text: str, header: list[str], dtype, sep: str = ",", named: bool = True
) -> pd.DataFrame:
    """pandas' C parser on a file without quotes, every field kept as written (no NA guessing)."""
    return pd.read_csv(
        io.StringIO(text),
        sep=sep,
        dtype=dtype,
        keep_default_na=False,
        na_filter=False,
        header=0 if named else None,
        names=header,
        skip_blank_lines=True,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )


class _NotTyped(ValueError):
    """The typed fast read met a value it does not take; the text read will name it."""


def _read_csv(
    label: str,
    raw: bytes,
    required: Iterable[str],
    typed: dict[str, type] | None = None,
    kind: str = "ratings",
) -> _Table:
    if not raw.strip() or not raw.lstrip(codecs.BOM_UTF8).strip():
        raise DataError(f"{label} is empty")
    name = label.replace("!", "/").rsplit("/", 1)[-1].removesuffix(".gz")
    text = _decode(label, raw, latin1=name.endswith(".dat") or name.startswith("u."))
    if not text.strip():
        raise DataError(f"{label} is empty")
    sep, names = _dialect(label, text, kind)
    if sep == "::":  # one character for the byte-wise split and the C parser; never in the text
        text, sep = text.replace("::", "\x1f"), "\x1f"
    rows, lines, counts = _records(label, text, sep, quoted=sep == ",")
    first = 0 if names else 1  # the first data record
    if rows is None:
        # Split out one line when a message needs it: a list of every line would cost ~60 bytes each.
        fields_at = lambda k: (  # noqa: E731 (no quotes here)
            text.split("\n", int(lines[k]))[int(lines[k]) - 1].rstrip("\r").split(sep)
        )
    else:
        fields_at = rows.__getitem__
    header = list(names) if names else fields_at(0)
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
            hint = (
                "; is there a trailing comma, or a value the header has no column name for?"
                if sep == ","
                else f"; the file reads as {', '.join(header)}"
            )
        else:
            detail = (
                f"no value for {header[len(fields)]!r}"
                if len(fields) == n - 1
                else f"no values for {header[len(fields) :]!r}"
            )
            hint = ""
        has = "the header has" if names is None else "this file's rows have"
        raise DataError(
            f"{label}, line {lines[k]}: {len(fields)} fields but {has} {n} ({detail}){hint}"
        )
    missing = [c for c in required if c not in header]
    if missing:
        numbers = all(c.strip().replace(".", "", 1).isdigit() for c in header)
        fix = (
            f" (a row of numbers: the file has no header line; add {','.join(HEADERLESS[(kind, '::')])} "
            f"as its first line)"
            if numbers
            else ""
        )
        raise DataError(f"{label}: missing required column(s) {missing}; found {header}{fix}")
    if len(lines) == first:
        raise DataError(f"{label} has a header but no rows")
    if typed is not None:
        # Only plain decimal numbers take the fast road: no exponent, inf or nan anywhere below
        # the header, where the C parser and Python's int()/float() could read a field differently.
        body = text.find("\n") + 1 if first else 0  # where the rows start (searched in place)
        if rows is not None or any(text.find(c, body) >= 0 for c in "eEiInN"):
            raise _NotTyped("quoted fields, or numbers the text read must judge")
        del counts  # only the typed columns stay, not a string per field
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. a float cast to an integer column
                df = _c_parse(
                    text, header, {c: typed.get(c, object) for c in header}, sep, not names
                )
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
        df = _c_parse(text, header, object, sep, not names)
    else:
        df = pd.DataFrame(rows[first:], columns=header, dtype=object)
    if len(df) != len(lines) - first:  # never seen; a guard against the two readers disagreeing
        raise DataError(
            f"{label}: could not read it as CSV ({len(df)} rows parsed, {len(lines) - first} expected)"
        )
    return _Table(label, df, np.asarray(lines[first:]))


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
    t = _read_csv(member.label, member.read(), MOVIE_COLUMNS, kind="movies")
    out = pd.DataFrame(
        {"movieId": _numeric(t, "movieId", integer=True), "title": t.df["title"].astype(str)}
    )
    if "genres" in t.df.columns:
        out["genres"] = t.df["genres"].astype(str)
    elif all(g in t.df.columns for g in GENRES_100K):  # ml-100k: a 0/1 column per genre
        flags = t.df[list(GENRES_100K)].to_numpy() == "1"
        out["genres"] = ["|".join(g for g, on in zip(GENRES_100K, row) if on) for row in flags]
    dup = out.movieId.duplicated().to_numpy()
    if dup.any():
        raise DataError(f"{t.where(int(dup.argmax()), 'movieId')} is a duplicate movie id")
    return out


def load_ratings(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated ratings (userId, movieId, rating[, timestamp]) from a zip, folder or file.

    Notebook 00.
    """
    return _ratings_at(_locate(_resolve(source), "ratings"))


def load_movies(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Validated movie titles (movieId, title, genres) from a zip, folder or file.

    Notebook 00.
    """
    return _movies_at(_locate(_resolve(source), "movies"))


def movielens(source: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(ratings, movies, path read) from the fetched zip, or from a zip, folder or ratings.csv.

    Notebook 00.
    """
    path = _resolve(source)
    where = _locate(path, "ratings")
    ratings = _ratings_at(where)
    # Titles come from the ratings' own folder, never from another data set's.
    beside = where.sibling("movies")
    if beside is not None:
        movies = _movies_at(beside)
    elif not path.is_dir() and not _is_zip(path):  # a bare ratings.csv: titles are optional
        movies = pd.DataFrame({"movieId": pd.unique(ratings.movieId), "title": ""})
        movies["title"] = [f"movie {m}" for m in movies.movieId]
    else:
        raise DataError(f"{path} holds no movies.csv beside {where.label} {_others('movies')}")
    return ratings, movies, path
