"""graddesc.xlsx: its formulas, recalculated by LibreOffice, equal lesson5.graddesc to 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pytest

from lesson5 import graddesc
from lesson5.excel import graddesc as xg
from lesson5.excel.recalc import read_formulas, recalculated_values

from _excel_helpers import assert_close, require_soffice


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return xg.write(tmp_path_factory.mktemp("graddesc") / "graddesc.xlsx")


@pytest.fixture(scope="module")
def values(written, tmp_path_factory):
    require_soffice()
    return recalculated_values([written], tmp_path_factory.mktemp("recalc"))[0]


def test_every_update_is_a_formula_reading_the_row_above(written):
    formulas = read_formulas(written)
    assert set(formulas) == set(graddesc.SHEETS) | {"losses"}
    for name in graddesc.SHEETS:
        f = formulas[name]
        for i in range(1, xg.EPOCHS * xg.N):
            for p in "ab":
                cell = f[xg.row_cell(name, p, i)]
                assert cell == f"={xg.row_cell(name, f'new_{p}', i - 1)}", (name, i, cell)
            assert f[xg.row_cell(name, "new_a", i)].startswith("=")
        assert f[xg.row_cell(name, "a", 0)] == f"={name}_a0"  # the named start cell


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", list(graddesc.SHEETS))
def test_recalculated_rows_equal_python(values, name):
    table, state = graddesc.run(name, xg.EPOCHS)
    sheet = values[name]
    checked = 0
    for col in graddesc.columns(name):
        for i, want in enumerate(table[col].to_numpy(float)):
            cell = xg.row_cell(name, col, i)
            assert_close(sheet[cell], float(want), f"{name}!{cell} ({col}, row {i})")
            checked += 1
    for epoch, want in graddesc.epoch_losses(table).items():
        cell = xg.epoch_cell(name, "rmse", epoch)
        assert_close(sheet[cell], float(want), f"{name}!{cell} (rmse, epoch {epoch})")
        assert_close(values["losses"][f"{chr(ord('A') + list(graddesc.SHEETS).index(name) + 1)}{3 + epoch}"],
                     float(want), f"losses ({name}, epoch {epoch})")
    assert checked == len(graddesc.columns(name)) * xg.EPOCHS * xg.N


@pytest.mark.libreoffice
def test_epoch_level_state_equals_python(values):
    # What the sheets carry between epochs: adagrad's G, annealed lr, eve's d.
    _, s = graddesc.run("adagrad", xg.EPOCHS)
    for p, want in zip("ba", s["G"]):
        assert_close(values["adagrad"][xg.epoch_cell("adagrad", f"G_new_{p}", xg.EPOCHS)], float(want), "adagrad G")
    _, s = graddesc.run("adagrad_ann", xg.EPOCHS)
    sheet = values["adagrad_ann"]
    final_lr = sheet[xg.epoch_cell("adagrad_ann", "lr", 5)] / 2 ** sheet[xg.epoch_cell("adagrad_ann", "halvings", 5)]
    assert_close(final_lr, s["lr"], "adagrad_ann final lr")
    assert_close(sheet[xg.epoch_cell("adagrad_ann", "expected", 5)], s["expected"], "adagrad_ann expected step")
    _, s = graddesc.run("adam_ann", xg.EPOCHS)
    assert_close(values["adam_ann"][xg.epoch_cell("adam_ann", "best", 5)], s["best"], "adam_ann best")
    tables = {n: graddesc.run(n, xg.EPOCHS)[0] for n in ("eve",)}
    assert np.isclose(values["eve"][xg.epoch_cell("eve", "d", 5)], tables["eve"].d.iloc[-1], rtol=1e-9)


def test_the_excel_command_exports_it(tmp_path):
    # `python -m lesson5 excel` calls every EXPORTS entry with its options; ours ignores them.
    from lesson5.excel import EXPORTS

    assert "lesson5.excel.graddesc:export_for_cli" in EXPORTS
    paths = xg.export_for_cli(tmp_path, source=None, top_n=15, seed=42)
    assert paths == [tmp_path / "graddesc.xlsx"] and paths[0].stat().st_size > 10_000
