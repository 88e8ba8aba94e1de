"""benchmarks/bench.py: rows run in spawned processes; raw records make the README's table."""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
from pathlib import Path

import pytest

from lesson5.device import FLUSHES_SUBNORMALS

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "benchmarks"))  # a spawned row imports bench (and peers) by name
bench = importlib.import_module("bench")


def record(label, kind, rmse, seconds=(1.0, 1.0), seed=0, bs=64, model="EmbeddingDotBias", **more):
    """A raw record as `--results` writes one per run (the environment's fields trimmed)."""
    return dict(
        label=label,
        kind=kind,
        model=model,
        bs=bs,
        seed=seed,
        device="cpu",
        threads=1,
        seconds=list(seconds),
        valid_rmse=list(rmse),
        peak_mb=100.0 + seed,
        loadavg=[1.0 + seed, 1, 1],
        versions={"torch": "x"},
        **more,
    )


def cells(table: str) -> dict:
    """The markdown table's rows by (row, bs): column name -> cell."""
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    head, *body = [cs for cs in lines if len(cs) > 5 and not set(cs[0]) <= set(":-")]
    return {(r[0], r[2]): dict(zip(head, r)) for r in body}


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
    # the median of the three fastai runs, not their best
    assert (
        "Target RMSE 0.8600: the best peer's median final RMSE, fastai (EmbeddingDotBias, bs 64)"
        in table
    )
    rows = cells(table)
    assert rows["fastai", "64"]["valid RMSE"] == "0.8600 (0.8500-0.8700)"
    assert (
        rows["fastai", "64"]["peak MB"] == "101 (100-102)" and rows["fastai", "64"]["runs"] == "3"
    )
    assert (
        rows["svd", "64"]["valid RMSE"] == "0.8800" and rows["svd", "64"]["to target s"] == "never"
    )
    assert rows["fast", "64"]["to target s"] == "0.50" and rows["fast", "64"]["fit s"] == "1.00"
    assert rows["half", "256"]["to target s"] == "1/2: 1.00"
    assert rows["big", "65536"]["to target s"] == "-" and rows["read", "-"]["valid RMSE"] == "-"
    assert rows["read", "-"]["thr"] == "1" and rows["read", "-"]["epoch s"] == "500.000"
    assert "- svd, seed 0: {'k': 5}" in table
    assert (
        "- PASS fast EmbeddingDotBias bs 64: median 0.8350 over 2 seeds (target <= 0.840)" in table
    )
    assert "- MISS half EmbeddingDotBias bs 256: median 0.8645 over 2 seeds" in table
    assert "- PASS big: 10.0 s (target <= 60 s), peak 0.10 GB (target <= 8 GB)" in table
    assert "- MISS read: 500.0 s (target <= 60 s)" in table
    ours = [r for r in recs if r["kind"] == "lesson5"]
    assert "No peer rows in this run, so no target RMSE." in bench.markdown_table(ours)


def test_the_committed_readme_table_is_the_one_its_results_file_generates():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    shown = text.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0].strip("\n")
    source = shown.split("--table ", 1)[1].split()[0]
    assert shown == bench.markdown_table(bench.read_records(ROOT / source), source)


@pytest.mark.parametrize(
    "content, error",
    [
        (None, r"results file .*r.jsonl does not exist"),
        ("", r"results file .*r.jsonl holds no records"),
        ('{"label": 1}\nnot json\n', r"r.jsonl, line 1: a record without kind, model"),
        (
            json.dumps(record("a", "lesson5", [0.9])) + "\n[1]\n",
            r"r.jsonl, line 2: .* without fields",
        ),
        (
            json.dumps(record("a", "lesson5", [0.9])) + "\n{\n",
            r"r.jsonl, line 2: not a JSON record",
        ),
    ],
)
def test_a_bad_records_file_is_one_line(tmp_path, capsys, content, error):
    if content is not None:
        (tmp_path / "r.jsonl").write_text(content)
    assert bench.main(["--table", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(error, err), err


def test_a_spawned_row_returns_its_record_and_its_own_peak(tmp_path):
    """Oracle: a child that reads 5,000 rows peaks far below a parent that grew by 600 MB first."""
    big = b"x" * (600 * 2**20)  # every page written: resident in this process
    path = tmp_path / "ratings.csv"
    bench.write_ratings_csv(path, 5_000, n_users=300, n_movies=200, chunk=1_500)
    res = bench.run_in_child(dict(kind="read_csv", recipe="-", bs=0, path=str(path)), 120)
    assert res["rows"] == 5_000 and res["seconds"][0] > 0 and 0 < res["peak_mb"] < 300 < len(big)
    spec = dict(kind="lesson5", recipe="onecycle-bias", bs=512, source="synthetic", epochs=2)
    res = bench.run_in_child(dict(spec, device="cpu", threads=1, seed=1), 300)
    assert res["model"] == "EmbeddingDotBias" and len(res["seconds"]) == 2 and res["seed"] == 1
    assert res["flush_denormal"] == FLUSHES_SUBNORMALS and res["threads"] == 1
    loop = bench.run_row(dict(spec, kind="dataloader", device="cpu"))
    assert len(loop["valid_rmse"]) == 2 and 0 < loop["valid_rmse"][-1] < 2
    with pytest.raises(bench.RowFailed, match=r"no result within 0.01 s"):
        bench.run_in_child(spec, 0.01)


def test_rows_run_in_rounds_of_seeds_into_strict_json(monkeypatch, tmp_path, capsys):
    rows = [(f"row {bs}", dict(kind="lesson5", recipe="r", bs=bs)) for bs in (64, 1024)]
    rows += [("once", dict(kind="read_csv", recipe="-", bs=0, n=500, runs=1))]
    calls = []

    def child(spec, timeout):
        calls.append((spec["bs"], spec["seed"]))
        out = dict(
            model="m", device="cpu", seconds=[1.0, 1.0], valid_rmse=[math.nan, 0.9], peak_mb=1
        )
        return dict(out, bs=spec["bs"], seed=spec["seed"], threads=1, loadavg=(1.0, 1.0, 1.0))

    monkeypatch.setattr(bench, "default_rows", lambda *a: rows)
    monkeypatch.setattr(bench, "run_in_child", child)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    out = tmp_path / "sub" / "r.jsonl"
    assert bench.main(["--runs", "2", "--results", str(out)]) == 0
    assert calls == [(64, 0), (1024, 0), (0, 0), (64, 1), (1024, 1)]
    back = [json.loads(line) for line in out.read_text().splitlines()]  # strict: nan is null
    assert [r["valid_rmse"] for r in back] == [[None, 0.9]] * 5 and back[0]["label"] == "row 64"
    assert {r["versions"]["lesson5"] for r in back} != {None} and "steal_pct" in back[0]
    printed = capsys.readouterr().out
    assert (
        "| row 64 " in printed and "fastai is not installed" in printed and "make bench" in printed
    )


def test_default_rows_cover_the_issue():
    rows = bench.default_rows("cpu", 2)
    kinds = [(s["kind"], s.get("peer_recipe"), s["recipe"], s["bs"]) for _, s in rows]
    assert kinds.index(("fastai", "own", "onecycle-bias", 64)) < kinds.index(
        ("lesson5", None, "onecycle-bias", 64)
    )  # the peers run first: they set the target
    for want in [
        ("fastai", "ours", "onecycle-bias", 1024),
        ("surprise", "tuned", "onecycle-bias", 1),
        ("dataloader", None, "onecycle-bias", 64),
        ("lesson5", None, "onecycle-bias", 256),
        ("lesson5", None, "onecycle-net", 1024),
        ("fastai", "own", "onecycle-net", 1024),
    ]:
        assert want in kinds
    scale = {s["scale"]: s for _, s in rows if s.get("scale")}
    assert scale["scale-train"]["synthetic"] == dict(
        n_users=200_000, n_ratings=32_000_000, n_movies=87_000
    )
    assert scale["scale-read"]["n"] == 32_000_000 and all(s["runs"] == 1 for s in scale.values())
    assert not any(s.get("scale") for _, s in bench.default_rows("cpu", None, 0))


# The peer rows run only where fastai / Surprise are installed (`make bench` builds such a venv).
@pytest.mark.parametrize(
    "kind, peer_recipe", [("fastai", "own"), ("fastai", "ours"), ("surprise", "tuned")]
)
def test_peer_rows_on_synthetic_data(kind, peer_recipe, monkeypatch):
    pytest.importorskip(kind)
    peers = importlib.import_module("peers")
    monkeypatch.setattr(
        peers, "SVD_GRID", dict(n_factors=(5, 20), n_epochs=(10,), lr_all=(0.01,), reg_all=(0.1,))
    )
    spec = dict(
        kind=kind,
        peer_recipe=peer_recipe,
        recipe="onecycle-bias",
        bs=512,
        source="synthetic",
        device="cpu",
    )
    res = bench.run_row(spec)
    assert (
        res["device"] == "cpu"
        and 0 < res["valid_rmse"][-1] < 2
        and len(res["seconds"]) == res["epochs"]
    )
    if kind == "fastai":
        ours = bench._recipe(spec)
        assert (res["lr"], res["wd"]) == (
            (5e-3, 0.1) if peer_recipe == "own" else (ours.stages[0][1], ours.wd)
        )
        assert bench.run_row(spec)["valid_rmse"] == res["valid_rmse"]  # seeded
    else:
        assert res["params"]["n_factors"] in (5, 20) and res["tune_s"] > 0 and res["epochs"] == 10
