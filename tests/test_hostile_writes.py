"""Writing where it does not fit (issue 23): a full disk (`ulimit -f` in a child, or ENOSPC), Excel's
limits (read back by openpyxl, recalculated by LibreOffice), a stdout that is not UTF-8."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from _excel_helpers import require_soffice
from _helpers import one_line, python, write
from openpyxl import load_workbook

from lesson5 import atomic
from lesson5.excel import book, collab, recalc

BIG = 2**53  # beyond it, a double cannot tell neighbouring integers apart


# ---------------------------------------------------------------- a full disk

# The code runs in a child under `ulimit -f` (RLIMIT_FSIZE); out is the folder it writes into.
UNDER_A_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
from lesson5.tools import cli
out = sys.argv[1]
{setup}
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.exit({call})
"""
SYNTHETIC_MODEL = """
from lesson5 import data, inference, models
ds = data.synthetic(n_users=40, n_movies=60, n_ratings=800)
model = models.EmbeddingDotBias(ds.n_users, ds.n_movies, 50)
"""


@pytest.mark.parametrize(
    "limit, setup, call, name, absent",
    [
        # The first of the exported workbooks does not fit.
        (5000, "", "cli.main(['excel', '--out', out, '--source', 'synthetic', '--top-n', '3'])", collab.FILENAME, "Traceback"),  # noqa: E501
        # Room for openpyxl's temporary sheet (a few hundred bytes), not for the 5 kB workbook:
        # the workbook's own write fails, not a temporary sheet's.
        (2000, "from openpyxl import Workbook\nfrom lesson5.excel import book",
         "cli.guarded(lambda: book.save_atomic(Workbook(), out + '/w.xlsx') and 0)", "w.xlsx", "openpyxl"),
        (20_000, SYNTHETIC_MODEL,
         "cli.guarded(lambda: inference.save_model(out + '/model.pt', model, ds) and 0)", "model.pt", "unexpected pos"),
    ],
    ids=["excel export", "workbook", "model"],
)  # fmt: skip
def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, limit, setup, call, name, absent):
    code = UNDER_A_SIZE_LIMIT.format(limit=limit, setup=setup, call=call)
    proc = python("-c", code, str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith(f"error: cannot write {tmp_path / name}: the disk is full"), line
    assert absent not in line and list(tmp_path.iterdir()) == [], line


def test_a_write_that_runs_out_of_space_names_the_file_and_leaves_the_old_one(tmp_path):
    target = write(tmp_path, "the copy from before", "graddesc.xlsx")

    def fills_the_disk(tmp: Path) -> None:
        tmp.write_text("half a workbook")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        atomic.atomic_write(target, fills_the_disk)
    assert str(info.value).startswith(f"cannot write {target}: the disk is full")
    assert info.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["graddesc.xlsx"]
    assert target.read_text() == "the copy from before"


# ---------------------------------------------------------------- Excel's limits


def hostile_source(folder: Path) -> Path:
    """Three users beyond 2**53 (one apart) and a small one; titles Excel and XML cannot hold."""
    pairs = [(u, m) for u in (BIG + 1, BIG + 2, BIG + 3, 7) for m in (1, 2, 3)]
    ratings = [1.0, 2.0, 3.5, 4.0, 5.0, 2.5, 3.0, 4.5, 1.5, 0.5, 5.0, 4.0]
    rows = "".join(f"{u},{m},{r}\n" for (u, m), r in zip(pairs, ratings))
    write(folder, "userId,movieId,rating\n" + rows)
    emoji = "\U0001f600" * 32767  # 65,534 UTF-16 code units: twice what a cell holds
    write(folder, f'movieId,title\n1,"a \ufffe b \uffff c"\n2,{emoji}\n3,plain\n', "movies.csv")
    return folder


@pytest.mark.libreoffice
def test_titles_ids_and_the_long_format_rmse_survive_excel(tmp_path):
    from lesson5 import excel

    require_soffice()
    source = hostile_source(tmp_path / "src")
    (tmp_path / "out").mkdir()
    paths = excel.write_all(tmp_path / "out", source=str(source), top_n=3)[:2]
    for path in paths:
        wb = load_workbook(path)  # U+FFFE written raw makes this raise
        titles = [wb["movie titles"].cell(r, 2).value for r in (5, 6, 7)]
        assert titles[0] == "a \\ufffe b \\uffff c" and titles[2] == "plain"
        assert len(titles[1].encode("utf-16-le")) // 2 <= 32767 and titles[1].endswith("\u2026")
        assert titles[1].startswith("\U0001f600" * 1000)
        ids = [wb["dotprod"].cell(r, 1).value for r in (3, 4, 5)]
        assert ids == [7, str(BIG + 1), str(BIG + 2)]  # exact: as text beyond 2**53
    for values in recalc.recalculated_names(paths, tmp_path / "recalculated"):
        long_rmse, dot_rmse = values["long_rmse"][0, 0], values["dotprod_rmse"][0, 0]
        assert isinstance(long_rmse, float) and long_rmse == pytest.approx(dot_rmse, rel=1e-12)


def test_cell_text_is_xml_safe_and_excel_sized():
    assert book.text("x\ufffey\x00z\ud800") == "x\\ufffey\\x00z\\ud800"
    assert book.text("\U0001f600" * 20000).count("\U0001f600") == 16383
    assert book.text("é" * 40000) == "é" * 32766 + "\u2026"
    assert book.text("short \U0001f600") == "short \U0001f600"
    assert book.exact(BIG) == BIG and book.exact(BIG + 1) == str(BIG + 1)


def test_lesson5_data_prints_on_a_cp1252_stdout(tmp_path):
    path = write(tmp_path / "snow \u2603 man", "userId,movieId,rating\n1,31,2.5\n2,31,4.0\n")
    env = {"PYTHONIOENCODING": "cp1252"}
    proc = python("-m", "lesson5", "data", "--source", str(path), env=env, encoding="cp1252")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout
    assert "source:  " in out and "snow ? man" in out and "ratings: 2" in out
