"""Atomic file writes: a temporary name in the destination's folder, then a rename.

A crash or a kill mid-write leaves at most a hidden ``.NAME.*.tmp`` file, never a file at the
destination that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from recogan_app.errors import InputError


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path, write: Callable[[str], None], *, overwrite: bool = True) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``.

    A destination that cannot be written (no permission, read-only or full disk) is an
    :class:`~recogan_app.errors.InputError` naming it, after the temporary file is removed.
    Without ``overwrite`` the file is put in place by a hard link, which fails if ``path``
    exists by then: of two jobs writing one file at once, the second says so instead of
    silently replacing the first's result.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file should be readable as usual
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise InputError("exists already: another job wrote it meanwhile", path=path,
                                 hint="pass --overwrite to replace it") from None
            except OSError:  # a filesystem without hard links: check, then rename (a narrow race)
                if path.exists():
                    raise InputError("exists already: another job wrote it meanwhile", path=path,
                                     hint="pass --overwrite to replace it") from None
                os.replace(tmp, path)
            else:
                Path(tmp).unlink()
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"could not be written: {exc.strerror or exc}", path=path) from exc
        raise


def write_json(path, value) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2, default=float)))


def check_writable(path) -> None:
    """Refuse, before any long work, a destination :func:`write_atomic` would only fail on at
    the end: a directory, or a folder where no file can be created (missing folders are made)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory", path=path, hint="give a file name")
    folder = next(p for p in path.parents if p.exists())
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"could not be written: {exc.strerror or exc}", path=path) from None


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
