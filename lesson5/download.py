"""The MovieLens zip: where it is cached, and fetching it verified by its hash.

Contract: `ZIP_NAME` in the data folder is absent or has the SHA-256 below. pooch hashes a cached
copy on every call and downloads into a temporary file renamed only once its hash matches; a
wrong copy is removed when a download fails, and a killed download's temporary files are swept.
"""

from __future__ import annotations

import os
from pathlib import Path

from lesson5.atomic import sweep_stale

URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
ZIP_NAME = "ml-latest-small.zip"
SHA256 = "859da233c6929ebc9202e9516cdefa8a3c695aef67d1878249d6036c3513c023"
# The 2016 release the course was taught on: GroupLens no longer serves it, read from a folder only.
RELEASE_2016_DIR = "ml-latest-small-2016"


class DataError(ValueError):
    """Raised for data that is missing, corrupt or malformed; the message says where and what."""


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: `path`, else $LESSON5_DATA, else a per-user cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get("LESSON5_DATA"):
        return Path(os.environ["LESSON5_DATA"]).expanduser()
    import pooch

    return Path(pooch.os_cache("lesson5"))


def shown(path: str | os.PathLike) -> str:
    """A path as printed in a notebook: under the home folder it starts with `~`."""
    text, home = str(path), str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def _by_hand_hint(target: Path) -> str:
    return (
        f"Download {URL} by hand and put it at {target} "
        f"(or point $LESSON5_DATA at the folder that holds {ZIP_NAME}); its SHA-256 must be {SHA256}."
    )


# pooch downloads into tempfile.NamedTemporaryFile(dir=cache): "tmp" and 8 random characters.
_POOCH_TEMP = "tmp[a-z0-9_]{8}"


def _drop_untrusted(target: Path, sha256: str) -> None:
    """Remove a cached file whose hash is wrong: nothing untrusted stays under the expected name."""
    import pooch

    try:
        if target.is_file() and pooch.file_hash(str(target)) != sha256:
            target.unlink()
    except OSError as e:
        raise DataError(
            f"{target} does not have the expected SHA-256 {sha256} and cannot be removed ({e}). "
            + _by_hand_hint(target)
        ) from e


def fetch(
    directory: str | os.PathLike | None = None,
    *,
    url: str = URL,
    sha256: str = SHA256,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Path to a verified `ml-latest-small.zip`, downloading it into the cache if needed."""
    import pooch
    import requests

    folder = data_dir(directory)
    target = folder / ZIP_NAME
    hint = _by_hand_hint(target)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"the data folder {folder} is a file, not a folder. {hint}")
    if target.is_dir():
        raise DataError(
            f"{target} is a folder, but the downloaded zip goes under that name: move or rename that folder, "
            f"or point $LESSON5_DATA at another folder."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data folder {folder}: {e}. {hint}") from e
    sweep_stale(folder, _POOCH_TEMP)
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    try:
        path = pooch.retrieve(
            url, known_hash=f"sha256:{sha256}", fname=ZIP_NAME, path=folder, downloader=downloader
        )
    except (requests.RequestException, OSError) as e:
        _drop_untrusted(target, sha256)
        raise DataError(f"could not download {url}: {e}. {hint}") from e
    except ValueError as e:  # pooch: hash mismatch (the temporary file is already removed)
        _drop_untrusted(target, sha256)
        raise DataError(f"downloaded {url} but its content is wrong: {e}. {hint}") from e
    return Path(path)


def release_2016(directory: str | os.PathLike | None = None) -> Path | None:
    """The folder of the 2016 release if someone put it in the data folder, else None."""
    folder = data_dir(directory) / RELEASE_2016_DIR
    return folder if (folder / "ratings.csv").is_file() else None
