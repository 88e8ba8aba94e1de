"""Using a trained model: predictions for raw MovieLens ids, and saving/loading it with its id maps.

Notebook 03.

A saved file holds class, arguments, weights, id maps and mean; `load_model` checks all first.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from torch import nn

from lesson5 import models
from lesson5.atomic import atomic_write
from lesson5.data import IdMap, Ratings
from lesson5.train import predictions

# The raw-id maps (and the training mean rating), or the Ratings that has them.
Maps = Ratings | tuple[IdMap, IdMap] | tuple[IdMap, IdMap, float | None]
FORMAT = "lesson5-model-1"
KEYS = ("class", "hparams", "state_dict", "user_ids", "movie_ids")


def _maps(data_or_maps: Maps) -> tuple[IdMap, IdMap, float | None]:
    if isinstance(data_or_maps, Ratings):
        mean = float(data_or_maps.ratings.rating.to_numpy()[data_or_maps.train_idx].mean())
        return data_or_maps.users_map, data_or_maps.movies_map, mean
    if isinstance(data_or_maps, tuple) and len(data_or_maps) in (2, 3):
        users_map, movies_map, *rest = data_or_maps
        return users_map, movies_map, (float(rest[0]) if rest else None)
    raise TypeError(
        "data_or_maps must be a Ratings or a tuple (users_map, movies_map[, mean_rating])"
    )


def predict(
    model: nn.Module,
    data_or_maps: Maps,
    user_ids: ArrayLike,
    movie_ids: ArrayLike,
    *,
    unknown: str | float = "error",
    bs: int = 65_536,
) -> np.ndarray:
    """Predicted ratings for raw (userId, movieId) pairs.

    `unknown`: an id not seen in training raises KeyError naming it ("error"), or its pairs get
    NaN ("nan"), the training mean ("mean"; needs a Ratings or maps with a mean) or a number.
    """
    users_map, movies_map, mean = _maps(data_or_maps)
    for what, emb, ids in (("user", "u", users_map), ("movie", "m", movies_map)):
        table = getattr(model, emb, None)
        # Rows past the model's table would be torch's "index out of range in self".
        if isinstance(table, nn.Embedding) and len(ids) != table.num_embeddings:
            raise ValueError(
                f"predict: the {what} id map holds {len(ids)} {what}s but the model was built for "
                f"{table.num_embeddings}: pass the Ratings the model was trained on, or the maps "
                f"load_model returned with it"
            )
    u_raw, m_raw = np.atleast_1d(np.asarray(user_ids)), np.atleast_1d(np.asarray(movie_ids))
    if u_raw.shape != m_raw.shape:
        raise ValueError(f"user_ids and movie_ids differ in shape: {u_raw.shape} vs {m_raw.shape}")
    if unknown == "mean" and mean is None:
        raise ValueError(
            'unknown="mean" needs a Ratings or (users_map, movies_map, mean); or pass a number'
        )
    if unknown not in ("error", "nan", "mean") and not isinstance(unknown, (int, float)):
        raise ValueError(f'unknown must be "error", "nan", "mean" or a number; got {unknown!r}')
    if unknown == "error":
        u_idx, m_idx = users_map.encode(u_raw), movies_map.encode(m_raw)  # KeyError names the id
    else:
        u_idx = pd.Index(users_map.ids).get_indexer(u_raw)
        m_idx = pd.Index(movies_map.ids).get_indexer(m_raw)
    known = (u_idx >= 0) & (m_idx >= 0)
    out = np.full(len(u_raw), np.nan, dtype=np.float64)
    if known.any():
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        u = torch.as_tensor(u_idx[known], dtype=torch.long, device=device)
        m = torch.as_tensor(m_idx[known], dtype=torch.long, device=device)
        out[known] = torch.cat(predictions(model, u, m, bs)).double().cpu().numpy()
    if unknown != "error":
        out[~known] = {"nan": np.nan, "mean": mean}.get(unknown, unknown)
    return out


def save_model(path: str | os.PathLike, model: nn.Module, data_or_maps: Maps) -> Path:
    """Write a trained model with its id maps to `path` atomically (temp file, then rename)."""
    name = type(model).__name__
    if name not in models.MODELS:
        raise TypeError(f"can only save the lesson's models {sorted(models.MODELS)}; got {name}")
    users_map, movies_map, mean = _maps(data_or_maps)
    payload = {
        "format": FORMAT,
        "class": name,
        "hparams": models.hparams(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "user_ids": torch.as_tensor(np.asarray(users_map.ids, dtype=np.int64)),
        "movie_ids": torch.as_tensor(np.asarray(movies_map.ids, dtype=np.int64)),
        "mean_rating": mean,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialised in memory first: torch's own file writer reports a full disk as "unexpected
    # pos ..."; a plain write raises the OSError that atomic_write turns into a clear line.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def _read_payload(path: Path) -> dict:
    """The saved dict, read on the CPU (wherever it was saved) by torch's safe loader."""
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(
            f"{path} is empty (0 bytes), not a lesson5 model file: save the model again "
            f"with inference.save_model"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        # Not torch's advice to rerun with weights_only=False: that is what would run the code.
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f"a reference to {found.group(1)}" if found else "objects other than tensors"
        raise ValueError(
            f"{path} is not a lesson5 model file: it holds {what}, which could run code when "
            f"loaded, so it was not loaded (only files written by inference.save_model load)"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a file that is not its own
        detail = f"{type(e).__name__}: {e}".splitlines()[0]
        raise ValueError(
            f"{path} is not a lesson5 model file: torch cannot read it ({detail}); "
            f"is it whole, and written by inference.save_model?"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a lesson5 model file (no {FORMAT!r} format tag)")
    if missing := [key for key in KEYS if key not in payload]:
        raise ValueError(
            f"{path}: the model file has no {missing[0]!r} entry (it was not written whole by "
            f"inference.save_model); save the model again"
        )
    return payload


def _shown(x) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _checked_model(path: Path, payload: dict) -> nn.Module:
    """The model the payload describes, once its class, hparams, weights and id maps all agree."""
    name, hp, state = payload["class"], payload["hparams"], payload["state_dict"]
    cls = models.MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{path}: unknown model class {name!r}; known: {sorted(models.MODELS)}")
    if not isinstance(hp, dict) or not isinstance(state, dict):
        raise ValueError(f"{path}: its 'hparams' and 'state_dict' must be dicts; save it again")
    try:  # on the meta device: shapes only, so lying sizes allocate nothing
        with torch.device("meta"):
            skeleton = cls(**hp)
    except Exception as e:  # noqa: BLE001 - whatever the constructor says of a bad argument
        raise ValueError(f"{path}: its hparams {hp!r} do not build {name} ({e})") from None
    want = skeleton.state_dict()
    if set(want) != set(state):
        raise ValueError(
            f"{path}: its weights {sorted(state)} are not those of a {name} {sorted(want)}"
        )
    for key, w in want.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or got.shape != w.shape or got.dtype != w.dtype:
            raise ValueError(
                f"{path}: weight {key!r} is {_shown(got)} in the file, but its hparams {hp!r} make it "
                f"{tuple(w.shape)} {w.dtype}: the file is inconsistent; save the model again"
            )
        # A view can claim any shape over a few bytes (stride 0): count the bytes really there.
        if got.untyped_storage().nbytes() < got.numel() * got.element_size():
            raise ValueError(
                f"{path}: weight {key!r} claims {tuple(got.shape)} but the file holds only "
                f"{got.untyped_storage().nbytes():,} bytes of it: the file is inconsistent; "
                f"save the model again"
            )
    for key, emb in (("user_ids", skeleton.u), ("movie_ids", skeleton.m)):
        ids = payload[key]
        n = emb.num_embeddings
        if not (isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and ids.shape == (n,)):
            raise ValueError(
                f"{path}: {key!r} should be {n} int64 ids (one per row of the model's table); "
                f"the file holds {_shown(ids)}"
            )
    mean = payload.get("mean_rating")
    if mean is not None and not (isinstance(mean, (int, float)) and math.isfinite(mean)):
        raise ValueError(f"{path}: 'mean_rating' is {mean!r}, not a finite number or None")
    model = cls(**hp)  # real tensors now, no bigger than the file's own
    model.load_state_dict(state)
    return model


def load_model(
    path: str | os.PathLike, device: torch.device | str | None = "cpu"
) -> tuple[nn.Module, IdMap, IdMap]:
    """(model in eval mode, users_map, movies_map) from a `save_model` file, moved to `device`.

    Read on the CPU wherever saved; `device` None: CUDA if any; a saved mean is `model.mean_rating`.
    """
    from lesson5.device import get_device

    path = Path(path)
    target = get_device(None if device is None else str(device))  # names a device it lacks
    payload = _read_payload(path)
    model = _checked_model(path, payload).to(target)
    model.mean_rating = payload.get("mean_rating")
    model.eval()
    users_map = IdMap("userId", payload["user_ids"].cpu().numpy())
    movies_map = IdMap("movieId", payload["movie_ids"].cpu().numpy())
    return model, users_map, movies_map
