"""`lesson5 run` on throwaway notebooks; a hung or dead kernel (issue 23) runs in a child process
and must fail within seconds, naming the cell, keeping the cells that ran (the clock is the oracle)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from unittest import mock

import nbformat
from _helpers import python

from lesson5 import data as D
from lesson5 import download
from lesson5.tools import cli

TOY = [
    "from lesson5 import data\nds = data.load()\nprint('source:', ds.source, ds.n_users)",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nplt.show()",
]


def _notebook(path, sources):
    """A notebook of code cells, as a student's: nothing tagged, nothing injected."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def run(nbs, out, *extra: str, data: str | None = "synthetic") -> int:
    """`lesson5 run` of the notebooks in `nbs` into `out`."""
    argv = ["run", "--notebooks", str(nbs), "--out", str(out), *extra]
    return cli.main(argv + (["--data", data] if data else []))


def test_run_writes_notebooks_html_figures_and_prints_the_summary(tmp_path, capsys):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    _notebook(nbs / "00_toy.ipynb", TOY)
    _notebook(nbs / "01_broken.ipynb", ["raise RuntimeError('boom in cell 1')", "print('never')"])
    _notebook(nbs / "02_assert.ipynb", ["x = 1", "y = 2\nassert x > y  # the claim\nprint(0)"])
    _notebook(nbs / "03_after.ipynb", ["print('still ran')"])
    (nbs / "notes.ipynb").write_text("not numbered, so not run")
    assert run(nbs, out, "--no-workbooks") == 1  # two notebooks failed
    text = capsys.readouterr().out
    assert "01_broken.ipynb FAILED" in text
    assert "(code cell 1: RuntimeError: boom in cell 1)" in text
    assert "(code cell 2: AssertionError: assert x > y  # the claim)" in text
    assert "2 of 4 notebooks ran; the run took" in text
    assert "failed: 01_broken.ipynb, 02_assert.ipynb" in text
    # Executed copies (the failing one keeps its traceback), HTML copies, figure.
    # --data reaches the kernel as the user setting data.load() reads; nothing is injected.
    executed = nbformat.read(out / "00_toy.ipynb", as_version=4)
    assert len(executed.cells) == len(TOY)
    assert "source: synthetic 300" in executed.cells[0].outputs[0]["text"]
    broken = nbformat.read(out / "01_broken.ipynb", as_version=4)
    first = next(c for c in broken.cells if c.cell_type == "code")
    assert first.outputs[0]["ename"] == "RuntimeError"
    html = (out / "html" / "00_toy.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "source: synthetic 300" in html
    assert (out / "figures" / "00_toy_fig01.png").read_bytes()[:4] == b"\x89PNG"
    # The table: each notebook's seconds, or FAILED.
    rows = {ln.split()[0]: ln.split()[1] for ln in text.splitlines() if ln[:2].isdigit()}
    assert rows["01_broken.ipynb"] == rows["02_assert.ipynb"] == "FAILED"
    for name in ("00_toy.ipynb", "03_after.ipynb"):
        assert f"{name} done in" in text and float(rows[name]) > 0
    assert "LESSON5_DATA" not in os.environ or os.environ["LESSON5_DATA"] != "synthetic"
    assert f"figures   1 in {out / 'figures'}" in text


def test_run_without_data_says_so_and_offers_synthetic(tmp_path, capsys, monkeypatch):
    import pooch
    import requests

    offline = mock.Mock(side_effect=requests.ConnectionError("Name or service not known"))
    monkeypatch.setattr(pooch, "retrieve", offline)
    monkeypatch.setenv("LESSON5_DATA", str(tmp_path / "empty"))
    nbs = tmp_path / "nbs"
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    assert run(nbs, tmp_path / "out", data=None) == 2
    text = capsys.readouterr().out
    assert "MovieLens is not available" in text and "could not download" in text
    assert str(tmp_path / "empty" / download.ZIP_NAME) in text
    assert "python -m lesson5 run --data synthetic" in text
    assert not (tmp_path / "out" / "00_x.ipynb").exists()  # nothing was run


def test_inplace_with_a_relative_data_path(tmp_path, capsys, monkeypatch):
    """--inplace writes back a clean copy and leaves a failing notebook alone; kernels run in the
    notebooks' folder, so a relative --data is made absolute."""
    ds = D.synthetic(n_users=20, n_movies=15, n_ratings=200, seed=1)
    (tmp_path / "ml").mkdir()
    ds.ratings.to_csv(tmp_path / "ml" / "ratings.csv", index=False)
    ds.movies.to_csv(tmp_path / "ml" / "movies.csv", index=False)
    nbs = tmp_path / "nbs"
    shows = "print(os.environ['LESSON5_DATA'], data.load().n_users)"
    _notebook(nbs / "00_ok.ipynb", ["import os\nfrom lesson5 import data", shows])
    _notebook(nbs / "01_bad.ipynb", ["x = 1", "1 / 0"])
    before = (nbs / "01_bad.ipynb").read_text()
    monkeypatch.chdir(tmp_path)
    assert run(nbs, "out", "--inplace", "--no-workbooks", data="ml") == 1
    assert "code cell 2: ZeroDivisionError" in capsys.readouterr().out
    nb = nbformat.read(nbs / "00_ok.ipynb", as_version=4)
    assert len(nb.cells) == 2  # nothing injected
    assert nb.cells[1].outputs[0]["text"] == f"{tmp_path.resolve() / 'ml'} {ds.n_users}\n"
    assert "papermill" not in nb.metadata and all("papermill" not in c.metadata for c in nb.cells)
    assert (nbs / "01_bad.ipynb").read_text() == before


def fake_write_all(out_dir, *, source=None, top_n=15, seed=42):
    """A stand-in for lesson5.excel.write_all: writes two files, as the real one writes three."""
    paths = [out_dir / f"fake_{source}.xlsx", out_dir / "other.xlsx"]
    for path in paths:
        path.write_bytes(b"PK")
    print("exporter chatter that the run hides")
    return paths


def test_run_writes_the_workbooks_of_write_all(tmp_path, capsys, monkeypatch):
    import lesson5.excel

    monkeypatch.setattr(lesson5.excel, "write_all", fake_write_all)
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    assert run(nbs, out) == 0
    text = capsys.readouterr().out
    assert (out / "workbooks" / "fake_synthetic.xlsx").read_bytes() == b"PK"
    assert "exporter chatter" not in text
    assert "-> fake_synthetic.xlsx, other.xlsx" in text
    assert f"workbook  {out / 'workbooks' / 'fake_synthetic.xlsx'}" in text
    # A failure is reported with its cause and fails the run.
    broken = mock.Mock(side_effect=RuntimeError("no LibreOffice today"))
    monkeypatch.setattr(lesson5.excel, "write_all", broken)
    rc = run(nbs, out)
    text = capsys.readouterr().out
    assert rc == 1 and text.splitlines()[-1] == "failed: workbooks"
    assert "(RuntimeError: no LibreOffice today)" in text
    # --only runs a part of the lesson: no workbooks then (the broken write_all is not called).
    assert run(nbs, out, "--only", "00") == 0


def test_the_default_notebooks_are_the_lessons():
    """`lesson5 run` without --notebooks runs the checkout's notebooks (00 to 06)."""
    from lesson5.tools import runner

    names = sorted(p.name[:3] for p in runner.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert names[0] == "00_" and len(names) >= 7, runner.NOTEBOOKS


def test_two_at_a_time_gives_what_one_at_a_time_gives(tmp_path, capsys):
    """`make lesson` runs two notebooks at once: each output is what a serial run writes."""
    here = Path.cwd()
    nbs = tmp_path / "nbs"
    for i in range(2):  # the first to start ends first; each says if it runs in its own folder
        code = f"import os, time\ntime.sleep({0.5 * (i + 1)})\nprint('notebook', {i}, "
        code += f"sum(range({i} + 5)), os.getcwd() == {str(nbs)!r})"
        _notebook(nbs / f"0{i}_n.ipynb", [code])
    outs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        assert run(nbs, out, "--no-workbooks", "--jobs", jobs) == 0
        outs[jobs] = {
            p.name: nbformat.read(p, as_version=4).cells[0].outputs[0]["text"]
            for p in sorted(out.glob("*.ipynb"))
        }
    assert outs["1"] == outs["2"] and len(outs["1"]) == 2
    assert all(text.endswith("True\n") for text in outs["2"].values())
    assert Path.cwd() == here  # the run leaves this process's folder alone
    table = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln[:2].isdigit()]
    assert table[-2:] == ["00_n.ipynb", "01_n.ipynb"]  # the table in order


def test_a_dead_and_a_hung_kernel_fail_their_notebooks_promptly_and_the_next_runs(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    says = {  # notebook -> (its second cell, what the run says of it)
        "00_dies": ("import os; os._exit(1)", "code cell 2: the kernel died"),
        "01_hangs": ("import time; time.sleep(60)", "code cell 2: still running after the "
                     "per-cell timeout of 3 s, so it was stopped; raise"),
    }  # fmt: skip
    for name, (cell, _) in says.items():
        _notebook(nbs / f"{name}.ipynb", ["print('before')", cell, "print('after')"])
    _notebook(nbs / "02_fine.ipynb", ["print('still here')"])
    argv = ["run", "--notebooks", str(nbs), "--out", str(out), "--no-workbooks", "--timeout", "3"]
    start = time.perf_counter()
    proc = python("-m", "lesson5", *argv, "--data", "synthetic", timeout=150)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert time.perf_counter() - start < 40  # the hung cell alone would take 60 s
    for name, (_, why) in says.items():
        assert f"{name}.ipynb FAILED" in proc.stdout and why in proc.stdout, proc.stdout
        executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert executed.cells[0].outputs[0]["text"] == "before\n"
        assert executed.cells[2].outputs == []
    assert "02_fine.ipynb done" in proc.stdout
