"""Paths a user names for nas to write (a storage file, an export folder, a plot): checked before anything is
written, so that a path under a regular file or in a folder nothing can be written to (``/proc``, a read-only
mount) is a clear error naming the field and the value, not a traceback after the work is done."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["check_folder"]


def check_folder(folder: str | os.PathLike[str], field: str, value: object) -> None:
    """Refuse ``folder`` (where ``field=value`` makes nas write) if it cannot be created or written to: a part of
    it is a regular file, or its nearest existing folder takes no new file. Creates nothing that stays: a
    writable folder is probed with an anonymous temporary file."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"`{field}` must be a path nas can create, but got {field}={str(value)!r}: "
                         f"{str(existing)!r} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(f"`{field}` must be a path nas can create, but got {field}={str(value)!r}: nothing can be "
                         f"written in {str(existing)!r} ({exc.strerror or type(exc).__name__})") from None
