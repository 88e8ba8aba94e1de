"""Write a file so that its path never holds a half-written copy: temporary file, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# A live writer renames its temporary file within seconds; one untouched this long was killed.
STALE_AFTER_S = 60.0
_TEMP_CHARS = "[a-z0-9_]{8}"  # what tempfile puts between prefix and suffix
# No room for the file: a full disk, a full quota, or a file-size limit (ulimit -f).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _disk_full(path: Path, error: OSError) -> OSError:
    """The OSError a user reads when `path` did not fit: it names the file and what to do."""
    out = OSError(
        f"cannot write {path}: the disk is full ({error.strerror or error}); free some space or "
        f"write elsewhere ({path.name} keeps what it held before; nothing half-written is left)"
    )
    out.errno = error.errno  # only errno: with strerror set, str(out) would drop the message
    return out


def sweep_stale(folder: str | os.PathLike, pattern: str, older_than: float = STALE_AFTER_S) -> None:
    """Remove what a killed run left in `folder`: files matching `pattern`, older than `older_than` s."""
    rx, now = re.compile(pattern), time.time()
    try:
        entries = [e for e in os.scandir(folder) if rx.fullmatch(e.name)]
    except OSError:  # no folder: nothing to sweep
        return
    for entry in entries:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: leave it
            stale = now - entry.stat(follow_symlinks=False).st_mtime >= older_than
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a fresh temporary file beside `path`, then rename it over `path`.

    On any failure (Ctrl-C included) the temporary file goes and `path` keeps what it held; a
    killed run's leftovers are swept first; a full disk raises an OSError naming `path`.
    """
    path = Path(path)
    sweep_stale(path.parent, re.escape(f".{path.name}.") + _TEMP_CHARS + re.escape(".tmp"))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise (_disk_full(path, e) if e.errno in DISK_FULL else e) from e
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            raise _disk_full(path, e) from e
        raise
    return path
