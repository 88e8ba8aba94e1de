"""`python -m lesson5 doctor`: is this environment ready for the lesson?

Notebook 00.

One line per requirement: `OK`, `FAIL` or `--` (optional, missing); any FAIL: `main` returns 1.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

Check = tuple[str, str, str]  # (status, what, detail)


def _dependencies() -> Iterator[Check]:
    for text in md.requires("lesson5") or []:
        req = Requirement(text)
        if req.marker is not None:  # an extra's requirement (test, lab, run): not the lesson's
            continue
        try:
            have = md.version(req.name)
        except md.PackageNotFoundError:
            yield "FAIL", req.name, f"missing; pip install '{req}'"
            continue
        ok = req.specifier.contains(Version(have), prereleases=True)
        yield ("OK" if ok else "FAIL"), req.name, f"{have} (needs {req.specifier})"


def _torch() -> Iterator[Check]:
    import torch

    from lesson5.device import get_device

    cuda = "CUDA available" if torch.cuda.is_available() else "no CUDA device"
    yield "OK", "device", f"{get_device()} ({cuda}; LESSON5_DEVICE=cpu|cuda forces one)"


def _writable(folder: Path) -> str | None:
    """None if a file can be made in `folder` (made if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


def _data() -> Iterator[Check]:
    import pooch

    from lesson5.download import SHA256, ZIP_NAME, data_dir, shown

    folder = data_dir()
    zip_path = folder / ZIP_NAME
    if str(folder) == "synthetic":
        yield "OK", "data", "LESSON5_DATA=synthetic: a small made-up data set"
    elif folder.is_file():
        yield "OK", "data", f"{shown(folder)} (LESSON5_DATA; data.load() validates it)"
    elif zip_path.is_file():
        with zip_path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest == SHA256:
            yield "OK", "data", f"{shown(zip_path)} (SHA-256 of the 2018 release)"
        else:
            wrong = f"SHA-256 {digest[:12]}... is not the release's; delete it"
            yield "FAIL", "data", f"{shown(zip_path)}: {wrong}"
    elif (why := _writable(folder)) is None:
        yield "--", "data", f"not downloaded yet: data.load() fetches it into {shown(folder)}"
    else:
        yield "FAIL", "data", f"{shown(folder)} has no {ZIP_NAME} and is not writable ({why})"
    cache = Path(pooch.os_cache("lesson5"))
    if (why := _writable(cache)) is None:
        yield "OK", "cache", f"{shown(cache)} (writable: trained models are kept here)"
    else:
        yield "FAIL", "cache", f"{shown(cache)} is not writable ({why})"


def _optional() -> Iterator[Check]:
    from lesson5.excel.recalc import find_soffice

    try:
        yield "OK", "ipywidgets", f"{md.version('ipywidgets')} (progress bars as widgets)"
    except md.PackageNotFoundError:
        yield "--", "ipywidgets", "not installed: progress bars print as text"
    missing = "not found: needed only for `lesson5 excel --check` and its tests"
    if find_soffice():  # the one recalc uses, $LESSON5_SOFFICE included
        yield "OK", "LibreOffice", "found (recalculates the workbooks)"
    else:
        yield "--", "LibreOffice", missing


def checks() -> list[Check]:
    """Every check as (status, what, detail), in the order printed."""
    py = ".".join(map(str, sys.version_info[:3]))
    need = md.metadata("lesson5")["Requires-Python"] or ""
    ok = not need or Version(py) in Requirement(f"python{need}").specifier
    found = [("OK" if ok else "FAIL", "python", f"{py} (needs {need})")]
    found.append(("OK", "lesson5", md.version("lesson5")))
    return [*found, *_dependencies(), *_torch(), *_data(), *_optional()]


def main() -> int:
    """Print one line per check; return 1 if any failed."""
    found = checks()
    width = max(len(what) for _, what, _ in found)
    for status, what, detail in found:
        print(f"{status:<4} {what:<{width}}  {detail}")
    failed = [what for status, what, _ in found if status == "FAIL"]
    print(f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "all required checks OK")
    return 1 if failed else 0
