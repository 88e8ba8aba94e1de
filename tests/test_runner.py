"""`lesson5 run` (runner + report): throwaway notebooks executed into a temporary folder, and the no-data message."""

from __future__ import annotations

import json

import nbformat
import pytest

from lesson5 import data as D
from lesson5 import download
from lesson5.tools import cli, report

PARAMS = "source = None\nout = None"
TOY = [
    PARAMS,
    "from lesson5 import data\nfrom lesson5.tools import report\n"
    "ds = data.load(source)\nprint('source:', ds.source, ds.n_users)",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nplt.show()",
    "report.record(out, 'ToyModel', notebook='00_toy', valid_rmse=0.81234, seconds=1.25, epochs=2)\n"
    "report.record(out, 'toy check', notebook='00_toy', kind='check', fold_in=0.912345, users=50)",
]


def _notebook(path, sources):
    """A notebook of code cells; a first cell that assigns `source` and `out` is tagged `parameters`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if sources and sources[0] == PARAMS:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)


def test_run_writes_notebooks_html_figures_and_prints_the_summary(tmp_path, capsys, monkeypatch):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs / "00_toy.ipynb", TOY)
    _notebook(nbs / "01_broken.ipynb", ["raise RuntimeError('boom in cell 1')", "print('never')"])
    _notebook(
        nbs / "02_assert.ipynb", ["x = 1", "y = 2\nassert x > y  # the claim\nprint('never')"]
    )
    _notebook(nbs / "03_after.ipynb", ["print('still ran')"])
    (nbs / "notes.ipynb").write_text("not numbered, so not run")
    rc = cli.main(
        ["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic", "--no-workbooks"]
    )
    text = capsys.readouterr().out
    assert rc == 1  # two notebooks failed
    assert "[1/4] 00_toy.ipynb ... done in" in text
    assert (
        "[2/4] 01_broken.ipynb ... FAILED" in text
        and "(code cell 1: RuntimeError: boom in cell 1)" in text
    )
    assert "(code cell 2: AssertionError: assert x > y  # the claim)" in text
    assert "[4/4] 03_after.ipynb ... done in" in text
    assert (
        "2 of 4 notebooks ran; the run took" in text
        and "failed: 01_broken.ipynb, 02_assert.ipynb" in text
    )
    # Executed copies (the failing one keeps its traceback), HTML copies, figure, workbook.
    executed = nbformat.read(out / "00_toy.ipynb", as_version=4)
    # The parameters arrive as papermill's injected cell right after the one tagged `parameters`.
    assert executed.cells[1].metadata.tags == ["injected-parameters"]
    assert f'out = "{out}"' in executed.cells[1].source
    assert "source: synthetic 300" in executed.cells[2].outputs[0]["text"]
    broken = nbformat.read(out / "01_broken.ipynb", as_version=4)
    first = next(
        c
        for c in broken.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.tags
    )
    assert first.outputs[0]["ename"] == "RuntimeError"
    html = (out / "html" / "00_toy.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "source: synthetic 300" in html
    assert (out / "figures" / "00_toy_fig01.png").read_bytes()[:4] == b"\x89PNG"
    # The records, tagged with their notebook, and the table printed from them.
    rows = report.read_results(out)
    assert rows[0] == {
        "name": "ToyModel",
        "notebook": "00_toy",
        "valid_rmse": 0.81234,
        "seconds": 1.25,
        "epochs": 2,
    }
    line = next(ln for ln in text.splitlines() if "ToyModel" in ln)
    assert line.split() == ["00_toy", "ToyModel", "0.8123", "1.2", "2"]
    assert "check     toy check: fold_in=0.9123, users=50" in text
    assert f"figures   1 in {out / 'figures'}" in text


def test_run_without_data_says_so_and_offers_synthetic(tmp_path, capsys, monkeypatch):
    import pooch
    import requests

    def offline(*a, **k):
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    monkeypatch.setenv("LESSON5_DATA", str(tmp_path / "empty"))
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert rc == 2
    assert "MovieLens is not available" in text and "could not download" in text
    assert str(tmp_path / "empty" / download.ZIP_NAME) in text
    assert "python -m lesson5 run --data synthetic" in text
    assert not (tmp_path / "out" / "00_x.ipynb").exists()  # nothing was run


def test_record_is_a_no_op_without_out_and_appends_with_it(tmp_path):
    import numpy as np

    assert report.record(None, "m", valid_rmse=1.0) is None
    assert not (tmp_path / report.RESULTS).exists()
    report.record(
        tmp_path,
        "a",
        notebook="05_x",
        valid_rmse=np.float32(0.5),
        epochs=np.int64(3),
        path=tmp_path / "f",
        bad=float("nan"),
    )
    report.record(str(tmp_path), "b", notebook="05_x", seconds=2)
    lines = (tmp_path / report.RESULTS).read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {
            "name": "a",
            "notebook": "05_x",
            "valid_rmse": 0.5,
            "epochs": 3,
            "path": str(tmp_path / "f"),
            "bad": None,
        },
        {"name": "b", "notebook": "05_x", "seconds": 2},
    ]
    with pytest.raises(TypeError, match="list"):
        report.record(tmp_path, "c", values=[1, 2])


def test_inplace_writes_back_clean_and_leaves_a_failing_notebook_alone(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "00_ok.ipynb", [PARAMS, "print('source is', source)"])
    _notebook(nbs / "01_bad.ipynb", [PARAMS, "1 / 0"])
    before = (nbs / "01_bad.ipynb").read_text()
    rc = cli.main(
        [
            "run",
            "--notebooks",
            str(nbs),
            "--out",
            str(tmp_path / "out"),
            "--inplace",
            "--no-workbooks",
            "--data",
            "synthetic",
        ]
    )  # no MovieLens needed: in place, the notebooks keep their defaults
    assert rc == 1
    assert "code cell 2: ZeroDivisionError" in capsys.readouterr().out
    nb = nbformat.read(nbs / "00_ok.ipynb", as_version=4)
    assert len(nb.cells) == 2  # no injected parameters: a student's defaults
    assert nb.cells[1].outputs[0]["text"] == "source is None\n"
    assert "papermill" not in nb.metadata and all("papermill" not in c.metadata for c in nb.cells)
    assert (nbs / "01_bad.ipynb").read_text() == before


def test_read_results_names_a_corrupt_line(tmp_path):
    (tmp_path / report.RESULTS).write_text('{"name": "a"}\n{"name": \n')
    with pytest.raises(ValueError, match=r"results.jsonl, line 2"):
        report.read_results(tmp_path)


def fake_write_all(out_dir, *, source=None, top_n=15, seed=42):
    """A stand-in for lesson5.excel.write_all: writes two files, as the real one writes three."""
    paths = [out_dir / f"fake_{source}.xlsx", out_dir / "other.xlsx"]
    for path in paths:
        path.write_bytes(b"PK")
    print("exporter chatter that the run hides")
    return paths


def broken_write_all(out_dir, *, source=None, top_n=15, seed=42):
    raise RuntimeError("no LibreOffice today")


def test_run_writes_the_workbooks_of_write_all(tmp_path, capsys, monkeypatch):
    import lesson5.excel

    monkeypatch.setattr(lesson5.excel, "write_all", fake_write_all)
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs / "00_x.ipynb", ["print(1)"])
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert (out / "workbooks" / "fake_synthetic.xlsx").read_bytes() == b"PK"
    assert "exporter chatter" not in text
    assert "-> fake_synthetic.xlsx, other.xlsx" in text
    assert (
        "workbook  fake_synthetic.xlsx" in text
        and str(out / "workbooks" / "fake_synthetic.xlsx") in text
    )
    # A failure is reported with its cause and fails the run.
    monkeypatch.setattr(lesson5.excel, "write_all", broken_write_all)
    rc = cli.main(["run", "--notebooks", str(nbs), "--out", str(out), "--data", "synthetic"])
    text = capsys.readouterr().out
    assert rc == 1 and text.splitlines()[-1] == "failed: workbooks"
    assert "(RuntimeError: no LibreOffice today)" in text
    # --only runs a part of the lesson: no workbooks then.
    monkeypatch.setattr(lesson5.excel, "write_all", fake_write_all)
    (out / "workbooks" / "fake_synthetic.xlsx").unlink()
    assert (
        cli.main(
            [
                "run",
                "--notebooks",
                str(nbs),
                "--out",
                str(out),
                "--data",
                "synthetic",
                "--only",
                "00",
            ]
        )
        == 0
    )
    assert not (out / "workbooks" / "fake_synthetic.xlsx").exists()


def test_a_relative_data_path_reaches_the_kernels(tmp_path, capsys, monkeypatch):
    """Kernels run in the notebooks' folder, so --data given relative to the caller's folder must be made absolute."""
    ds = D.synthetic(n_users=20, n_movies=15, n_ratings=200, seed=1)
    (tmp_path / "ml").mkdir()
    ds.ratings.to_csv(tmp_path / "ml" / "ratings.csv", index=False)
    ds.movies.to_csv(tmp_path / "ml" / "movies.csv", index=False)
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(
        nbs / "00_x.ipynb",
        [PARAMS, "from lesson5 import data\nds = data.load(source)\nprint('users:', ds.n_users)"],
    )
    monkeypatch.chdir(tmp_path)
    rc = cli.main(
        ["run", "--notebooks", str(nbs), "--out", str(out), "--data", "ml", "--no-workbooks"]
    )
    assert rc == 0, capsys.readouterr().out
    executed = nbformat.read(out / "00_x.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"] == f"users: {ds.n_users}\n"


def test_the_default_notebooks_are_the_lessons():
    """`lesson5 run` without --notebooks runs the checkout's notebooks (00 to 06), wherever the runner sits."""
    from lesson5.tools import runner

    names = sorted(p.name[:3] for p in runner.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert names[0] == "00_" and len(names) >= 7, runner.NOTEBOOKS
