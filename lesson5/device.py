"""Choosing where tensors live: CUDA when present, CPU otherwise, one switch to force either."""

from __future__ import annotations

import os

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on (notebook 00): `prefer`, else $LESSON5_DEVICE, else CUDA if available."""
    choice = prefer or os.environ.get("LESSON5_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} was asked for, but torch.cuda.is_available() is False")
    return device
