"""The first cell of every notebook: versions, device, data folder, plotting defaults, seeds.

Notebooks 00-06.
"""

from __future__ import annotations

import contextlib
import platform
import random
import warnings

import numpy as np


def _message_only(shell, etype, evalue, tb, tb_offset=None):
    """IPython handler: print 'DataError: message' alone; the cell still counts as failed."""
    shell._showtraceback(etype, evalue, [f"{etype.__name__}: {evalue}"])


# Labels of 9 pt and more at 100 dpi: readable on any screen, and a committed figure stays small.
FIGURE_STYLE = {
    "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6.4, 4.0), "font.size": 10,
    "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 9, "legend.title_fontsize": 9,
}  # fmt: skip


def setup(seed: int = 42, threads: int | None = 1) -> dict:
    """Print versions and device, set readable figure defaults, seed everything.

    `threads`: torch's CPU threads; one, as a notebook's tensors are small (None: torch's choice).
    """
    import matplotlib
    import pandas as pd
    import torch

    import lesson5
    from lesson5.device import get_device
    from lesson5.download import DataError, data_dir, shown

    with contextlib.suppress(NameError):  # outside IPython, no get_ipython
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        ip.run_line_magic("matplotlib", "inline")  # even when MPLBACKEND=Agg is exported (CI)
        # Missing data is the student's to fix: the message (where to put the zip), not the stack.
        ip.set_custom_exc((DataError,), _message_only)
    matplotlib.rcParams.update(FIGURE_STYLE)
    warnings.filterwarnings("ignore", category=FutureWarning)
    pd.set_option("display.precision", 4)
    random.seed(seed)  # Python, NumPy's legacy global state and torch (CPU and CUDA)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = get_device()
    if threads is not None and device.type == "cpu":
        torch.set_num_threads(threads)
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "lesson5": lesson5.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "data folder": shown(data_dir()),
    }
    width = max(map(len, info))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))
    return info
