"""Atomic file writes: write to a temporary file beside the target, fsync, then rename over it.

An interrupted process (Ctrl-C, kill -9, full disk) leaves either the old file or the complete new one, never a
truncated file under the final name. Temporary names start with ".gancli-tmp-" so they are easy to find and clean.
While it is written, a temporary file is locked (flock), so `remove_stale` can tell the leftovers of a killed
process from the files another live process is writing into the same folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temp files are never removed automatically
    fcntl = None

TMP_PREFIX = ".gancli-tmp-"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it is fsynced and renamed to `target`.

    On any exception the temporary file is removed and the target is untouched.

    >>> with atomic_path("out.png") as tmp:
    ...     image.save(tmp, format="PNG")
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent or ".")
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:  # held until the rename: this file is in use (released if we die)
            with contextlib.suppress(OSError):  # a file system without locks: remove_stale cannot lock it either
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)


def remove_stale(folder: str | os.PathLike) -> int:
    """Remove the temporary files that processes killed mid-write left in `folder`; returns how many.

    A file that a live process is still writing (it holds the lock) is left alone. Without flock (Windows) nothing
    is removed.
    """
    if fcntl is None:
        return 0
    removed = 0
    for path in Path(folder).glob(f"{TMP_PREFIX}*"):
        try:
            with open(path, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
                removed += 1
        except OSError:  # locked (in use), already gone, or not ours to remove
            continue
    return removed
