"""lesson5.tools.bench: a row runs end to end on synthetic data and the table prints every column."""

from __future__ import annotations

import math

import pytest

from lesson5.tools import bench


@pytest.mark.parametrize("kind", ["lesson5", "dataloader"])
def test_a_row_runs_on_synthetic_data(kind):
    res = bench.run_row(dict(kind=kind, recipe="onecycle-bias", bs=512, source="synthetic", epochs=3, device="cpu"))
    assert res["model"] == "EmbeddingDotBias" and res["bs"] == 512 and res["epochs"] == 3
    assert res["epoch_s"] > 0 and res["peak_mb"] > 0 and 0 < res["valid_rmse"] < 2
    table = bench.format_table([{"label": kind, **res}])
    assert "valid RMSE" in table and f"{res['valid_rmse']:.4f}" in table


def test_time_to_target_counts_training_seconds_until_the_first_hit():
    import pandas as pd

    ep = pd.DataFrame({"seconds": [1.0, 2.0, 4.0], "valid_rmse": [0.9, 0.86, 0.85]})
    assert bench._time_to_target(ep) == 3.0
    assert math.isnan(bench._time_to_target(ep.assign(valid_rmse=0.9)))


def test_unknown_row_kind_is_named():
    with pytest.raises(ValueError, match="unknown row kind 'nope'"):
        bench.run_row(dict(kind="nope", recipe="onecycle-bias", bs=64, source="synthetic"))


def test_cli_has_the_bench_subcommand():
    from lesson5.tools import cli

    args = cli.build_parser().parse_args(["bench", "--threads", "1"])
    assert args.func is cli.cmd_bench and args.threads == 1 and args.scale and args.device is None
    assert not cli.build_parser().parse_args(["bench", "--no-scale"]).scale


def test_default_rows_cover_the_issue():
    rows = bench.default_rows(device="cpu", scale=True, threads=2)
    kinds = {(spec["kind"], spec["recipe"], spec["bs"]) for _, spec in rows}
    assert ("dataloader", "onecycle-bias", 64) in kinds and ("lesson5", "onecycle-bias", 1024) in kinds
    assert ("lesson5", "onecycle-net", 64) in kinds
    scale = [spec for label, spec in rows if "10M" in label]
    assert scale and scale[0]["synthetic"] == 10_000_000 and scale[0]["bs"] == 65_536
    assert not any("10M" in label for label, _ in bench.default_rows(device="cpu", scale=False, threads=None))


def test_missing_comparisons_say_how_to_install_them(monkeypatch, capsys):
    import argparse

    monkeypatch.setattr(bench, "default_rows", lambda *a: [])
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *a: None)
    assert bench.run(argparse.Namespace(device="cpu", scale=False, threads=1, timeout=60)) == 0
    out = capsys.readouterr().out
    assert "fastai is not installed" in out and "pip install fastai" in out
    assert "surprise is not installed" in out and "pip install scikit-surprise" in out


# The external rows run only where fastai / Surprise are installed (neither is a dependency): see README.
@pytest.mark.parametrize("use_nn", [False, True])
def test_fastai_row_on_synthetic_data(use_nn):
    pytest.importorskip("fastai")
    spec = dict(kind="fastai", recipe="onecycle-bias", bs=512, source="synthetic", device="cpu", use_nn=use_nn)
    res = bench.run_row(spec)
    assert res["model"] == ("EmbeddingNN" if use_nn else "EmbeddingDotBias") and res["epochs"] == 5
    assert 0 < res["epoch_s"] <= res["fit_s"] and 0 < res["valid_rmse"] < 2
    assert bench.run_row(spec)["valid_rmse"] == res["valid_rmse"]  # seeded


def test_surprise_row_on_synthetic_data():
    pytest.importorskip("surprise")
    res = bench.run_row(dict(kind="surprise", recipe="onecycle-bias", bs=1, source="synthetic", device="cpu"))
    assert res["model"] == "SVD (Surprise)" and res["epochs"] == 30
    assert res["fit_s"] == pytest.approx(30 * res["epoch_s"]) and 0 < res["valid_rmse"] < 2
