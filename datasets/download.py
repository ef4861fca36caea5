"""Download with progress and resume, verify a checksum, extract safely.

A transfer that stops early leaves ``<file>.part`` and raises; the next call
resumes it with an HTTP Range request (or restarts cleanly if the server
ignores ranges). A checksum mismatch deletes the file and refuses it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from bench.core.errors import DatasetError, DownloadError
from bench.core.files import ZIP_DAMAGE

CHUNK = 1 << 16
# What a server may make a download cost. The largest file the suite fetches (FGVC-Aircraft) is
# 2.75 GB; a server that never ends, or trickles, is refused instead of filling the disk or
# holding a job until its time-out.
MAX_DOWNLOAD_BYTES = 8 << 30
MIN_RATE = 16 << 10         # bytes/s, averaged from GRACE_S on
GRACE_S = 60.0
MAX_SECONDS = 4 * 3600.0    # a whole download: FGVC-Aircraft at 200 KB/s; a trickle above MIN_RATE stops here
# What an archive may expand to: the disk's free space, and neither more members nor a higher
# expansion ratio than any dataset's archive has (CIFAR-10 as JPEG folders: 60,011 entries;
# image archives barely compress), so an archive bomb is refused before a byte is written.
MAX_MEMBERS = 200_000
MAX_RATIO = 50              # expanded bytes / archive bytes, once the expansion passes RATIO_FROM
RATIO_FROM = 1 << 30


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` -> ("sha256", "<hex>"): a whole digest of its algorithm, never a prefix."""
    import re
    algo, _, hexdigest = checksum.partition(":")
    width = {"md5": 32, "sha1": 40, "sha256": 64}.get(algo)
    if width is None or not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", hexdigest):
        raise DatasetError(f"checksum {checksum!r} must look like sha256:<64 hex>, sha1:<40 hex> or md5:<32 hex>")
    return algo, hexdigest.lower()


def verify_checksum(path: Path, checksum: str, *, delete: bool = True) -> None:
    """Raise DownloadError when ``path`` is empty or its digest differs from ``checksum``;
    a downloaded file is deleted (``delete``), a user's own file is left alone."""
    if path.stat().st_size == 0:
        if delete:
            path.unlink()
        raise DownloadError(f"{path} is empty (0 bytes)" + ("; deleted it, download again" if delete else ""))
    algo, expected = parse_checksum(checksum)
    actual = file_digest(path, algo)
    if actual != expected:
        if delete:
            path.unlink()
        raise DownloadError(
            f"checksum mismatch for {path}: expected {algo} {expected}, got {actual}"
            + ("; the file was deleted" if delete else "")
        )


def _open(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "bench"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # range past the end: the .part is stale
            raise DownloadError(f"server rejected resume of {url} at byte {start}") from None
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None


def download(url: str, dest: Path, checksum: str | None, *, size: int | None = None, timeout: float = 60.0,
             progress: bool = True, max_bytes: int = MAX_DOWNLOAD_BYTES, min_rate: float = MIN_RATE,
             max_seconds: float = MAX_SECONDS) -> Path:
    """Fetch ``url`` to ``dest`` (resuming a ``.part``), then verify ``checksum``. ``size``: the bytes
    the file is known to have; a server declaring another length is refused before a byte is written.
    A transfer longer than ``size``, its Content-Length or ``max_bytes``, silent for ``timeout`` s,
    slower on average than ``min_rate`` bytes/s after ``GRACE_S``, or longer than ``max_seconds`` in
    all, stops with DownloadError (the partial file is kept for a later resume, except when the
    server sent more than it may)."""
    import time
    dest = Path(dest)
    if not dest.name or dest.name in (".", "..") or dest.is_dir():
        raise DownloadError(f"{url}: cannot save it as {dest} (the URL must end in a file name)")
    if dest.exists():
        if checksum:
            verify_checksum(dest, checksum)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    resp = _open(url, start, timeout)
    with resp:
        if start and resp.status != 206:  # server ignored Range: restart from zero
            start = 0
        length = resp.headers.get("Content-Length")
        try:
            total = int(length) + start if length is not None else None
        except ValueError:
            raise DownloadError(f"{url}: Content-Length {length[:40]!r} is not a number") from None
        if total is not None and total > max_bytes:
            raise DownloadError(f"{url} declares {total} bytes, more than the {max_bytes} a download may have")
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{url} declares {total} bytes; the file it should be has {size}; refused")
        limit = min(x for x in (total, size, max_bytes) if x is not None)
        received, began = start, time.monotonic()
        with open(part, "ab" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, disable=not progress,
            desc=dest.name, leave=False,
        ) as bar:
            try:
                while block := resp.read1(CHUNK):  # what has arrived: a trickle still reaches the checks
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
                    if received > limit:
                        f.close()
                        part.unlink()
                        raise DownloadError(f"{url} sent more than its {limit} bytes "
                                            f"({'Content-Length' if total is not None else 'the cap'}); refused")
                    elapsed = time.monotonic() - began
                    if elapsed > max_seconds:
                        raise DownloadError(f"download of {url} still running after {elapsed:.0f} s, longer than "
                                            f"the {max_seconds:.0f} s a download may take; partial file kept at "
                                            f"{part}, run again to resume")
                    if elapsed > GRACE_S and (received - start) / elapsed < min_rate:
                        raise DownloadError(
                            f"download of {url} averages {(received - start) / elapsed:.0f} B/s after "
                            f"{elapsed:.0f} s, below the {min_rate:.0f} B/s floor; partial file kept at {part}, "
                            "run again to resume")
            except (OSError, urllib.error.URLError) as e:
                raise DownloadError(
                    f"download of {url} interrupted at {received} bytes ({e}); "
                    f"partial file kept at {part}, run again to resume"
                ) from None
    if total is not None and received < total:
        raise DownloadError(
            f"download of {url} interrupted at {received} of {total} bytes; "
            f"partial file kept at {part}, run again to resume"
        )
    os.replace(part, dest)
    if checksum:
        verify_checksum(dest, checksum)
    return dest


@contextmanager
def file_lock(path: Path):
    """An exclusive lock on ``path`` (created): two processes preparing the same data take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# what a damaged archive raises as it is read (a tar's, or a zip's: ZIP_DAMAGE)
BROKEN = (OSError, tarfile.TarError, EOFError, *ZIP_DAMAGE)


def _members(archive: Path) -> tuple[int, int]:
    """(number of members, bytes they expand to), read from the archive's own index before extracting
    (a zip's declared sizes bound what it may expand to: zipfile stops at them)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                infos = z.infolist()
                return len(infos), sum(i.file_size for i in infos)
        count = size = 0
        with tarfile.open(archive) as t:
            for m in t:  # streamed: an archive of millions of members is refused before they are all read
                count += 1
                size += m.size
                if count > MAX_MEMBERS:
                    break
        return count, size
    except BROKEN as e:
        raise DatasetError(f"cannot extract {archive}: {e}") from None


def _check_inside(base: Path, names) -> None:
    base = base.resolve()
    for name in names:
        target = (base / name).resolve()
        if base != target and base not in target.parents:
            raise DatasetError(f"archive member {name!r} would extract outside {base}; refusing")


def extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` (zip or tar.*) into ``dest`` atomically: all of it or nothing."""
    archive, dest = Path(archive), Path(dest)
    if archive.stat().st_size == 0:
        raise DatasetError(f"archive {archive} is empty (0 bytes)")
    if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
        raise DatasetError(f"{archive} is neither a zip nor a tar archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    members, need = _members(archive)
    if members > MAX_MEMBERS:
        raise DatasetError(f"archive {archive} holds more than {MAX_MEMBERS} members; refusing (no dataset the "
                           "suite reads has that many)")
    if need > RATIO_FROM and need > MAX_RATIO * archive.stat().st_size:
        raise DatasetError(f"archive {archive} expands to {need / 1e6:.0f} MB, {need / archive.stat().st_size:.0f}x "
                           f"its size (more than {MAX_RATIO}x past {RATIO_FROM >> 30} GiB: an archive bomb); refusing")
    free = shutil.disk_usage(dest.parent).free
    if need > free:
        raise DatasetError(
            f"not enough disk space to extract {archive}: needs {need / 1e6:.1f} MB, "
            f"{free / 1e6:.1f} MB free under {dest.parent}"
        )
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _check_inside(tmp, z.namelist())
                z.extractall(tmp)
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if m.isfile() or m.isdir()]
                _check_inside(tmp, [m.name for m in members])
                # the "data" filter: no setuid/setgid bits, no device files, the user's ownership
                # (as root, extractall would keep the archive's owners and modes)
                t.extractall(tmp, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BROKEN as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"cannot extract {archive}: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
