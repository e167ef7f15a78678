"""Atomic file writes: a temporary name in the destination's folder, then a rename.

A crash or a kill mid-write leaves at most a hidden ``.NAME.*.tmp`` file, never a file at the
destination that looks complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from recogan_app.errors import InputError


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``.

    A destination that cannot be written (no permission, read-only or full disk) is an
    :class:`~recogan_app.errors.InputError` naming it, after the temporary file is removed.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file should be readable as usual
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"could not be written: {exc.strerror or exc}", path=path) from exc
        raise


def write_json(path, value) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2, default=float)))
