"""A lesson notebook's code cells run in this process, so that tests check the notebook's own values
(not a copy of its code); whatever global state the notebook sets is put back afterwards."""

from __future__ import annotations

import contextlib
import io
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
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    names: dict = {"__name__": f"notebook_{number}"}
    with contextlib.ExitStack() as stack:
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        stack.callback(random.setstate, random.getstate())
        stack.callback(np.random.set_state, np.random.get_state())
        stack.callback(plt.close, "all")
        for context in (
            mock.patch.dict(os.environ, LESSON5_DEVICE="cpu"),
            torch.random.fork_rng(),
            matplotlib.rc_context(),
            pd.option_context("display.precision", pd.get_option("display.precision")),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            mock.patch.object(plt, "show"),  # the figures stay open for the tests to read
        ):
            stack.enter_context(context)
        for source in cells:
            exec(compile(source, str(path), "exec"), names)
    return names
