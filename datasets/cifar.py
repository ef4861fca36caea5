"""CIFAR-10 as an image folder: from the official pickled batches, or from an
image-folder archive of the same classes (``--archive PATH|URL``).

Either way the result is ``<root>/{train,test}/<class>/<image>`` and the suite's
ordinary reader, transforms and loaders apply.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.core.errors import DatasetError

from .download import download, extract, parse_checksum, verify_checksum

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_CHECKSUM = "md5:c58f30108f718f92721af3b95e74349a"
# Known image-folder re-encodings (JPEG) of the same 60,000 images, accepted by --archive.
KNOWN_FOLDER_ARCHIVES = {
    "sha256:d175fc167b175a42e060bf346e298bccfbfc54be7bebb9686bd463d2f838c72b": "cifar10",
}


class _BatchUnpickler(pickle.Unpickler):
    """The official batches are pickles: only what they hold (a dict, NumPy's array
    reconstruction) may be built from them; anything else is refused, nothing runs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # bytes, in protocol 2

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise DatasetError(f"CIFAR-10 batch {self.path}: refusing to unpickle {module}.{name}")


def load_batch(path: Path) -> dict:
    """One official CIFAR-10 batch, read within the pickle bounds (``bench.core.pickles``)."""
    from bench.core.errors import CheckpointError
    from bench.core.pickles import check_pickle
    with open(path, "rb") as f:
        try:
            check_pickle(f, path, "CIFAR-10 batch")
        except CheckpointError as e:
            raise DatasetError(str(e)) from None
        f.seek(0)
        unpickler = _BatchUnpickler(f, encoding="bytes")
        unpickler.path = path
        try:
            batch = unpickler.load()
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError) as e:
            raise DatasetError(f"CIFAR-10 batch {path} is malformed: {type(e).__name__}: {e}") from None
    if not (isinstance(batch, dict) and isinstance(batch.get(b"data"), np.ndarray) and batch[b"data"].dtype == np.uint8
            and batch[b"data"].ndim == 2 and batch[b"data"].shape[1] == 3072
            and isinstance(batch.get(b"labels"), list) and len(batch[b"labels"]) == len(batch[b"data"])
            and all(isinstance(y, int) and 0 <= y < len(CLASSES) for y in batch[b"labels"])):
        raise DatasetError(f"CIFAR-10 batch {path} does not hold uint8 images (N x 3072) with labels 0..9")
    return batch


def batches_to_folder(batches_dir: Path, out: Path) -> Path:
    """Write the pickled ``data_batch_1..5`` / ``test_batch`` as PNG image folders."""
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        for split, files in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
            for fname in files:
                path = batches_dir / fname
                if not path.exists():
                    raise DatasetError(f"CIFAR-10 batch {path} is missing")
                batch = load_batch(path)
                images = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                for k, (img, label) in enumerate(zip(images, batch[b"labels"])):
                    d = tmp / split / CLASSES[label]
                    d.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.ascontiguousarray(img)).save(d / f"{fname}_{k:05d}.png")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def prepare_official(data_root: Path, url: str = OFFICIAL_URL, checksum: str = OFFICIAL_CHECKSUM) -> Path:
    folder = data_root / "cifar10" / "folder"
    if folder.is_dir():
        return folder
    archive = download(url, data_root / "archives" / Path(url).name, checksum)
    extracted = extract(archive, data_root / "cifar10" / "raw")
    return batches_to_folder(extracted / "cifar-10-batches-py", folder)


def prepare_archive(source: str, data_root: Path, checksum: str | None) -> Path:
    """An image-folder archive from a local path or URL, checksum-verified, extracted once."""
    if checksum is None:
        raise DatasetError(f"--archive {source}: give its checksum with --archive-checksum ALGO:HEX "
                           f"(known: {', '.join(KNOWN_FOLDER_ARCHIVES)})")
    algo, hexdigest = parse_checksum(checksum)
    root = data_root / f"cifar10-archive-{hexdigest[:12]}"
    subdir = KNOWN_FOLDER_ARCHIVES.get(f"{algo}:{hexdigest}", "cifar10")
    if (root / subdir).is_dir():
        return root / subdir
    if source.startswith(("http://", "https://")):
        path = download(source, data_root / "archives" / Path(source).name, checksum)
    else:
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"--archive {source}: no such file")
        verify_checksum(path, checksum, delete=False)
    extract(path, root)
    folder = root / subdir
    missing = [s for s in ("train", "test") if not (folder / s).is_dir()]
    if missing:
        raise DatasetError(f"archive {source} has no {subdir}/{missing[0]}/ (expected {subdir}/{{train,test}}/<class>/)")
    return folder
