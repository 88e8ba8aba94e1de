"""Saved models and optimizers handed careless or hostile values (issue 23): one clear error each;
a good file's oracle is the model that was saved (its predictions, bit for bit)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.serialization

from lesson5 import data, inference, interpret, models, optim


@pytest.fixture(scope="module")
def ds():
    return data.synthetic(n_users=40, n_movies=60, n_ratings=800)


@pytest.fixture(scope="module")
def saved(ds, tmp_path_factory):
    torch.manual_seed(0)
    model = models.EmbeddingDotBias(ds.n_users, ds.n_movies, 4)
    path = inference.save_model(tmp_path_factory.mktemp("m") / "model.pt", model, ds)
    return model, path


def tweaked(saved, tmp_path, change) -> str:
    payload = torch.load(saved[1], weights_only=True)
    change(payload)
    path = tmp_path / "edited.pt"
    torch.save(payload, path)
    return str(path)


def refused(path, *words) -> None:
    with pytest.raises(ValueError) as info:
        inference.load_model(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    assert "weights_only" not in message and "Re-running" not in message, message  # not torch's
    for word in words:
        assert word in message, message


class Payload:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_weights_that_claim_a_shape_their_bytes_do_not_hold(tmp_path):
    # What a 2.5 kB file can say: 10**6 x 2.2 * 10**6 floats (8.8 TB), over 4 real bytes (stride 0).
    n, k = 10**6, 2_200_000
    payload = {
        "format": "lesson5-model-1",
        "class": "EmbeddingDot",
        "hparams": {"n_users": n, "n_movies": n, "n_factors": k},
        "state_dict": {w: torch.zeros(1).expand(n, k) for w in ("u.weight", "m.weight")},
        "user_ids": torch.zeros(1, dtype=torch.int64).expand(n),
        "movie_ids": torch.zeros(1, dtype=torch.int64).expand(n),
        "mean_rating": None,
    }
    path = tmp_path / "lie.pt"
    torch.save(payload, path)
    assert path.stat().st_size < 10_000
    refused(path, "'u.weight' claims (1000000, 2200000)", "only 4 bytes")


@pytest.mark.parametrize(
    "change, words",
    [
        *[(lambda p, key=key: p.pop(key), [f"no {key!r} entry"])
          for key in ["class", "hparams", "state_dict", "user_ids", "movie_ids"]],
        # metadata that lies about the sizes: refused before anything is allocated
        (lambda p: p["hparams"].update(n_users=10**9, n_factors=4400), ["'u.weight' is (40, 4)", "(1000000000, 4400)"]),
        (lambda p: p["hparams"].update(bogus=1), ["unexpected keyword argument 'bogus'"]),
        (lambda p: p["hparams"].update(n_users=-5), ["negative dimension -5"]),
        (lambda p: p.update(user_ids=p["user_ids"][:3]), ["'user_ids' should be 40 int64 ids"]),
        (lambda p: p.update({"class": "Linear"}), ["unknown model class 'Linear'"]),
        (lambda p: p.update(mean_rating=math.nan), ["'mean_rating' is nan"]),
        (lambda p: p.update(x=Payload()), ["could run code", "system"]),  # pickled code
        (lambda p: p["state_dict"].update({"u.weight": p["state_dict"]["u.weight"].double()}), ["torch.float64", "torch.float32"]),  # noqa: E501
    ],
)  # fmt: skip
def test_inconsistent_or_code_running_files_are_refused_by_name(saved, tmp_path, change, words):
    refused(tweaked(saved, tmp_path, change), *words)


@pytest.mark.parametrize("cut, words", [(0, "is empty (0 bytes)"), (2, "torch cannot read it")])
def test_an_empty_or_truncated_file_is_one_line(saved, tmp_path, cut, words):
    raw, path = saved[1].read_bytes(), tmp_path / "cut.pt"
    path.write_bytes(raw[: len(raw) // cut] if cut else b"")
    refused(path, words)


def test_a_model_saved_on_cuda_loads_on_the_cpu(saved, ds, tmp_path, monkeypatch):
    model, _ = saved
    # torch.save records each storage's device: make it record CUDA, as on a GPU machine.
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    path = inference.save_model(tmp_path / "cuda.pt", model, ds)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # what a plain load does here
    loaded, users_map, movies_map = inference.load_model(path)
    assert next(loaded.parameters()).device.type == "cpu"
    u, m = ds.ratings.userId.to_numpy(), ds.ratings.movieId.to_numpy()
    got = inference.predict(loaded, (users_map, movies_map), u, m)
    assert np.array_equal(got, inference.predict(model, ds, u, m))


def test_predict_with_id_maps_of_another_data_set_names_the_problem(saved):
    other = data.synthetic(n_users=30, n_movies=60, n_ratings=500)
    match = r"user id map holds 30 users but the model was built for 40"
    with pytest.raises(ValueError, match=match):
        inference.predict(saved[0], other, other.ratings.userId[:5], other.ratings.movieId[:5])


# ---------------------------------------------------------------- optimizers

HYPER = {
    "SGD": ["lr", "momentum", "dampening", "weight_decay"],
    "Adagrad": ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"],
    "RMSprop": ["lr", "alpha", "eps", "weight_decay", "momentum"],
    "Adam": ["lr", "eps", "weight_decay"],
    "AdamW": ["lr", "eps", "weight_decay"],
}


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, "0.1"])
@pytest.mark.parametrize("name, arg", [(n, a) for n, args in HYPER.items() for a in args])
def test_optimizers_refuse_a_bad_hyperparameter_by_name(name, arg, value):
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=rf"^{name}: invalid {arg}="):
        getattr(optim, name)(p, **{arg: value})


@pytest.mark.parametrize("betas", [(math.nan, 0.999), (0.9, math.inf), (0.9, 1.0), (-0.1, 0.9)])
def test_adam_refuses_bad_betas(betas):
    with pytest.raises(ValueError, match=r"^Adam: invalid beta"):
        optim.Adam([torch.zeros(2, requires_grad=True)], betas=betas)


def test_folding_in_on_a_model_of_one_user_gives_numbers():
    r = pd.DataFrame(
        {"userId": [1] * 6, "movieId": range(10, 16), "rating": np.float32([1, 2, 3, 4, 5, 3])}
    )
    movies = pd.DataFrame({"movieId": r.movieId, "title": "t"})
    ds = data.build(r, movies, valid_pct=0.2, seed=42, source="x")
    model = models.EmbeddingDotBias(ds.n_users, ds.n_movies, 3)
    user = interpret.fold_in(model, ds, [(10, 4.0), (11, 2.0)])
    assert torch.isfinite(user.factors).all() and np.isfinite(user.bias)
    assert torch.isfinite(interpret.predict_new_user(model, user)).all()
