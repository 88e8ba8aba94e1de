"""The first cell of every notebook: versions, device, data folder, plotting defaults, seeds."""

from __future__ import annotations

import platform
import random
import warnings

import numpy as np


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy's legacy global state and torch (CPU and CUDA) in one call."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 42, dpi: int = 72) -> dict:
    """Print versions and device, set modest figure sizes, seed everything (every notebook's first cell)."""
    import matplotlib
    import pandas as pd
    import torch

    import lesson5
    from lesson5.data import data_dir
    from lesson5.device import get_device

    try:  # Inline figures even when MPLBACKEND=Agg is exported (CI does, for the unit tests).
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        ip.run_line_magic("matplotlib", "inline")
    except NameError:
        pass
    # Keep committed notebooks light and free of stray stderr output.
    matplotlib.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.figsize": (6.4, 4.0)})
    warnings.filterwarnings("ignore", category=FutureWarning)
    pd.set_option("display.precision", 4)
    seed_everything(seed)
    device = get_device()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "lesson5": lesson5.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "data folder": str(data_dir()),
    }
    width = max(map(len, info))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))
    return info
