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


def batches_to_folder(batches_dir: Path, out: Path) -> Path:
    """Write the pickled ``data_batch_1..5`` / ``test_batch`` as PNG image folders."""
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        for split, files in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
            for fname in files:
                path = batches_dir / fname
                if not path.exists():
                    raise DatasetError(f"CIFAR-10 batch {path} is missing")
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
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
