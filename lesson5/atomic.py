"""Write a file so that its path never holds a half-written copy: temporary file, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a fresh temporary file beside `path`, then rename it over `path`.

    The temporary name is unique (two writers never share it); on any failure it is removed
    and `path` keeps whatever it held before. Used by the workbooks (notebooks 01, 02), saved
    models (notebook 03) and the lesson run's outputs.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
