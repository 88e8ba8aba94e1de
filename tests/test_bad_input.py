"""Bad input, tried as a careless or hostile user would (issue 10): every case ends in one clear error.

For the API: an exception of the package's own types whose message names the file, line, column
and value (or the argument and its value). For the CLI: a non-zero exit and one line on stderr,
never a traceback; Ctrl-C and SIGTERM included, and no temporary file left behind.
"""

from __future__ import annotations

import codecs
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lesson5 import atomic, data, download, read
from lesson5.tools import cli

ROOT = Path(__file__).resolve().parents[1]
HEADER = "userId,movieId,rating,timestamp\n"
GOOD = HEADER + "1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,31,4.0,1260759185\n"
MOVIES = "movieId,title,genres\n31,Dangerous Minds (1995),Drama\n1029,Dumbo (1941),Animation\n"


def write(folder: Path, content: str | bytes, name: str = "ratings.csv") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def fails(source, pattern: str, loader=read.load_ratings) -> str:
    with pytest.raises(data.DataError, match=pattern) as info:
        loader(source)
    return str(info.value)


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, prog=("-m", "lesson5")
) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, *prog, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd or ROOT,
        timeout=300,
    )


def one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------- 1. CSV shape


def test_every_row_one_field_longer_than_the_header_is_refused(tmp_path):
    path = write(tmp_path, HEADER + "1,31,2.5,1260759144,x\n1,1029,3.0,1260759179,y\n")
    msg = fails(path, r"ratings.csv, line 2: 5 fields but the header has 4 \(extra value 'x'\)")
    assert str(path) in msg


def test_one_over_long_row_and_one_short_row(tmp_path):
    fails(
        write(tmp_path, GOOD + "3,7,4.0,1260759185,oops\n"),
        r"line 5: 5 fields but the header has 4 \(extra value 'oops'\)",
    )
    fails(
        write(tmp_path, GOOD + "3,7,4.0\n"),
        r"line 5: 3 fields but the header has 4 \(no value for 'timestamp'\)",
    )


def test_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    fails(
        write(tmp_path, GOOD + '3,"7,4.0,1\n4,8,3.0,2\n'),
        r"ratings.csv, line 5: a quote opened here is never closed",
    )


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    text = "userId,movieId,rating\n1,31,2.5\n\n\n1,32,x\n"
    fails(write(tmp_path, text), r"line 5, column 'rating': value 'x' is not a number")
    quoted = 'movieId,title\n31,"two\nlines"\n\n31,Again\n'
    fails(
        write(tmp_path, quoted, "movies.csv"),
        r"line 5, column 'movieId': value '31' is a duplicate",
        read.load_movies,
    )


@pytest.mark.parametrize(
    "content, pattern",
    [
        (codecs.BOM_UTF8, r"ratings.csv is empty"),
        (codecs.BOM_UTF8 + b"\n\n", r"ratings.csv is empty"),
        (bytes(range(256)) * 4, r"ratings.csv, line 1: holds binary data \(a NUL byte\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"holds binary data"),
        (GOOD.encode("utf-16"), r"ratings.csv is UTF-16 text .*save it as 'CSV UTF-8"),
        (GOOD.encode("utf-16-be"), r"holds binary data \(a NUL byte\).*UTF-16"),
        (
            b"userId,movieId,rating\n1,31,2.5\n1,\xe9,3\n",
            r"line 3, column 'movieId': byte 0xe9 is not UTF-8",
        ),
    ],
)
def test_not_text_or_not_utf8(tmp_path, content, pattern):
    msg = fails(write(tmp_path, content), pattern)
    assert "Traceback" not in msg and len(msg) < 400


def test_a_bom_before_the_header_is_fine(tmp_path):
    df = read.load_ratings(write(tmp_path, codecs.BOM_UTF8 + GOOD.encode()))
    assert list(df.columns) == ["userId", "movieId", "rating", "timestamp"] and len(df) == 3


def test_latin1_titles_in_movies_csv(tmp_path):
    write(tmp_path, GOOD)
    write(
        tmp_path,
        "movieId,title\n31,Dangerous Minds (1995)\n1029,Am\xe9lie (2001)\n".encode("latin-1"),
        "movies.csv",
    )
    msg = fails(
        tmp_path,
        r"movies.csv, line 3, column 'title': byte 0xe9 is not UTF-8 \(the value reads 'Am\\\\xe9lie \(2001\)'\)",
        data.load,
    )
    assert "Latin-1" in msg and "save it as UTF-8" in msg


def test_a_repeated_column_name(tmp_path):
    fails(
        write(tmp_path, "userId,movieId,rating,rating\n1,31,2.5,3\n"),
        r"column 'rating' appears twice in the header",
    )


def test_crlf_and_quoted_fields_still_load(tmp_path):
    df = read.load_ratings(write(tmp_path, GOOD.replace("\n", "\r\n")))
    assert df.timestamp.tolist() == [1260759144, 1260759179, 1260759185]
    write(
        tmp_path,
        'movieId,title\n31,"Minds, Dangerous (1995)"\n1029,"Say ""Dumbo"""\n',
        "movies.csv",
    )
    assert read.load_movies(tmp_path).title.tolist() == ["Minds, Dangerous (1995)", 'Say "Dumbo"']


def test_loading_the_real_file_stays_fast(movielens_zip):
    # CPU seconds, so that other busy processes do not count: on 2 cores the old pandas-float parsing
    # took 0.6 s wall on a quiet machine (2.0 s under load), this reader 0.25 s (0.9 s under load).
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        ds = data.load(movielens_zip)
        best = min(best, time.process_time() - start)
    assert best < 1.0 and len(ds.ratings) == 100_836


# ---------------------------------------------------------------- 2. ids


def test_ids_beyond_float64_precision_stay_distinct(tmp_path):
    big = 2**53
    df = read.load_ratings(
        write(tmp_path, f"userId,movieId,rating\n{big},1,3\n{big + 1},1,4\n{2**63 - 1},2,5\n")
    )
    assert df.userId.tolist() == [big, big + 1, 2**63 - 1] and df.userId.dtype == np.int64
    assert (
        data.load(write(tmp_path, f"userId,movieId,rating\n{big},1,3\n{big + 1},1,4\n")).n_users
        == 2
    )


@pytest.mark.parametrize("value", [str(10**20), str(2**63), str(-(2**63) - 1), "1e30"])
def test_ids_that_do_not_fit_int64_are_refused(tmp_path, value):
    fails(
        write(tmp_path, f"userId,movieId,rating\n1,31,2.5\n{value},32,3\n"),
        rf"line 3, column 'userId': value '{value}' does not fit in a 64-bit integer",
    )


def test_integral_ids_written_as_floats_still_load_and_others_are_named(tmp_path):
    df = read.load_ratings(write(tmp_path, "userId,movieId,rating\n1.0,31,2.5\n2,32.0,3\n"))
    assert df.userId.tolist() == [1, 2] and df.movieId.tolist() == [31, 32]
    fails(
        write(tmp_path, "userId,movieId,rating\n1,31,2.5\n2,0x20,3\n"),
        r"line 3, column 'movieId': value '0x20' is not an integer",
    )
    fails(
        write(tmp_path, "userId,movieId,rating,timestamp\n1,31,2.5,99999999999999999999\n"),
        r"line 2, column 'timestamp': value '99999999999999999999' does not fit",
    )


# ---------------------------------------------------------------- 3. files and folders


def test_a_folder_named_ratings_csv(tmp_path):
    (tmp_path / "ratings.csv").mkdir()
    fails(tmp_path, r"ratings.csv is a folder, not a file")
    fails(tmp_path / "ratings.csv", r"holds no ratings.csv")


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    real = Path.read_bytes

    def denied(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    msg = fails(path, r"cannot read .*ratings.csv: Permission denied")
    assert "permissions" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_for_real(tmp_path):
    path = write(tmp_path, GOOD)
    path.chmod(0)
    fails(path, r"cannot read .*Permission denied")


def test_cached_zip_that_is_a_folder(tmp_path):
    (tmp_path / download.ZIP_NAME).mkdir()
    with pytest.raises(data.DataError, match=rf"{download.ZIP_NAME} is a folder"):
        download.fetch(tmp_path, url="http://127.0.0.1:9/none.zip", progress=False, timeout=1)
    assert (tmp_path / download.ZIP_NAME).is_dir()  # a user's folder is never deleted


def make_zip(path: Path, members: dict[str, str], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_a_zip_without_its_extension_is_read_as_a_zip(tmp_path):
    path = make_zip(tmp_path / "ml-latest-small", {"ml/ratings.csv": GOOD, "ml/movies.csv": MOVIES})
    ds = data.load(path)
    assert len(ds.ratings) == 3 and ds.title(1029) == "Dumbo (1941)"


def test_a_damaged_zip_whose_members_fail_to_inflate(tmp_path):
    path = make_zip(tmp_path / "d.zip", {"ml/ratings.csv": GOOD * 50, "ml/movies.csv": MOVIES})
    raw = bytearray(path.read_bytes())
    for i in range(60, 200):  # inside the compressed bytes of the first member
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    msg = fails(path, r"d.zip is damaged: ml/ratings.csv cannot be extracted")
    assert "download it again" in msg


def test_a_password_protected_zip(tmp_path):
    path = make_zip(tmp_path / "p.zip", {"ml/ratings.csv": GOOD})
    raw = bytearray(path.read_bytes())
    # Set the "encrypted" flag bit in the local and central headers, as a password tool does.
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(sig)
        raw[at + off] |= 1
    path.write_bytes(bytes(raw))
    fails(path, r"p.zip is password-protected: .*unzip it yourself")


def test_two_data_sets_in_one_folder_or_zip(tmp_path):
    write(tmp_path / "a", GOOD)
    write(tmp_path / "b", GOOD)
    fails(tmp_path, r"holds 2 ratings.csv files \(a/ratings.csv, b/ratings.csv\)")
    path = make_zip(tmp_path / "two.zip", {"a/ratings.csv": GOOD, "b/ratings.csv": GOOD})
    fails(path, r"two.zip holds 2 ratings.csv files \(a/ratings.csv, b/ratings.csv\)")


def test_titles_come_from_the_ratings_own_folder(tmp_path):
    write(tmp_path / "only" / "x", GOOD)
    write(tmp_path / "only" / "y", MOVIES, "movies.csv")  # another data set's titles
    msg = fails(tmp_path / "only", r"no movies.csv beside .*x/ratings.csv", data.load)
    assert "y/movies.csv" not in msg


def test_malformed_movies_csv_beside_a_bare_ratings_csv_is_an_error(tmp_path):
    path = write(tmp_path, GOOD)
    write(tmp_path, "movieId,title\n31,Dangerous Minds\nx,Dumbo\n", "movies.csv")
    fails(path, r"movies.csv, line 3, column 'movieId': value 'x' is not an integer", data.load)
    (tmp_path / "movies.csv").unlink()
    assert data.load(path).title(31) == "movie 31"  # no titles at all: still fine


def test_an_empty_source_is_not_the_current_folder(tmp_path):
    fails("", r"empty source", data.load)


# ---------------------------------------------------------------- 4. arguments


@pytest.mark.parametrize("pct", [0, 1, -0.2, 1.5, float("nan"), float("inf")])
def test_valid_pct_outside_0_1(pct):
    with pytest.raises(data.ArgumentError, match=rf"valid_pct={pct!r}: .*between 0 and 1"):
        data.split_indices(100, pct)
    with pytest.raises(data.ArgumentError, match="valid_pct"):
        data.synthetic(n_users=10, n_movies=10, n_ratings=50, valid_pct=pct)


def test_split_seed_out_of_range():
    with pytest.raises(data.ArgumentError, match=r"seed=-1"):
        data.split_indices(100, 0.2, seed=-1)


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["excel", "--out", "x", "--seed", "-1"], r"argument --seed: -1 is not a seed"),
        (
            ["excel", "--out", "x", "--seed", str(2**32)],
            r"argument --seed: 4294967296 is not a seed",
        ),
        (["excel", "--out", ""], r"argument --out: an empty path"),
        (
            ["excel", "--out", "x", "--top-n", "0"],
            r"argument --top-n: 0 is not a positive whole number",
        ),
        (["run", "--out", ""], r"argument --out: an empty path"),
        (["run", "--timeout", "-5"], r"argument --timeout: -5 is not a positive whole number"),
        (["data", "--source", ""], r"argument --source: an empty path"),
    ],
)
def test_bad_cli_arguments(argv, pattern, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    line = one_clean_line(capsys.readouterr().err)
    assert re.search(pattern, line) and "--help" in line, line
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_run_out_naming_a_file(tmp_path, capsys):
    target = write(tmp_path, "precious", "results.txt")
    assert cli.main(["run", "--out", str(target), "--only", "00"]) == 2
    err = capsys.readouterr().err
    assert f"--out {str(target)!r} is a file, not a folder" in err and "Traceback" not in err
    assert target.read_text() == "precious"
    assert cli.main(["run", "--out", str(target / "sub"), "--only", "00"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_unknown_lesson5_device(monkeypatch):
    from lesson5 import device

    monkeypatch.setenv("LESSON5_DEVICE", "gpu")
    with pytest.raises(
        device.DeviceError, match=r"LESSON5_DEVICE='gpu' is not a device .*'cpu' or 'cuda'"
    ):
        device.get_device()
    with pytest.raises(ValueError, match=r"device 'cuda:x'"):
        device.get_device("cuda:x")
    monkeypatch.setenv("LESSON5_DEVICE", "cpu")
    assert device.get_device().type == "cpu"


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--threads", "-1"], r"argument --threads: -1 is not a positive whole number"),
        (["--threads", "0"], r"argument --threads: 0 is not a positive whole number"),
        (["--timeout", "nan"], r"argument --timeout: nan is not a positive whole number"),
    ],
)
def test_bad_bench_arguments(argv, pattern):
    done = run_cli(*argv, prog=["benchmarks/bench.py"])
    assert done.returncode == 2 and re.search(pattern, one_clean_line(done.stderr))


def test_unknown_device_in_the_benchmark_is_one_line():
    done = run_cli("--no-scale", env={"LESSON5_DEVICE": "gpu"}, prog=["benchmarks/bench.py"])
    assert done.returncode == 2
    assert "LESSON5_DEVICE='gpu' is not a device" in one_clean_line(done.stderr)


def test_a_failing_bench_row_prints_one_line_and_the_next_row_runs(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # a spawned row imports bench by name
    import bench

    good = dict(
        kind="lesson5",
        recipe="onecycle-bias",
        bs=4096,
        source="synthetic",
        epochs=1,
        device="cpu",
        threads=1,
    )
    rows = [("broken row", dict(good, kind="nope")), ("good row", good)]
    monkeypatch.setattr(bench, "default_rows", lambda *a: rows)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    code = bench.main(["--device", "cpu", "--threads", "1", "--runs", "1", "--no-scale"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err and "Traceback" not in out
    failed = [line for line in err.splitlines() if "failed" in line]
    assert failed == [
        "broken row (onecycle-bias, bs 4096) failed: ValueError: unknown row kind 'nope'"
    ]
    assert "good row" in out and "broken row" not in out


# ---------------------------------------------------------------- 7. interruptions


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_data", interrupted)
    assert cli.main(["data", "--source", "synthetic"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "lesson5: interrupted (Ctrl-C); nothing half-written was left"


def test_library_errors_reach_the_cli_as_one_line(monkeypatch, capsys):
    def broken(args):
        data.split_indices(10, 2.0)

    monkeypatch.setattr(cli, "cmd_data", broken)
    assert cli.main(["data"]) == 2
    assert one_clean_line(capsys.readouterr().err).startswith("error: valid_pct=2.0")


SLOW_WRITE = """
import signal, sys, time
from pathlib import Path
from lesson5 import atomic
from lesson5.tools import cli

# A shell starts background jobs with Ctrl-C ignored, and children inherit that; this process
# stands in for a command run in a terminal, where Ctrl-C raises KeyboardInterrupt.
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
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, sig, code, words):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITE, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".graddesc.xlsx.")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert words in one_clean_line(err)
    assert list(tmp_path.iterdir()) == []


def age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_stale_atomic_temporary_files_are_swept_by_the_next_write(tmp_path):
    stale = age(write(tmp_path, "half", ".graddesc.xlsx.a1b2c3d4.tmp"), 3600)
    fresh = write(tmp_path, "another run, writing now", ".graddesc.xlsx.zzzz1111.tmp")
    other = age(write(tmp_path, "mine", ".notes.txt.a1b2c3d4.tmp"), 3600)
    atomic.atomic_write(tmp_path / "graddesc.xlsx", lambda p: p.write_text("done"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["graddesc.xlsx", fresh.name, other.name]
    )
    assert not stale.exists()


def test_stale_download_temporary_files_are_swept_by_the_next_fetch(tmp_path):
    import hashlib

    payload = make_zip(tmp_path / "src.zip", {"ml/ratings.csv": GOOD}).read_bytes()
    cache = tmp_path / "cache"
    zip_path = write(cache, payload, download.ZIP_NAME)
    stale = age(write(cache, b"half a download", "tmpk3j_x9q2"), 3600)
    fresh = write(cache, b"a download under way", "tmpabcdefgh")
    keep = age(write(cache, b"a user's file", "tmp_notes.txt"), 3600)
    sha = hashlib.sha256(payload).hexdigest()
    assert (
        download.fetch(cache, sha256=sha, url="http://127.0.0.1:9/none.zip", progress=False)
        == zip_path
    )
    assert not stale.exists() and fresh.exists() and keep.exists()


# ---------------------------------------------------------------- also: pooch does the hashing


def test_fetch_hashes_with_pooch(tmp_path, monkeypatch):
    import pooch

    payload = make_zip(tmp_path / "src.zip", {"ml/ratings.csv": GOOD}).read_bytes()
    zip_path = write(tmp_path / "cache", payload, download.ZIP_NAME)
    calls = []
    real = pooch.hashes.file_hash
    monkeypatch.setattr(pooch.hashes, "file_hash", lambda *a, **k: calls.append(a) or real(*a, **k))
    download.fetch(
        zip_path.parent,
        sha256=real(str(zip_path)),
        url="http://127.0.0.1:9/none.zip",
        progress=False,
    )
    assert calls, "fetch verified the cached zip without pooch.file_hash"
    assert not hasattr(data, "_sha256")
