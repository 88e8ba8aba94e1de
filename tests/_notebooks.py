"""A lesson notebook's code cells run in this process, so that tests check the notebook's own values
(not a copy of its code); whatever global state the notebook sets is put back afterwards."""

from __future__ import annotations

import contextlib
import io
import os
import random
import warnings
from pathlib import Path

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
    threads, py_state, np_state = torch.get_num_threads(), random.getstate(), np.random.get_state()
    env, precision = {**os.environ}, pd.get_option("display.precision")
    os.environ["LESSON5_DEVICE"] = "cpu"
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng())
            stack.enter_context(matplotlib.rc_context())
            stack.enter_context(pd.option_context("display.precision", precision))
            stack.enter_context(warnings.catch_warnings())
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(_no_show())
            for source in cells:
                exec(compile(source, str(path), "exec"), names)
    finally:
        plt.close("all")
        os.environ.clear()
        os.environ.update(env)
        torch.set_num_threads(threads)
        random.setstate(py_state)
        np.random.set_state(np_state)
    return names


@contextlib.contextmanager
def _no_show():
    """plt.show() does nothing: the figures stay open for the tests to read."""
    show, plt.show = plt.show, lambda *a, **k: None
    try:
        yield
    finally:
        plt.show = show
