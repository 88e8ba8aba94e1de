"""Choosing where tensors live: CUDA when present, CPU otherwise, one switch to force either.

Notebooks 03 and 04.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch

ENV = "LESSON5_DEVICE"

# Subnormal floats flush to zero: stale momenta decay into that range, where the CPU is many times
# slower (benchmarks/README.md, "Speed"). Set on import, before torch starts its worker threads.
SUBNORMALS_ENV = "LESSON5_SUBNORMALS"
# numpy < 2 works out finfo's limits on first use and warns when flushing has zeroed its smallest
# subnormal; asked now, before the flush, it caches the true ones and stays quiet.
_ = [np.finfo(t) for t in (np.float16, np.float32, np.float64)]
FLUSHES_SUBNORMALS = os.environ.get(SUBNORMALS_ENV) != "keep" and torch.set_flush_denormal(True)


# Below this batch size a CPU step is a few small kernels: a second thread gains a third alone, but
# two trainings at once, each spinning a pool on the same cores, run 20x slower (benchmarks/threads.py).
SMALL_BATCH = 1024
_TORCH_THREADS = torch.get_num_threads()  # torch's own choice, before anyone changed it


@contextlib.contextmanager
def training_threads(threads: int | None, bs: int, device: torch.device) -> Iterator[int]:
    """Train with `threads` intra-op threads; None: one for small CPU batches unless the user chose."""
    before = torch.get_num_threads()
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads}: give a whole number of at least 1, or None")
    chosen_by_user = before != _TORCH_THREADS or "OMP_NUM_THREADS" in os.environ
    if threads is None:
        small = device.type == "cpu" and bs < SMALL_BATCH
        threads = 1 if small and not chosen_by_user else before
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


class DeviceError(ValueError, RuntimeError):
    """A device that does not exist or is not available here (also a RuntimeError, as torch's is)."""


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: `prefer`, else $LESSON5_DEVICE, else CUDA if available."""
    env = os.environ.get(ENV)
    choice = prefer or env or ("cuda" if torch.cuda.is_available() else "cpu")
    named = f"{ENV}={choice!r}" if not prefer and env else f"device {choice!r}"
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        fix = f"; set it to one of those or unset {ENV}" if not prefer and env else ""
        raise DeviceError(
            f"{named} is not a device lesson5 trains on: use 'cpu' or 'cuda' (or 'cuda:N'){fix}"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {choice!r} was asked for, but torch.cuda.is_available() is False"
        )
    if device.type == "cuda" and (device.index or 0) >= (n := torch.cuda.device_count()):
        raise DeviceError(f"{named}: there are only {n} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{named} was asked for, but torch.backends.mps.is_available() is False")
    return device
