"""benchmarks/bench.py: rows run in spawned processes; raw records make the README's table."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

from lesson5 import device

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "benchmarks"))  # a spawned row imports bench (and peers) by name
bench = importlib.import_module("bench")


def record(label, kind, rmse, seconds=(1.0, 1.0), seed=0, bs=64, model="EmbeddingDotBias", **more):
    """A raw record as `--results` writes one per run (most of the environment left out)."""
    runs = dict(seconds=[*seconds], valid_rmse=rmse, peak_mb=100.0 + seed, loadavg=[1 + seed])
    more = dict(device="cpu", threads=1, **more)
    return dict(runs, label=label, kind=kind, model=model, bs=bs, seed=seed, **more)


def test_table_from_a_records_file(tmp_path, capsys):
    recs = [record("fastai", "fastai", [0.9, r], seed=i) for i, r in enumerate([0.86, 0.87, 0.85])]
    recs += [record("svd", "surprise", [None, 0.88], model="SVD (Surprise)", params={"k": 5})]
    recs += [record("fast", "lesson5", [0.855, 0.835], seconds=(0.5, 0.5), seed=i) for i in (0, 1)]
    recs += [record("half", "lesson5", [r], (1.0,), i, 256) for i, r in enumerate([0.859, 0.87])]
    recs += [record("big", "lesson5", [0.5], seconds=(10.0,), bs=65536, scale="scale-train")]
    recs += [record("read", "read_csv", [None], seconds=(500.0,), bs=0, scale="scale-read")]
    path, readme = tmp_path / "r.jsonl", tmp_path / "README.md"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    readme.write_text(f"above\n{bench.BEGIN}\nold\n{bench.END}\nbelow\n")
    assert bench.main(["--table", str(path), "--readme", str(readme)]) == 0
    table = capsys.readouterr().out.strip()
    assert readme.read_text() == f"above\n{bench.BEGIN}\n{table}\n{bench.END}\nbelow\n"
    # The target is the fastai row's median (0.86), not its best run; times by hand.
    assert "Target RMSE 0.8600: the best peer's median final RMSE, fastai (Embedding" in table
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert ["|".join(c.strip() for c in line.strip("|").split("|")) for line in rows] == [
        "fastai|EmbeddingDotBias|64|cpu|1|3|1.000|2.00|0.8600 (0.8500-0.8700)|2/3: 2.00|101 (100-102)",
        "svd|SVD (Surprise)|64|cpu|1|1|1.000|2.00|0.8800|never|100",
        "fast|EmbeddingDotBias|64|cpu|1|2|0.500|1.00|0.8350|0.50|100 (100-101)",
        "half|EmbeddingDotBias|256|cpu|1|2|1.000|1.00|0.8645 (0.8590-0.8700)|1/2: 1.00|100 (100-101)",
        "big|EmbeddingDotBias|65536|cpu|1|1|10.000|10.00|0.5000|-|100",
        "read|EmbeddingDotBias|-|cpu|1|1|500.000|500.00|-|-|100",
    ]
    assert table.endswith("""
Surprise tuned: parameters chosen on a holdout of the training rows, per seed:
- svd, seed 0: {'k': 5}

Accuracy targets (median final RMSE over the seeds):
- PASS fast EmbeddingDotBias bs 64: median 0.8350 over 2 seeds (target <= 0.840)
- MISS half EmbeddingDotBias bs 256: median 0.8645 over 2 seeds (target <= 0.840)

Scale targets:
- PASS big: 10.0 s (target <= 60 s), peak 0.10 GB (target <= 8 GB)
- MISS read: 500.0 s (target <= 60 s), peak 0.10 GB (target <= 8 GB)""")
    assert "No peer rows in this run, so no target RMSE." in bench.markdown_table(recs[4:])


def test_the_committed_readme_table_is_the_one_its_results_file_generates():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    shown = text.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0].strip("\n")
    source = shown.split("--table ", 1)[1].split()[0]
    assert shown == bench.markdown_table(bench.read_records(ROOT / source), source)


def test_a_bad_records_file_is_one_line(tmp_path, capsys):
    path, good = tmp_path / "r.jsonl", json.dumps(record("a", "lesson5", [0.9]))
    for content, error in [
        (None, f"results file {path} does not exist"),
        ("", f"results file {path} holds no records"),
        ('{"label": 1}\nnot json\n', f"{path}, line 1: a record without kind, model, bs"),
        (good + "\n[1]\n", f"{path}, line 2: a record without fields"),
        (good + "\n{\n", f"{path}, line 2: not a JSON record"),
    ]:
        if content is not None:
            path.write_text(content)
        assert bench.main(["--table", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and error in err, err


def test_a_spawned_row_returns_its_record_and_its_own_peak(tmp_path):
    """Oracle: a child reading 5,000 rows peaks far below a parent that grew by 600 MB first."""
    big = b"x" * (600 * 2**20)  # every page written: resident in this process
    path = tmp_path / "ratings.csv"
    bench.write_ratings_csv(path, 5_000, n_users=300, n_movies=200, chunk=1_500)
    res = bench.run_in_child(dict(kind="read_csv", recipe="-", bs=0, path=str(path)), 120)
    assert res["rows"] == 5_000 and res["seconds"][0] > 0 and 0 < res["peak_mb"] < 300 < len(big)
    spec = dict(kind="lesson5", recipe="onecycle-bias", bs=512, source="synthetic", epochs=2)
    res = bench.run_in_child(dict(spec, device="cpu", threads=1, seed=1), 300)
    assert res["model"] == "EmbeddingDotBias" and len(res["seconds"]) == 2 and res["seed"] == 1
    assert res["flush_denormal"] == device.FLUSHES_SUBNORMALS and res["threads"] == 1
    loop = bench.run_row(dict(spec, kind="dataloader", device="cpu"))
    assert len(loop["valid_rmse"]) == 2 and 0 < loop["valid_rmse"][-1] < 2
    with pytest.raises(bench.RowFailed, match=r"no result within 0.01 s"):
        bench.run_in_child(spec, 0.01)


def test_a_lesson5_row_records_the_threads_fit_trained_with(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # torch's own choice: two threads here
    monkeypatch.setattr(device, "_TORCH_THREADS", 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        spec = dict(kind="lesson5", recipe="onecycle-bias", source="synthetic", epochs=1, seed=0)
        small, big = (bench.run_row(dict(spec, bs=bs, device="cpu")) for bs in (64, 1024))
    finally:
        torch.set_num_threads(before)
    assert (small["threads"], big["threads"]) == (1, 2)


def test_rows_run_in_rounds_of_seeds_into_strict_json(monkeypatch, tmp_path, capsys):
    rows = [(f"row {bs}", dict(kind="lesson5", recipe="r", bs=bs)) for bs in (64, 1024)]
    rows += [("once", dict(kind="read_csv", recipe="-", bs=0, n=500, runs=1))]
    done = dict(model="m", device="cpu", seconds=[1, 1], valid_rmse=[float("nan"), 0.9], threads=1)
    done.update(peak_mb=1, loadavg=[1.0])
    monkeypatch.setattr(bench, "run_in_child", lambda s, _: dict(done, bs=s["bs"], seed=s["seed"]))
    monkeypatch.setattr(bench, "default_rows", lambda *a: rows)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    out = tmp_path / "sub" / "r.jsonl"
    assert bench.main(["--runs", "2", "--results", str(out)]) == 0
    back = [json.loads(line) for line in out.read_text().splitlines()]  # strict: nan is null
    # seed 0 of every row, then seed 1: a drifting machine slows every row alike
    assert [(r["bs"], r["seed"]) for r in back] == [(64, 0), (1024, 0), (0, 0), (64, 1), (1024, 1)]
    assert [r["valid_rmse"] for r in back] == [[None, 0.9]] * 5 and back[0]["label"] == "row 64"
    assert {r["versions"]["lesson5"] for r in back} != {None} and "steal_pct" in back[0]
    printed = capsys.readouterr().out
    assert "| row 64 " in printed and printed.count("not installed, so its rows are missing") == 2


def test_default_rows_cover_the_issue():
    rows = bench.default_rows("cpu", 2)
    assert " ".join(f"{s['kind']}/{s.get('peer_recipe', '')}/{s['bs']}" for _, s in rows) == (
        "fastai/own/64 fastai/ours/64 fastai/own/1024 fastai/ours/1024 fastai/own/1024 "  # peers
        "surprise/default/1 surprise/tuned/1 lesson5//64 lesson5//256 lesson5//1024 lesson5//64 "
        "lesson5//1024 dataloader//64 dataloader//1024 lesson5//65536 read_csv//0"  # then scale
    )
    scale = {s["scale"]: s for _, s in rows if s.get("scale")}
    shape = dict(n_users=200_000, n_movies=87_000, n_ratings=32_000_000)
    assert scale["scale-train"]["synthetic"] == shape and scale["scale-read"]["n"] == 32_000_000
    assert not any(s.get("scale") for _, s in bench.default_rows("cpu", None, 0))


# The peer rows run only where fastai / Surprise are installed (`make bench` builds such a venv).
@pytest.mark.parametrize("kind, p", [("fastai", "own"), ("fastai", "ours"), ("surprise", "tuned")])
def test_peer_rows_on_synthetic_data(kind, p, monkeypatch):
    pytest.importorskip(kind)
    grid = dict(n_factors=(5, 20), n_epochs=(10,), lr_all=(0.01,), reg_all=(0.1,))
    monkeypatch.setattr(importlib.import_module("peers"), "SVD_GRID", grid)
    spec = dict(kind=kind, peer_recipe=p, recipe="onecycle-bias", bs=512, source="synthetic")
    res = bench.run_row(dict(spec, device="cpu"))
    assert res["device"] == "cpu" and len(res["seconds"]) == res["epochs"]
    assert 0 < res["valid_rmse"][-1] < 2
    if kind == "surprise":
        assert res["params"]["n_factors"] in (5, 20) and res["tune_s"] > 0 and res["epochs"] == 10
        return
    ours = bench._recipe(spec)
    assert (res["lr"], res["wd"]) == ((5e-3, 0.1) if p == "own" else (ours.stages[0][1], ours.wd))
    assert bench.run_row(dict(spec, device="cpu"))["valid_rmse"] == res["valid_rmse"]  # seeded
