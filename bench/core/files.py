"""Writing a file whole or not at all: one mechanism for records, weights and checkpoints.

A temporary name beside the target is written, then renamed over it; the file gets the
mode the process's umask gives a new file (``mkstemp`` alone would leave it 0600); a
full disk is a ``DiskFull`` error naming the file, so a sweep can stop cleanly.
"""
from __future__ import annotations

import errno
import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFull

# what reading a damaged zip archive raises: its index (BadZipFile, LargeZipFile) or a member whose deflate
# stream breaks (zlib.error, found by the fuzzer); every reader of an untrusted zip turns these into its error
ZIP_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error)

_UMASK = os.umask(0)
os.umask(_UMASK)
FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; on success it becomes ``path``, on failure it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=suffix)
        os.close(fd)
    except OSError as e:
        raise _translated(e, path) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _translated(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _translated(error: OSError, path: Path) -> OSError:
    if error.errno in FULL:
        return DiskFull(f"no space left on the device writing {path} ({os.strerror(error.errno)})")
    return error


def default_cache_dir() -> Path:
    """Where downloads, converted weights, FLOP tables and the machine's peak are kept."""
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "bench"))
