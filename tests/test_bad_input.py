"""Bad input (issues 10, 23): one error naming file, line, column and value (or the argument);
from the CLI one stderr line, no traceback, no temporary file left (Ctrl-C and SIGTERM too)."""

from __future__ import annotations

import codecs
import gzip
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import numpy as np
import pytest
from _helpers import ROOT, one_line, python, write, zip_of

from lesson5 import atomic, data, device, download, read
from lesson5.tools import cli

HEADER = "userId,movieId,rating,timestamp\n"
GOOD = HEADER + "1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,31,4.0,1260759185\n"
MOVIES = "movieId,title,genres\n31,Dangerous Minds (1995),Drama\n1029,Dumbo (1941),Animation\n"
R3 = "userId,movieId,rating\n"


def patch(raw: bytes, *edits: tuple[bytes, int, bytes | int | None]) -> bytes:
    """At `at` bytes past a header signature: put bytes, OR in a bit, or (None) damage 140 bytes."""
    out = bytearray(raw)
    for sig, at, value in edits:
        pos = out.find(sig) + at
        if value is None:
            out[pos : pos + 140] = bytes(b ^ 0x5A for b in out[pos : pos + 140])
        elif isinstance(value, int):
            out[pos] |= value
        else:
            out[pos : pos + len(value)] = value
    return bytes(out)


def declared(raw: bytes, size: int) -> bytes:
    """A zip whose headers declare `size` bytes unpacked, as a bomb's (or a liar's) do."""
    packed = struct.pack("<I", size)
    return patch(raw, (b"PK\x03\x04", 22, packed), (b"PK\x01\x02", 24, packed))


def gz_bomb() -> bytes:
    raw = gzip.compress(GOOD.encode() * 2000)
    return raw[:-4] + struct.pack("<I", 1_100_000_000)  # the gzip trailer's size field


def case(files, pattern: str, source: str = "ratings.csv", loader=read.load_ratings):
    files = files if isinstance(files, dict) else {"ratings.csv": files}
    return pytest.param(files, source, loader, pattern, id=pattern[:40])


NUL = r"holds binary data \(a NUL byte\)"
CASES = [
    # CSV shape
    case(HEADER + "1,31,2.5,1260759144,x\n1,1029,3.0,1260759179,y\n",
         r"ratings.csv, line 2: 5 fields but the header has 4 \(extra value 'x'\)"),
    case(GOOD + "3,7,4.0,1260759185,oops\n", r"line 5: 5 fields .* \(extra value 'oops'\)"),
    case(GOOD + "3,7,4.0\n", r"line 5: 3 fields but the header has 4 \(no value for 'timestamp'\)"),
    case(GOOD + '3,"7,4.0,1\n4,8,3.0,2\n', r"ratings.csv, line 5: a quote opened here is never closed"),  # noqa: E501
    case(R3 + "1,31,2.5\n\n\n1,32,x\n", r"line 5, column 'rating': value 'x' is not a number"),
    case({"movies.csv": 'movieId,title\n31,"two\nlines"\n\n31,Again\n'},
         r"movies.csv, line 5, column 'movieId': value '31' is a duplicate", ".", read.load_movies),
    case("userId,movieId,rating,rating\n1,31,2.5,3\n", r"column 'rating' appears twice in the header"),  # noqa: E501
    case("userId,rating\n1,2.5\n", r"ratings.csv: missing required column\(s\) \['movieId'\]"),
    case("1,31,2.5,1260759144\n", r"missing required column.*no header line; add userId,movieId,rating,timestamp as its first line"),  # noqa: E501
    case("", r"ratings.csv is empty"),
    case(R3, r"ratings.csv has a header but no rows"),
    # not text, or not UTF-8
    case(codecs.BOM_UTF8, r"ratings.csv is empty"),
    case(codecs.BOM_UTF8 + b"\n\n", r"ratings.csv is empty"),
    case(bytes(range(256)) * 4, rf"ratings.csv, line 1: {NUL}"),
    case(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", NUL),
    case(GOOD.encode("utf-16"), r"ratings.csv is UTF-16 text .*save it as 'CSV UTF-8"),
    case(GOOD.encode("utf-16-be"), NUL + r".*UTF-16"),
    case(b"userId,movieId,rating\n1,31,2.5\n1,\xe9,3\n", r"line 3, column 'movieId': byte 0xe9 is not UTF-8"),  # noqa: E501
    case({"ratings.csv": GOOD, "movies.csv": "movieId,title\n31,Minds\n1029,Am\xe9lie (2001)\n".encode("latin-1")},  # noqa: E501
         r"movies.csv, line 3, column 'title': byte 0xe9 is not UTF-8 \(the value reads 'Am\\\\xe9lie \(2001\)'\); the file looks like Latin-1.*save it as UTF-8$",  # noqa: E501
         ".", data.load),
    # values
    case(R3 + "1,31,2.5\n1,x,3\n", r"ratings.csv, line 3, column 'movieId': value 'x' is not an integer"),  # noqa: E501
    case(R3 + "1,31,2.5\n2.5,32,3\n", r"line 3, column 'userId': value '2.5' is not an integer"),
    case(R3 + "1,31,2.5\n2,0x20,3\n", r"line 3, column 'movieId': value '0x20' is not an integer"),
    case(R3 + "1,31,2.5\n1,32,\n", r"line 3, column 'rating': value '' is missing"),
    case(R3 + "1,31,2.5\n1,32,5.5\n", r"line 3, column 'rating': value '5.5' is outside \[0.5, 5.0\]"),  # noqa: E501
    case(R3 + "1,31,0\n", r"line 2, column 'rating': value '0' is outside"),
    case(R3 + "1,31,nan\n", r"line 2, column 'rating': value 'nan' is not a number"),
    case(R3 + "1,31,2.5\n2,31,3\n1,31,4\n",
         r"line 4, columns \('userId', 'movieId'\): duplicate pair \(1, 31\), first seen on line 2"),  # noqa: E501
    *(case(R3 + f"1,31,2.5\n{v},32,3\n", rf"line 3, column 'userId': value '{v}' does not fit in a 64-bit integer")  # noqa: E501
      for v in (10**20, 2**63, -(2**63) - 1, "1e30")),
    case(HEADER + "1,31,2.5,99999999999999999999\n", r"line 2, column 'timestamp': value '99999999999999999999' does not fit"),  # noqa: E501
    case(R3 + "1.0,1,3\n9007199254740993,2,4\n", r"line 3, column 'userId': .* too large to be exact"),  # noqa: E501
    case({"ratings.csv": GOOD, "movies.csv": "movieId,name\n31,x\n"}, r"missing required column\(s\) \['title'\]", ".", data.load),  # noqa: E501
    case({"ratings.csv": GOOD, "movies.csv": "movieId,title\n31,Dangerous Minds\nx,Dumbo\n"},
         r"movies.csv, line 3, column 'movieId': value 'x' is not an integer", "ratings.csv", data.load),  # noqa: E501
    # every release's format, gzip'd too: the message names file, line, column and value
    *(case({name + gz: gzip.compress(text.encode()) if gz else text}, rf"/{name + gz}, line 2{where}", name + gz)  # noqa: E501
      for name, text, where in [
          ("u.data", "1\t2\t3\t4\n1\t3\tx\t4\n", ", column 'rating': value 'x'"),
          ("ratings.dat", "1::2::3::4\n1::3::7::4\n", ", column 'rating': value '7'"),
          ("ratings.dat", "1::2::3::4\n1::3::4\n", ": 3 fields"),
          ("ratings.dat", "1::2::3::4\n1::2::4::5\n", r", columns \('userId', 'movieId'\)"),
      ] for gz in ("", ".gz")),  # fmt: skip
    # files, folders and zips
    case({}, r"empty source", "", data.load),
    case({}, r"nope.zip does not exist", "nope.zip"),
    case({"ratings.csv": None}, r"ratings.csv is a folder, not a file", "."),
    case({"ratings.csv": None}, r"ratings.csv holds no ratings.csv", "ratings.csv"),
    case({"empty/": None}, r"empty holds no ratings.csv", "empty"),
    case({"u.user": "1|24|M|technician|85711\n"}, r"holds no ratings.csv \(nor ratings.dat or u.data, as older MovieLens releases name it, nor a .gz\)", "."),  # noqa: E501
    case({"a/ratings.csv": GOOD, "b/ratings.csv": GOOD}, r"holds 2 ratings.csv files \(a/ratings.csv, b/ratings.csv\)", "."),  # noqa: E501
    case({"two.zip": zip_of({"a/ratings.csv": GOOD, "b/ratings.csv": GOOD})}, r"two.zip holds 2 ratings.csv files \(a/ratings.csv, b/ratings.csv\)", "two.zip"),  # noqa: E501
    case({"x/ratings.csv": GOOD, "y/movies.csv": MOVIES},  # another data set's titles are not these
         r"only holds no movies.csv beside \S*x/ratings.csv \(nor movies.dat or u.item, as older MovieLens releases name it, nor a \.gz\)$",  # noqa: E501
         ".", data.load),
    case({"broken.zip": b"PK\x03\x04 not really a zip"}, r"broken.zip is not a valid zip file", "broken.zip"),  # noqa: E501
    case({"d.zip": patch(zip_of({"ml/ratings.csv": GOOD * 50, "ml/movies.csv": MOVIES}), (b"PK\x03\x04", 60, None))},  # noqa: E501
         r"d.zip is damaged: ml/ratings.csv cannot be extracted .*download it again", "d.zip"),
    case({"p.zip": patch(zip_of({"ml/ratings.csv": GOOD}), (b"PK\x03\x04", 6, 1), (b"PK\x01\x02", 8, 1))}, r"p.zip is password-protected: .*unzip it yourself", "p.zip"),  # noqa: E501 (the encrypted flag set)
    case({"l.zip": declared(zip_of({"ml/ratings.csv": GOOD * 20000}), 100)},  # noqa: E501 (read only as far as it says)
         r"l.zip is damaged: ml/ratings.csv cannot be extracted", "l.zip"),
    case({"b.zip": declared(zip_of({"ml/ratings.csv": GOOD * 2000}), 1_100_000_000)},
         r"b.zip!ml/ratings.csv would unpack .* into 1.10 GB .*zip bomb", "b.zip"),
    case({"ratings.csv.gz": gz_bomb()}, r"ratings.csv.gz would unpack .* zip bomb", "ratings.csv.gz"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize("files, source, loader, pattern", CASES)
def test_a_bad_file_is_one_line_naming_the_problem(tmp_path, files, source, loader, pattern):
    root = tmp_path / "only"
    for name, content in files.items():
        write(root, content, name)
    start = time.process_time()
    with pytest.raises(data.DataError, match=pattern) as info:
        loader(root / source if source else source)
    assert time.process_time() - start < 2  # a bomb is refused before it is read
    msg = str(info.value)
    assert "\n" not in msg and (not source or str(root) in msg), msg


@pytest.mark.parametrize(
    "files, loader, column, values",
    [
        ({"ratings.csv": codecs.BOM_UTF8 + GOOD.encode()}, read.load_ratings, "userId", [1, 1, 2]),
        ({"ratings.csv": GOOD.replace("\n", "\r\n")}, read.load_ratings, "timestamp",
         [1260759144, 1260759179, 1260759185]),
        ({"ratings.csv": R3 + "1.0,31,2.5\n2,32.0,3\n"}, read.load_ratings, ["userId", "movieId"],
         [[1, 31], [2, 32]]),
        ({"ratings.csv": f"{R3}{2**53},1,3\n{2**53 + 1},1,4\n{2**63 - 1},2,5\n"}, read.load_ratings,
         "userId", [2**53, 2**53 + 1, 2**63 - 1]),  # beyond float64's precision, still distinct
        ({"movies.csv": 'movieId,title\n31,"Minds, Dangerous (1995)"\n1029,"Say ""Dumbo"""\n'},
         read.load_movies, "title", ["Minds, Dangerous (1995)", 'Say "Dumbo"']),
        ({"ml-latest-small": zip_of({"ml/ratings.csv": GOOD, "ml/movies.csv": MOVIES})},  # no .zip
         lambda p: data.load(p / "ml-latest-small").movies, "title", ["Dangerous Minds (1995)", "Dumbo (1941)"]),  # noqa: E501
        ({"ratings.csv": GOOD}, lambda p: data.load(p / "ratings.csv").movies, "title",
         ["movie 31", "movie 1029"]),  # a bare ratings.csv with no titles beside it
    ],
)  # fmt: skip
def test_what_looks_odd_but_is_fine_loads(tmp_path, files, loader, column, values):
    for name, content in files.items():
        write(tmp_path, content, name)
    df = loader(tmp_path)
    assert df[column].values.tolist() == values
    if "userId" in df:
        assert list(df.columns)[:3] == ["userId", "movieId", "rating"]
        assert df.userId.dtype == np.int64


def test_loading_the_real_file_stays_fast(movielens_zip):
    # CPU seconds, so that other processes do not count (the old pandas-float parsing took 0.6 s).
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        ds = data.load(movielens_zip)
        best = min(best, time.process_time() - start)
    assert best < 1.0 and len(ds.ratings) == 100_836


def test_an_unreadable_file(tmp_path, monkeypatch):
    path, real = write(tmp_path, GOOD), Path.read_bytes
    match = r"cannot read .*ratings.csv: Permission denied; check its permissions"
    if os.geteuid() != 0:  # root reads any file: for real elsewhere, a PermissionError faked too
        path.chmod(0)
        with pytest.raises(data.DataError, match=match):
            read.load_ratings(path)
        path.chmod(0o644)

    def denied(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(data.DataError, match=match):
        read.load_ratings(path)


def test_cached_zip_that_is_a_folder(tmp_path):
    (tmp_path / download.ZIP_NAME).mkdir()
    with pytest.raises(data.DataError, match=rf"{download.ZIP_NAME} is a folder"):
        download.fetch(tmp_path, url="http://127.0.0.1:9/none.zip", progress=False, timeout=1)
    assert (tmp_path / download.ZIP_NAME).is_dir()  # a user's folder is never deleted


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("pct", [0, 1, -0.2, 1.5, float("nan"), float("inf")])
def test_valid_pct_outside_0_1_and_a_negative_seed(pct):
    with pytest.raises(data.ArgumentError, match=rf"valid_pct={pct!r}: .*between 0 and 1"):
        data.split_indices(100, pct)
    with pytest.raises(data.ArgumentError, match="valid_pct"):
        data.synthetic(n_users=10, n_movies=10, n_ratings=50, valid_pct=pct)
    with pytest.raises(data.ArgumentError, match=r"seed=-1"):
        data.split_indices(100, 0.2, seed=-1)


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["excel", "--out", "x", "--seed", "-1"], r"--seed: -1 is not a seed"),
        (["excel", "--out", "x", "--seed", str(2**32)], r"--seed: 4294967296 is not a seed"),
        (["excel", "--out", ""], r"--out: an empty path"),
        (["excel", "--out", "x", "--top-n", "0"], r"--top-n: 0 is not a positive whole number"),
        (["run", "--out", ""], r"--out: an empty path"),
        (["run", "--timeout", "-5"], r"--timeout: -5 is not a positive whole number"),
        (["data", "--source", ""], r"--source: an empty path"),
    ],
)
def test_bad_cli_arguments(argv, pattern, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert re.search("argument " + pattern, line) and "--help" in line, line
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_a_bad_file_and_an_out_naming_a_file_reach_the_cli_as_one_line(tmp_path, capsys):
    assert cli.main(["data", "--source", str(write(tmp_path, "userId,movieId\n1,2\n"))]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and "missing required column(s) ['rating']" in line, line
    target = write(tmp_path, "precious", "results.txt")
    assert cli.main(["run", "--out", str(target), "--only", "00"]) == 2
    assert f"--out {str(target)!r} is a file, not a folder" in one_line(capsys.readouterr().err)
    assert cli.main(["run", "--out", str(target / "sub"), "--only", "00"]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)
    assert target.read_text() == "precious"


def test_unknown_lesson5_device(monkeypatch):
    monkeypatch.setenv("LESSON5_DEVICE", "gpu")
    match = r"LESSON5_DEVICE='gpu' is not a device .*'cpu' or 'cuda'"
    with pytest.raises(device.DeviceError, match=match):
        device.get_device()
    with pytest.raises(ValueError, match=r"device 'cuda:x'"):
        device.get_device("cuda:x")
    monkeypatch.setenv("LESSON5_DEVICE", "cpu")
    assert device.get_device().type == "cpu"


@pytest.mark.parametrize(
    "argv, env, pattern",
    [
        (["--threads", "-1"], {}, r"argument --threads: -1 is not a positive whole number"),
        (["--threads", "0"], {}, r"argument --threads: 0 is not a positive whole number"),
        (["--timeout", "nan"], {}, r"argument --timeout: nan is not a positive whole number"),
        (["--no-scale"], {"LESSON5_DEVICE": "gpu"}, r"LESSON5_DEVICE='gpu' is not a device"),
    ],
)
def test_bad_bench_arguments(argv, env, pattern):
    done = python("benchmarks/bench.py", *argv, env=env, cwd=ROOT)
    assert done.returncode == 2 and re.search(pattern, one_line(done.stderr))


def test_a_failing_bench_row_prints_one_line_and_the_next_row_runs(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # a spawned row imports bench by name
    import bench

    # The good row reads a 1,000-row csv: its process never imports torch, nor trains.
    rows = [
        ("broken row", dict(kind="nope", recipe="onecycle-bias", bs=4096)),
        ("good row", dict(kind="read_csv", recipe="-", bs=0, n=1000)),
    ]
    monkeypatch.setattr(bench, "default_rows", lambda *a: rows)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    code = bench.main(["--runs", "1", "--no-scale"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err + out
    want = "broken row (onecycle-bias, bs 4096) failed: ValueError: unknown row kind 'nope'"
    assert [line for line in err.splitlines() if "failed" in line] == [want]
    assert "| good row | read.load_ratings |" in out and "broken row" not in out


# ---------------------------------------------------------------- interruptions


SLOW_WRITE = """
import signal, sys, time
from pathlib import Path
from lesson5 import atomic
from lesson5.tools import cli

# A shell's background jobs ignore Ctrl-C; in a terminal, Ctrl-C raises KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)

def slow(tmp):
    tmp.write_text("half")
    print("writing", flush=True)
    time.sleep(60)

sys.exit(cli.guarded(lambda: atomic.atomic_write(Path(sys.argv[1]) / "graddesc.xlsx", slow)))
"""


@pytest.mark.parametrize(
    "sig, code, words",
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")],
)
def test_a_signal_during_a_write_is_one_line_and_leaves_nothing(tmp_path, sig, code, words):
    cmd, env = [sys.executable, "-c", SLOW_WRITE, str(tmp_path)], {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=PIPE, stderr=PIPE, text=True, env=os.environ | env)
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".graddesc.xlsx.")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert one_line(err) == f"lesson5: {words}; nothing half-written was left"
    assert list(tmp_path.iterdir()) == []


def age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_stale_atomic_temporary_files_are_swept_by_the_next_write(tmp_path):
    age(write(tmp_path, "half", ".graddesc.xlsx.a1b2c3d4.tmp"), 3600)  # stale: swept
    fresh = write(tmp_path, "another run, writing now", ".graddesc.xlsx.zzzz1111.tmp")
    other = age(write(tmp_path, "mine", ".notes.txt.a1b2c3d4.tmp"), 3600)
    atomic.atomic_write(tmp_path / "graddesc.xlsx", lambda p: p.write_text("done"))
    assert {p.name for p in tmp_path.iterdir()} == {"graddesc.xlsx", fresh.name, other.name}


def test_stale_download_files_are_swept_by_a_fetch_that_hashes_with_pooch(tmp_path, monkeypatch):
    import pooch

    payload, cache = zip_of({"ml/ratings.csv": GOOD}), tmp_path / "cache"
    zip_path = write(cache, payload, download.ZIP_NAME)
    stale = age(write(cache, b"half a download", "tmpk3j_x9q2"), 3600)
    fresh = write(cache, b"a download under way", "tmpabcdefgh")
    keep = age(write(cache, b"a user's file", "tmp_notes.txt"), 3600)
    calls, real = [], pooch.hashes.file_hash
    monkeypatch.setattr(pooch.hashes, "file_hash", lambda *a, **k: calls.append(a) or real(*a, **k))
    sha = real(str(zip_path))
    url = "http://127.0.0.1:9/none.zip"
    assert download.fetch(cache, sha256=sha, url=url, progress=False) == zip_path
    assert not stale.exists() and fresh.exists() and keep.exists()
    assert calls, "fetch verified the cached zip without pooch.file_hash"
    assert not hasattr(data, "_sha256")
