"""A lesson notebook's code cells run in this process, so that tests check the notebook's own values
(not a copy of its code); whatever global state the notebook sets is put back afterwards."""

from __future__ import annotations

import contextlib
import linecache
import os
import random
import warnings
from pathlib import Path
from unittest import mock

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import torch

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(number: str) -> dict:
    """The variables notebook `number` ("05") holds after its last cell, run on the CPU."""
    (path,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
    names: dict = {"__name__": f"notebook_{number}"}
    with contextlib.ExitStack() as stack:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        stack.callback(random.setstate, random.getstate())
        stack.callback(np.random.set_state, np.random.get_state())
        before = set(plt.get_fignums())  # the notebook's figures are closed, still readable
        stack.callback(lambda: [plt.close(n) for n in set(plt.get_fignums()) - before])
        for context in (
            mock.patch.dict(os.environ, LESSON5_DEVICE="cpu"),
            torch.random.fork_rng(devices=[]),
            matplotlib.rc_context(),
            # setup() sets this one pandas option; warnings filters and rcParams too.
            pd.option_context("display.precision", pd.get_option("display.precision")),
            warnings.catch_warnings(),
            mock.patch.object(plt, "show"),
        ):
            stack.enter_context(context)
        cells = nbformat.read(path, as_version=4).cells
        code = [cell.source for cell in cells if cell.cell_type == "code"]
        for i, source in enumerate(code, 1):
            where = f"{path.name}, code cell {i}"  # so that a failing cell's traceback shows it
            linecache.cache[where] = (len(source), None, source.splitlines(True), where)
            exec(compile(source, where, "exec"), names)
    return names
