"""Atomic file writes: a temporary name in the destination's folder, then a rename.

A crash or a kill mid-write leaves at most a hidden ``.NAME.<host>-<pid>-<random>.tmp`` file,
never a file at the destination that looks complete; the next write to the same destination
removes such files of processes that are gone. Files and their folder are fsynced before and after
the rename, so a power cut cannot leave the new name pointing at unwritten blocks.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from recogan_app.errors import InputError


HOST = socket.gethostname().replace("-", "_")
"""This machine's name as it appears in process tags (shared filesystems: another host's pid says nothing here)."""


def process_tag() -> str:
    """``<host>-<pid>-<random>``: a name part unique to this process, from which
    :func:`is_stale` tells later whether its owner is gone."""
    return f"{HOST}-{os.getpid()}-{os.urandom(4).hex()}"


def is_stale(tag: str) -> bool:
    """True when the ``<host>-<pid>-…`` tag names a process of this host that no longer runs;
    a tag of another host, or one that cannot be parsed, is never stale here."""
    host, _, rest = tag.partition("-")
    pid = rest.partition("-")[0]
    if host != HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def fsync_path(path) -> None:
    """Flush a file's or a folder's data and metadata to the disk. A filesystem that cannot fsync
    (some network and FUSE mounts refuse it for folders) is let be; a failed flush is raised."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def remove_stale_temporaries(path) -> None:
    """Remove ``.NAME.*.tmp`` files left beside ``path`` by killed writers of this host."""
    path = Path(path)
    prefix = f".{path.name}."
    for tmp in path.parent.iterdir():
        if tmp.name.startswith(prefix) and tmp.name.endswith(".tmp") and is_stale(tmp.name[len(prefix):-4]):
            tmp.unlink(missing_ok=True)


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
        remove_stale_temporaries(path)
        tmp = str(path.parent / f".{path.name}.{process_tag()}.tmp")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as for any file
        write(tmp)
        fsync_path(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except OSError as exc:  # taken, or a filesystem without hard links: check, then rename (a narrow race)
                if isinstance(exc, FileExistsError) or path.exists():
                    raise InputError("exists already: another job wrote it meanwhile", path=path,
                                     hint="pass --overwrite to replace it") from None
                os.replace(tmp, path)
            else:
                Path(tmp).unlink()
        fsync_path(path.parent)
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
