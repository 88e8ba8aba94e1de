"""Shared fixtures: where the real MovieLens copies are, and how a missing one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import need

from lesson5 import data, download


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Notebooks first: they are the longest files, and one left to the end would keep one worker
    busy while the other idles (`make test` runs the files in this order, --no-loadscope-reorder)."""
    items.sort(key=lambda item: item.path.suffix != ".ipynb")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: a second intra-op thread only adds contention on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def untouched():
    """untouched(model, opt) -> check: check() asserts the weights and the optimizer are as they were."""
    import copy

    import torch

    def take(model, opt):
        weights, state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())

        def check():
            for k, v in weights.items():
                assert torch.equal(model.state_dict()[k], v), k
            now = opt.state_dict()
            assert now["param_groups"] == state["param_groups"]
            for pid, st in state["state"].items():
                for key, v in st.items():
                    got = torch.as_tensor(now["state"][pid][key])
                    assert torch.equal(got, torch.as_tensor(v)), (pid, key)

        return check

    return take


@pytest.fixture(scope="session")
def movielens_zip() -> Path:
    """The verified 2018 ml-latest-small.zip from the data folder ($LESSON5_DATA in CI)."""
    path = download.data_dir() / download.ZIP_NAME
    reason = f"{path} not found; set LESSON5_DATA to the folder holding {download.ZIP_NAME}"
    need(path.exists(), reason)
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


@pytest.fixture(scope="session")
def ml2016(movielens_2016) -> data.Ratings:
    """The 2016 release (the lesson's), loaded once for the whole session."""
    return data.load(movielens_2016)


@pytest.fixture(scope="session")
def trained(request):
    """trained(recipe, release) -> (model, history): each recipe trained once per data set.

    `release` is "2018", "2016" or "synthetic". Through `Recipe.run_once`, so a run the notebooks
    (or another worker) trained in the user's cache is loaded, not trained again.
    """
    from lesson5 import recipes

    runs: dict[tuple[str, str], tuple] = {}

    def get(recipe: str, release: str = "2018"):
        if (recipe, release) not in runs:
            fixture = {"2018": "ml2018", "2016": "ml2016"}.get(release)
            ds = request.getfixturevalue(fixture) if fixture else data.load("synthetic")
            model, hist = recipes.get(recipe).run_once(ds, progress=False, device="cpu")
            runs[recipe, release] = (model.eval(), hist)
        return runs[recipe, release]

    return get
