"""Shared by the crosstab, solver and workbook tests: the data sets they need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lesson5 import data


def data_path(name: str) -> Path:
    """A file or folder in the data folder; skip when absent, but fail in CI (where it must be there)."""
    path = data.data_dir() / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI (LESSON5_DATA={os.environ.get('LESSON5_DATA')})")
        pytest.skip(f"{path} not found; set LESSON5_DATA to the folder holding the MovieLens data")
    return path


def ratings_2016() -> data.Ratings:
    """The 2016 release the lesson was taught on."""
    return data.load(data_path(data.RELEASE_2016_DIR))


def ratings_2018() -> data.Ratings:
    """The current ml-latest-small release (2018)."""
    return data.load(data_path(data.ZIP_NAME))
