"""Using a trained model: predictions for raw MovieLens ids, and saving/loading it with its id maps.

Notebook 03.

Contract: a saved file holds the model's class name, its constructor arguments (read off the
model by `models.hparams`), its weights, both id maps and the training mean rating, under the
format tag "lesson5-model-1"; `load_model` refuses any other file with a message naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from torch import nn

from lesson5 import models
from lesson5.atomic import atomic_write
from lesson5.data import IdMap, Ratings

Maps = (
    Ratings | tuple[IdMap, IdMap] | tuple[IdMap, IdMap, float | None]
)  # raw-id maps (and mean rating)


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


@torch.no_grad()
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

    Notebook 03.

    An id not seen in training raises KeyError naming it (`unknown="error"`), or its pairs get
    NaN (`"nan"`), the mean training rating (`"mean"`; needs a Ratings or maps with a mean),
    or a number you give.
    """
    users_map, movies_map, mean = _maps(data_or_maps)
    u_raw, m_raw = np.atleast_1d(np.asarray(user_ids)), np.atleast_1d(np.asarray(movie_ids))
    if u_raw.shape != m_raw.shape:
        raise ValueError(f"user_ids and movie_ids differ in shape: {u_raw.shape} vs {m_raw.shape}")
    if unknown == "error":
        u_idx, m_idx = users_map.encode(u_raw), movies_map.encode(m_raw)  # KeyError names the id
        known = np.ones(len(u_raw), dtype=bool)
    else:
        if unknown == "nan":
            fill = float("nan")
        elif unknown == "mean":
            if mean is None:
                raise ValueError(
                    'unknown="mean" needs a Ratings or (users_map, movies_map, mean); or pass a number'
                )
            fill = mean
        elif isinstance(unknown, (int, float)):
            fill = float(unknown)
        else:
            raise ValueError(f'unknown must be "error", "nan", "mean" or a number; got {unknown!r}')
        u_idx = pd.Index(users_map.ids).get_indexer(u_raw)
        m_idx = pd.Index(movies_map.ids).get_indexer(m_raw)
        known = (u_idx >= 0) & (m_idx >= 0)
    out = np.full(len(u_raw), np.nan, dtype=np.float64)
    if known.any():
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        u = torch.as_tensor(u_idx[known], dtype=torch.long, device=device)
        m = torch.as_tensor(m_idx[known], dtype=torch.long, device=device)
        was_training = model.training
        model.eval()
        try:
            preds = torch.cat([model(u[i : i + bs], m[i : i + bs]) for i in range(0, len(u), bs)])
        finally:
            model.train(was_training)
        out[known] = preds.double().cpu().numpy()
    if unknown != "error":
        out[~known] = fill
    return out


def save_model(path: str | os.PathLike, model: nn.Module, data_or_maps: Maps) -> Path:
    """Write a trained model with its id maps to `path` atomically (temp file, then rename).

    Notebook 03.
    """
    name = type(model).__name__
    if name not in models.MODELS:
        raise TypeError(f"can only save the lesson's models {sorted(models.MODELS)}; got {name}")
    users_map, movies_map, mean = _maps(data_or_maps)
    payload = {
        "format": "lesson5-model-1",
        "class": name,
        "hparams": models.hparams(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "user_ids": torch.as_tensor(np.asarray(users_map.ids, dtype=np.int64)),
        "movie_ids": torch.as_tensor(np.asarray(movies_map.ids, dtype=np.int64)),
        "mean_rating": mean,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_model(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[nn.Module, IdMap, IdMap]:
    """(model, users_map, movies_map) from a file written by `save_model`; the model is in eval mode.

    Notebook 03.

    The training mean rating, when it was saved, is on `model.mean_rating` (for `unknown="mean"`,
    pass `(users_map, movies_map, model.mean_rating)` to `predict`).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path} is not a lesson5 model file: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != "lesson5-model-1":
        raise ValueError(f"{path} is not a lesson5 model file (no 'lesson5-model-1' format tag)")
    cls = models.MODELS.get(payload["class"])
    if cls is None:
        raise ValueError(f"{path}: unknown model class {payload['class']!r}")
    model = cls(**payload["hparams"]).to(device)
    model.load_state_dict(payload["state_dict"])
    model.mean_rating = payload.get("mean_rating")
    model.eval()
    users_map = IdMap("userId", payload["user_ids"].cpu().numpy())
    movies_map = IdMap("movieId", payload["movie_ids"].cpu().numpy())
    return model, users_map, movies_map
