"""Replacing a file atomically: the path holds either the old or the new
contents, whatever happens to the writing process."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from typing import BinaryIO, Callable


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Calls ``write(f)`` on a temporary file in the folder of ``path``, makes
    it durable (flush, fsync), renames it over ``path`` (``os.replace``,
    atomic on POSIX and Windows) and fsyncs the folder so that the rename
    survives a crash too. If ``write`` raises, the temporary file is removed
    and ``path`` is untouched; a process killed before the rename leaves
    ``path`` untouched and its temporary file ``.NAME.*.tmp`` behind."""
    folder = os.path.dirname(os.path.abspath(path))
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _mode_for(path: str) -> int:
    """The permissions of the file being replaced, else those of a new file
    (0o666 less the umask), instead of mkstemp's 0o600."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; its rename is durable enough
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems cannot fsync a folder; the file is in place.
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
