"""lesson5.tools.bench: rows run on synthetic data; records aggregate into the README's table."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest

from lesson5.device import FLUSHES_SUBNORMALS
from lesson5.tools import bench

ROOT = Path(__file__).resolve().parents[1]


def record(label, kind, rmse, seconds=(1.0, 1.0), seed=0, bs=64, model="EmbeddingDotBias", **extra):
    """A synthetic raw record, as `lesson5 bench --results` writes one per run."""
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
        date="2026-01-01T00:00:00+00:00",
        cpu="test cpu",
        cores=2,
        versions={"torch": "x"},
        **extra,
    )


@pytest.mark.parametrize("kind", ["lesson5", "dataloader"])
def test_a_row_runs_on_synthetic_data(kind):
    res = bench.run_row(
        dict(
            kind=kind,
            recipe="onecycle-bias",
            bs=512,
            source="synthetic",
            epochs=3,
            device="cpu",
            seed=1,
        )
    )
    assert res["model"] == "EmbeddingDotBias" and res["bs"] == 512 and len(res["seconds"]) == 3
    assert (
        res["device"] == "cpu"
        and res["seed"] == 1
        and res["peak_mb"] > 0
        and len(res["loadavg"]) == 3
        and res["flush_denormal"] == FLUSHES_SUBNORMALS  # as train.fit would have it
    )
    assert all(s > 0 for s in res["seconds"]) and 0 < res["valid_rmse"][-1] < 2
    table = bench.markdown_table([dict(res, label=kind, kind=kind)])
    assert f"{res['valid_rmse'][-1]:.4f}" in table and "No peer rows in this run" in table


def test_runs_aggregate_into_median_and_min_max():
    recs = [
        record("ours", "lesson5", [0.9, r], seconds=(s, s), seed=i)
        for i, (r, s) in enumerate([(0.85, 1.0), (0.83, 3.0), (0.84, 2.0)])
    ]
    (row,) = bench.summarize(recs)
    assert (
        row["runs"] == 3 and row["epoch_s"] == (2.0, 1.0, 3.0) and row["fit_s"] == (4.0, 2.0, 6.0)
    )
    assert row["rmse"] == pytest.approx((0.84, 0.83, 0.85)) and row["peak_mb"] == (
        101.0,
        100.0,
        102.0,
    )
    assert (
        bench._fmt(row["rmse"], 4) == "0.8400 (0.8300-0.8500)"
        and bench._fmt((1.0, 1.0, 1.0), 2) == "1.00"
    )


def test_target_is_the_best_peer_median_and_rows_that_miss_it_say_never():
    recs = [record("fastai", "fastai", [0.9, r], seed=i) for i, r in enumerate([0.86, 0.87, 0.85])]
    recs += [record("svd", "surprise", [math.nan, 0.88], seed=0, model="SVD (Surprise)")]
    recs += [record("ours", "lesson5", [0.95, 0.90], seed=0)]  # never reaches any target
    recs += [record("fast", "lesson5", [0.855, 0.84], seconds=(0.5, 0.5), seed=i) for i in range(2)]
    recs += [
        record("half", "lesson5", [0.859, 0.85], seconds=(1.0, 1.0), seed=0),
        record("half", "lesson5", [0.87, 0.87], seconds=(1.0, 1.0), seed=1),
    ]
    rows = bench.summarize(recs)
    target, source = bench.peer_target(rows)
    assert (
        target == 0.86 and source == "fastai (EmbeddingDotBias, bs 64)"
    )  # median of the three, not the best run
    by = {r["label"]: r for r in rows}
    assert bench.to_target(by["ours"], target) == "never"
    assert bench.to_target(by["fast"], target) == "0.50"
    assert bench.to_target(by["half"], target) == "1/2: 1.00"
    assert bench.to_target(by["fast"], None) == "-"
    table = bench.markdown_table(recs, "r.jsonl")
    assert (
        "Target RMSE 0.8600: the best peer's median final RMSE, fastai (EmbeddingDotBias, bs 64)."
        in table
    )
    assert bench.peer_target([r for r in rows if r["kind"] == "lesson5"]) is None


def test_time_to_target_counts_training_seconds_until_the_first_hit():
    assert bench.time_to_target([1.0, 2.0, 4.0], [0.9, 0.86, 0.85], 0.86) == 3.0
    assert math.isnan(bench.time_to_target([1.0, 2.0], [0.9, math.nan], 0.86))


def test_scale_rows_are_checked_against_their_targets():
    recs = [
        record("scale: train", "lesson5", [1.0], seconds=(10.0,), scale="scale-train"),
        record("scale: read", "read_csv", [math.nan], seconds=(500.0,), scale="scale-read"),
    ]
    lines = bench.scale_verdicts(bench.summarize(recs))
    assert bench.to_target(bench.summarize(recs)[0], 2.0) == "-"
    assert lines[0].startswith("PASS scale: train: 10.0 s") and lines[1].startswith(
        "MISS scale: read: 500.0 s"
    )


def test_readme_section_is_replaced_between_the_markers():
    text = f"a\n{bench.README_BEGIN}\nold\n{bench.README_END}\nb\n"
    new = bench.replace_readme_table(text, "NEW")
    assert (
        new == f"a\n{bench.README_BEGIN}\nNEW\n{bench.README_END}\nb\n"
        and bench.readme_table(new) == "NEW"
    )
    with pytest.raises(ValueError, match="no <!-- bench:begin -->"):
        bench.replace_readme_table("no markers", "x")


def test_readme_table_is_the_one_its_results_file_generates():
    """Hand edits fail here: the README's table is what `--table` makes of its committed file."""
    shown = bench.readme_table((ROOT / "benchmarks" / "README.md").read_text())
    found = re.search(r"bench --table (\S+) --readme", shown)
    assert found, "benchmarks/README.md does not name its results file"
    source = found.group(1)
    assert (ROOT / source).is_file(), f"{source} is not committed"
    assert shown == bench.markdown_table(bench.read_records(ROOT / source), source)


def test_a_generated_ratings_csv_is_read_by_the_data_layer(tmp_path):
    from lesson5 import read

    path = tmp_path / "ratings.csv"
    bench.write_ratings_csv(path, 5_000, n_users=300, n_movies=200, chunk=1_500)
    ratings = read.load_ratings(path)
    assert len(ratings) == 5_000 and ratings.rating.between(0.5, 5).all()
    assert (ratings.userId.diff().dropna() >= 0).all()  # sorted by user, as MovieLens is
    res = bench.run_row(dict(kind="read_csv", recipe="-", bs=0, path=str(path)))
    assert res["rows"] == 5_000 and res["seconds"][0] > 0 and res["peak_mb"] > 0


def test_unknown_row_kind_is_named():
    with pytest.raises(ValueError, match="unknown row kind 'nope'"):
        bench.run_row(dict(kind="nope", recipe="onecycle-bias", bs=64, source="synthetic"))


def test_cli_has_the_bench_subcommand():
    from lesson5.tools import cli

    args = cli.build_parser().parse_args(["bench", "--threads", "1"])
    assert args.func is cli.cmd_bench and args.threads == 1 and args.scale and args.device is None
    assert args.runs == 3 and args.results is None and not args.quick
    assert not cli.build_parser().parse_args(["bench", "--no-scale"]).scale


def test_default_rows_cover_the_issue():
    rows = bench.default_rows(device="cpu", scale=True, threads=2)
    kinds = [
        (spec["kind"], spec.get("peer_recipe"), spec["recipe"], spec["bs"]) for _, spec in rows
    ]
    assert kinds.index(("fastai", "own", "onecycle-bias", 64)) < kinds.index(
        ("lesson5", None, "onecycle-bias", 64)
    )
    for want in [
        ("fastai", "ours", "onecycle-bias", 64),
        ("fastai", "ours", "onecycle-bias", 1024),
        ("surprise", "default", "onecycle-bias", 1),
        ("surprise", "tuned", "onecycle-bias", 1),
        ("dataloader", None, "onecycle-bias", 64),
        ("lesson5", None, "onecycle-net", 1024),
        ("lesson5", None, "onecycle-bias", 256),  # the recipe's own batch size
    ]:
        assert want in kinds
    scale = {spec["scale"]: spec for _, spec in rows if spec.get("scale")}
    assert scale["scale-train"]["synthetic"] == dict(
        n_users=200_000, n_movies=87_000, n_ratings=32_000_000
    )
    assert scale["scale-read"]["n"] == 32_000_000 and all(s["runs"] == 1 for s in scale.values())
    assert not any(
        spec.get("scale") for _, spec in bench.default_rows(device="cpu", scale=False, threads=None)
    )


def test_table_of_a_results_file_and_missing_peers_hint(tmp_path, monkeypatch, capsys):
    import argparse
    import json

    results = tmp_path / "r.jsonl"
    results.write_text(
        "\n".join(json.dumps(record("ours", "lesson5", [0.9], seed=i)) for i in range(2)) + "\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{bench.README_BEGIN}\n{bench.README_END}\n")
    assert bench.run(argparse.Namespace(table=str(results), readme=str(readme))) == 0
    assert bench.readme_table(readme.read_text()) == bench.markdown_table(
        bench.read_records(results), str(results)
    )
    with pytest.raises(FileNotFoundError, match="results file .*nope.jsonl does not exist"):
        bench.read_records(tmp_path / "nope.jsonl")
    monkeypatch.setattr(bench, "default_rows", lambda *a: [])
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    assert bench.run(argparse.Namespace(device="cpu", scale=False, threads=1, timeout=60)) == 0
    out = capsys.readouterr().out
    assert (
        "fastai is not installed" in out
        and "make bench" in out
        and "surprise is not installed" in out
    )


# The peer rows run only where fastai / Surprise are installed (`make bench` builds such a venv).
@pytest.mark.parametrize("peer_recipe,use_nn", [("own", False), ("own", True), ("ours", False)])
def test_fastai_row_on_synthetic_data(peer_recipe, use_nn):
    pytest.importorskip("fastai")
    spec = dict(
        kind="fastai",
        peer_recipe=peer_recipe,
        recipe="onecycle-bias",
        bs=512,
        source="synthetic",
        device="cpu",
        use_nn=use_nn,
        seed=0,
    )
    res = bench.run_row(spec)
    assert (
        res["model"] == ("EmbeddingNN" if use_nn else "EmbeddingDotBias")
        and len(res["seconds"]) == 5
    )
    assert res["device"] == "cpu" and 0 < res["valid_rmse"][-1] < 2
    assert (res["lr"], res["wd"]) == (
        (5e-3, 0.1) if peer_recipe == "own" else (3e-3 * 8**0.5, 0.2 * 8**0.5)
    )
    assert bench.run_row(spec)["valid_rmse"] == res["valid_rmse"]  # seeded


def test_surprise_rows_on_synthetic_data():
    pytest.importorskip("surprise")
    from lesson5 import data
    from lesson5.tools import peers

    res = bench.run_row(
        dict(
            kind="surprise",
            peer_recipe="default",
            recipe="onecycle-bias",
            bs=1,
            source="synthetic",
            device="cpu",
        )
    )
    assert (
        res["model"] == "SVD (Surprise)"
        and len(res["seconds"]) == 20
        and 0 < res["valid_rmse"][-1] < 2
    )
    ds = data.synthetic()
    grid = dict(n_factors=(5, 20), n_epochs=(10,), lr_all=(0.01,), reg_all=(0.02, 0.1))
    tuned = peers.surprise_row(ds, seed=0, tuned=True, grid=grid)
    assert (
        tuned["params"]["n_factors"] in (5, 20)
        and tuned["tune_s"] > 0
        and len(tuned["seconds"]) == 10
    )


def test_accuracy_targets_are_judged_on_the_median_over_seeds():
    recs = [
        record("lesson5 fit", "lesson5", [r], seed=i) for i, r in enumerate([0.835, 0.845, 0.839])
    ]
    recs += [record("lesson5 fit", "lesson5", [0.86], model="EmbeddingNet")]
    lines = bench.accuracy_verdicts(bench.summarize(recs))
    assert lines == [
        "PASS lesson5 fit EmbeddingDotBias bs 64: median 0.8390 over 3 seeds (target <= 0.840)",
        "MISS lesson5 fit EmbeddingNet bs 64: median 0.8600 over 1 seeds (target <= 0.855)",
    ]


def test_records_are_strict_json_and_a_missing_rmse_reads_back_as_none():
    import json

    rec = record("svd", "surprise", [math.nan, 0.88], model="SVD (Surprise)")
    line = json.dumps(bench._no_nan(rec), allow_nan=False)
    back = json.loads(line)
    assert back["valid_rmse"] == [None, 0.88]
    assert bench.summarize([back])[0]["rmse"] == (0.88, 0.88, 0.88)


def test_rows_run_in_rounds_of_seeds_and_record_cpu_steal(monkeypatch, capsys):
    """Seed 0 of every row, then seed 1: a drifting machine slows every row alike."""
    import argparse

    rows = [
        ("a", dict(kind="lesson5", recipe="onecycle-bias", bs=64)),
        ("b", dict(kind="lesson5", recipe="onecycle-bias", bs=1024)),
        ("once", dict(kind="lesson5", recipe="onecycle-bias", bs=4096, runs=1)),
    ]
    calls = []

    def child(spec, timeout):
        calls.append((spec["bs"], spec["seed"]))
        time.sleep(0.05)  # long enough for /proc/stat's clock (10 ms ticks) to move
        rec = dict(record("x", "lesson5", [0.9], seed=spec["seed"]), bs=spec["bs"])
        return {k: v for k, v in rec.items() if k not in ("label", "kind")}

    monkeypatch.setattr(bench, "default_rows", lambda *a: rows)
    monkeypatch.setattr(bench, "_run_in_child", child)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    args = argparse.Namespace(device=None, scale=False, threads=None, timeout=60, runs=2)
    assert bench.run(args) == 0
    assert calls == [(64, 0), (1024, 0), (4096, 0), (64, 1), (1024, 1)]
    assert "CPU steal" in capsys.readouterr().out  # /proc/stat is there on Linux


def test_steal_percent_closed_form():
    assert bench.steal_pct((10, 1000), (30, 1400)) == pytest.approx(5.0)  # 20 of 400 jiffies
    assert bench.steal_pct(None, (1, 2)) is None and bench.steal_pct((1, 5), (1, 5)) is None
    steal, total = bench._cpu_jiffies()
    assert 0 <= steal <= total


def test_peak_memory_is_the_childs_own_not_its_parents():
    """Oracle: a child that allocates nothing reports far less than a parent that grew before forking."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "big = b'x' * (600 * 2**20)  # the parent grows by 600 MB, every page written\n"
        "import subprocess\n"
        "out = subprocess.run([sys.executable, '-c', "
        "'from lesson5.tools import bench; print(bench._peak_memory_mb(None))'], "
        "capture_output=True, text=True, check=True)\n"
        "print(out.stdout)\n"
    )
    child_mb = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    assert 0 < child_mb < 300
