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


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file should be readable as usual
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, value) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2, default=float)))
