"""Shared fixtures: where the real MovieLens copies are, and how a missing one is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lesson5 import data, download


def need(condition: bool, reason: str) -> None:
    """Skip on a developer's machine, but fail in CI, where every prerequisite must be present."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI run lacks a prerequisite: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def movielens_zip() -> Path:
    """The verified 2018 ml-latest-small.zip from the data folder ($LESSON5_DATA in CI)."""
    path = download.data_dir() / download.ZIP_NAME
    need(
        path.exists(),
        f"{path} not found; set LESSON5_DATA to the folder holding {download.ZIP_NAME}",
    )
    return path


@pytest.fixture(scope="session")
def movielens_2016() -> Path:
    """The folder of the 2016 release (the one the lesson was taught on)."""
    path = download.release_2016()
    need(path is not None, f"{download.data_dir() / download.RELEASE_2016_DIR} not found")
    return path


@pytest.fixture(scope="session")
def ml2018(movielens_zip) -> data.Ratings:
    """The 2018 release, loaded once for the whole session."""
    return data.load(movielens_zip)
