"""Atomic file writes: write to a temporary file beside the target, fsync, then rename over it.

An interrupted process (Ctrl-C, kill -9, full disk) leaves either the old file or the complete new one, never a
truncated file under the final name. Temporary names start with ".gancli-tmp-" so they are easy to find and clean.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
