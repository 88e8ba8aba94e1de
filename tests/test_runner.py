"""`lesson5 run` (runner + report): throwaway notebooks executed into a temporary folder, and the no-data message."""

from __future__ import annotations

import json

import nbformat
import pytest

from lesson5 import cli, report
from lesson5 import data as D

TOY = [
    "from lesson5 import data, report\nds = data.load()\nprint('source:', ds.source, ds.n_users)",
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nreport.save_figure(fig, 'toy_curve')",
    "report.record('ToyModel', valid_rmse=0.81234, seconds=1.25, epochs=2)\n"
    "p = report.output_path('toy.xlsx')\np.write_bytes(b'not really a workbook')\n"
    "report.record('toy.xlsx', kind='workbook', path=p)\n"
    "report.record('toy check', kind='check', fold_in=0.912345, users=50)",
]


def _notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_run_writes_notebooks_html_figures_and_prints_the_summary(tmp_path, capsys, monkeypatch):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs / "00_toy.ipynb", TOY)
    _notebook(nbs / "01_broken.ipynb", ["raise RuntimeError('boom in cell 1')", "print('never')"])
    _notebook(nbs / "02_assert.ipynb", ["x = 1", "y = 2\nassert x > y  # the claim\nprint('never')"])
    _notebook(nbs / "03_after.ipynb", ["print('still ran')"])
    (nbs / "notes.ipynb").write_text("not numbered, so not run")
    monkeypatch.delenv(report.OUT_ENV, raising=False)
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic", "--no-workbooks"])
    text = capsys.readouterr().out
    assert rc == 1  # two notebooks failed
    assert "[1/4] 00_toy.ipynb ... done in" in text
    assert "[2/4] 01_broken.ipynb ... FAILED" in text and "(code cell 1: RuntimeError: boom in cell 1)" in text
    assert "(code cell 2: AssertionError: assert x > y  # the claim)" in text
    assert "[4/4] 03_after.ipynb ... done in" in text
    assert "2 of 4 notebooks ran; the run took" in text and "failed: 01_broken.ipynb, 02_assert.ipynb" in text
    # Executed copies (the failing one keeps its traceback), HTML copies, figure, workbook.
    executed = nbformat.read(out / "00_toy.ipynb", as_version=4)
    assert "source: synthetic 300" in executed.cells[0].outputs[0]["text"]
    broken = nbformat.read(out / "01_broken.ipynb", as_version=4)
    assert broken.cells[0].outputs[0]["ename"] == "RuntimeError"
    html = (out / "html" / "00_toy.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "source: synthetic 300" in html
    assert (out / "figures" / "toy_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "toy.xlsx").exists()
    # The records, tagged with their notebook, and the table printed from them.
    rows = report.read_results(out)
    assert rows[0] == {"name": "ToyModel", "notebook": "00_toy", "valid_rmse": 0.81234, "seconds": 1.25, "epochs": 2}
    line = next(ln for ln in text.splitlines() if "ToyModel" in ln)
    assert line.split() == ["00_toy", "ToyModel", "0.8123", "1.2", "2"]
    assert "workbook  toy.xlsx" in text and str(out / "toy.xlsx") in text
    assert "check     toy check: fold_in=0.9123, users=50" in text
    assert f"figures   1 in {out / 'figures'}" in text
    assert report.OUT_ENV not in __import__("os").environ  # the runner restored the environment


def test_run_without_data_says_so_and_offers_synthetic(tmp_path, capsys, monkeypatch):
    import pooch
    import requests

    def offline(*a, **k):
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    monkeypatch.setenv("LESSON5_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv(D.SOURCE_ENV, raising=False)
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert rc == 2
    assert "MovieLens is not available" in text and "could not download" in text
    assert str(tmp_path / "empty" / D.ZIP_NAME) in text
    assert "python -m lesson5 run --data synthetic" in text
    assert not (tmp_path / "out" / "00_x.ipynb").exists()  # nothing was run


def test_record_is_a_no_op_outside_a_run_and_appends_inside(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.delenv(report.OUT_ENV, raising=False)
    assert report.record("m", valid_rmse=1.0) is None
    assert report.save_figure(object(), "never") is None  # not even touched
    monkeypatch.setenv(report.OUT_ENV, str(tmp_path))
    monkeypatch.setenv(report.NOTEBOOK_ENV, "05_x")
    report.record("a", valid_rmse=np.float32(0.5), epochs=np.int64(3), path=tmp_path / "f", bad=float("nan"))
    report.record("b", seconds=2)
    lines = (tmp_path / report.RESULTS).read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"name": "a", "notebook": "05_x", "valid_rmse": 0.5, "epochs": 3, "path": str(tmp_path / "f"), "bad": None},
        {"name": "b", "notebook": "05_x", "seconds": 2},
    ]
    with pytest.raises(TypeError, match="list"):
        report.record("c", values=[1, 2])


def test_read_results_names_a_corrupt_line(tmp_path):
    (tmp_path / report.RESULTS).write_text('{"name": "a"}\n{"name": \n')
    with pytest.raises(ValueError, match=r"results.jsonl, line 2"):
        report.read_results(tmp_path)


def test_load_honours_the_source_environment_variable(monkeypatch):
    monkeypatch.setenv(D.SOURCE_ENV, "synthetic")
    ds = D.load()
    assert ds.source == "synthetic" and ds.n_users == 300


def fake_export(out_dir, source=None, **_):
    """A stand-in for a lesson5.excel.EXPORTS entry: writes one file, as the real ones do."""
    path = out_dir / f"fake_{source}.xlsx"
    path.write_bytes(b"PK")
    print("exporter chatter that the run hides")
    return [path]


def broken_export(out_dir, **_):
    raise RuntimeError("no LibreOffice today")


def test_run_writes_the_workbooks_of_the_excel_exports(tmp_path, capsys, monkeypatch):
    import lesson5.excel

    monkeypatch.setattr(lesson5.excel, "EXPORTS", (f"{__name__}:broken_export", f"{__name__}:fake_export"))
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic"])
    text = capsys.readouterr().out
    assert rc == 1 and "failed: " in text and "broken_export" in text.splitlines()[-1]
    assert "(RuntimeError: no LibreOffice today)" in text
    assert (out / "workbooks" / "fake_synthetic.xlsx").read_bytes() == b"PK"
    assert "exporter chatter" not in text
    assert "workbook  fake_synthetic.xlsx" in text and str(out / "workbooks" / "fake_synthetic.xlsx") in text
    # --only runs a part of the lesson: no workbooks then.
    (out / "workbooks" / "fake_synthetic.xlsx").unlink()
    assert cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic", "--only", "00"]) == 0
    assert not (out / "workbooks" / "fake_synthetic.xlsx").exists()


def test_a_relative_data_path_reaches_the_kernels(tmp_path, capsys, monkeypatch):
    """Kernels run in the notebooks' folder, so --data given relative to the caller's folder must be made absolute."""
    ds = D.synthetic(n_users=20, n_movies=15, n_ratings=200, seed=1)
    (tmp_path / "ml").mkdir()
    ds.ratings.to_csv(tmp_path / "ml" / "ratings.csv", index=False)
    ds.movies.to_csv(tmp_path / "ml" / "movies.csv", index=False)
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs / "00_x.ipynb", ["from lesson5 import data\nds = data.load()\nprint('users:', ds.n_users)"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(D.SOURCE_ENV, raising=False)
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "ml", "--no-workbooks"])
    assert rc == 0, capsys.readouterr().out
    executed = nbformat.read(out / "00_x.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == f"users: {ds.n_users}\n"
