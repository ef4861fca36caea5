"""Registered datasets: where each comes from and how its image folder is laid out.

``prepare_dataset(name, data_root)`` returns the root of an image folder
(``root/split/class/image``), downloading, verifying and extracting on first use.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import ConfigError, DatasetError

from . import cifar
from .digits import prepare_digits
from .download import download, extract, file_digest, file_lock, verify_checksum


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    url: str
    checksum: str | None   # "algo:hex"; None = not published: pinned on first download
    subdir: str            # image-folder root inside the extracted archive
    splits: tuple[str, str]  # (train, eval)
    description: str
    reader: str = "folder"   # folder: root/split/class/image | aircraft: FGVC-Aircraft's annotation files
    archive_option: bool = False  # --archive PATH|URL may replace the official download (same layout)


@dataclass(frozen=True)
class EmbeddedDataset:
    name: str
    subdir: str
    splits: tuple[str, str]
    description: str


REMOTE = {
    d.name: d for d in (
        RemoteDataset(
            "hotdog", "http://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip",
            "sha1:fba480ffa8aa7e0febbb511d181409f899b9baa5", "hotdog", ("train", "test"),
            "d2l Fine-Tuning: hotdog vs not-hotdog, 2000 train / 800 test photos",
        ),
        RemoteDataset(
            "canidae",
            "https://mindspore-website.obs.cn-north-4.myhuaweicloud.com/notebook/datasets/intermediate/Canidae_data.zip",
            None, "data/Canidae", ("train", "val"),
            "MindSpore ResNet50 transfer tutorial: dogs vs wolves, ~120 train + 30 val per class",
        ),
        RemoteDataset(
            "aircraft", "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
            None, "fgvc-aircraft-2013b", ("trainval", "test"),
            "FGVC-Aircraft 2013b (MindCV custom-dataset guide): 100 variants, 6,667 trainval / 3,333 test "
            "photos, read from images_variant_<split>.txt", reader="aircraft", archive_option=True,
        ),
    )
}


def read_split(name: str, root: Path, split: str, skip_bad_images: bool = False):
    """One split of a prepared dataset (``prepare_dataset``'s root) as an ``ImageFolder``."""
    from .folder import read_image_folder
    if name in REMOTE and REMOTE[name].reader == "aircraft":
        from .aircraft import read_aircraft
        return read_aircraft(root, split, skip_bad_images)
    return read_image_folder(root, split, skip_bad_images=skip_bad_images)

EMBEDDED = {
    d.name: d for d in (
        EmbeddedDataset("digits-source", "source", ("train", "test"),
                        "sklearn digits 0-4 (embedded, offline): the pretraining task"),
        EmbeddedDataset("digits-target", "target", ("train", "test"),
                        "sklearn digits 5-9 (embedded, offline): the transfer task"),
    )
}


def default_data_root() -> Path:
    return Path(os.environ.get("BENCH_DATA_ROOT", Path.home() / ".cache" / "bench" / "data"))


CIFAR10_SPLITS = ("train", "test")


def dataset_names() -> list[str]:
    return sorted(REMOTE) + ["cifar10"] + sorted(EMBEDDED)


def dataset_splits(name: str) -> tuple[str, str]:
    if name in REMOTE:
        return REMOTE[name].splits
    if name == "cifar10":
        return CIFAR10_SPLITS
    if name in EMBEDDED:
        return EMBEDDED[name].splits
    raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())} "
                      "(or pass --data-dir PATH for your own image folder)")


def _pinned_checksum(spec: RemoteDataset, archive: Path) -> str | None:
    """The published checksum, else the one recorded at the first download (trust on first use)."""
    if spec.checksum:
        return spec.checksum
    pin = archive.with_name(archive.name + ".sha256")
    return f"sha256:{pin.read_text().strip()}" if pin.exists() else None


def prepare_remote(spec: RemoteDataset, data_root: Path, url: str | None = None,
                   checksum: str | None = None) -> Path:
    """The dataset's folder, downloaded, verified and extracted on first use. ``url``: an archive in
    the official layout (a URL or a local path, ``--archive``) instead of the official download,
    checked against ``checksum`` where given; it is extracted into a folder named by its own
    SHA-256, so it never stands in for the official archive's folder."""
    if url:
        import hashlib  # a URL's download is cached under the URL's own name: two URLs never share one
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        archive = Path(url) if "://" not in url else data_root / "archives" / f"{tag}-{Path(url).name}"
        if "://" in url:
            download(url, archive, checksum)
        elif not archive.is_file():
            raise DatasetError(f"--archive {url}: no such file")
        elif checksum:
            verify_checksum(archive, checksum, delete=False)
        root = data_root / f"{spec.name}-archive-{file_digest(archive, 'sha256')[:12]}"
    else:
        root = data_root / spec.name
        if (root / spec.subdir).is_dir():
            return root / spec.subdir
        archive = data_root / "archives" / Path(spec.url).name
        download(spec.url, archive, _pinned_checksum(spec, archive))
        _pin(spec, archive)
    folder = root / spec.subdir
    if not folder.is_dir():
        extract(archive, root)
    if not folder.is_dir():
        raise DatasetError(f"archive {archive} did not contain {spec.subdir}/ (extracted to {root})")
    return folder


def _pin(spec: RemoteDataset, archive: Path) -> None:
    """Record the first download's SHA-256 where the dataset publishes none (trust on first use)."""
    pin = archive.with_name(archive.name + ".sha256")
    if not spec.checksum and not pin.exists():
        digest = file_digest(archive, "sha256")
        pin.write_text(digest + "\n")
        print(f"warning: {spec.name} has no published checksum; pinned sha256 {digest} "
              f"in {pin} for later runs", file=sys.stderr)


def prepare_dataset(name: str, data_root: Path | None = None, *, archive: str | None = None,
                    archive_checksum: str | None = None) -> Path:
    """Image-folder root of a registered dataset, fetched and verified on first use
    (one process at a time per dataset: jobs sharing a node take turns)."""
    data_root = Path(data_root) if data_root else default_data_root()
    with file_lock(data_root / f".{name}.lock"):
        return _prepare(name, data_root, archive, archive_checksum)


def _prepare(name: str, data_root: Path, archive: str | None, archive_checksum: str | None) -> Path:
    if name == "cifar10":
        if archive:
            return cifar.prepare_archive(archive, data_root, archive_checksum)
        return cifar.prepare_official(data_root)
    if archive and not (name in REMOTE and REMOTE[name].archive_option):
        takes = ["cifar10"] + [n for n, d in REMOTE.items() if d.archive_option]
        raise ConfigError(f"--archive is supported for {', '.join(takes)} only, not {name!r}")
    if name in EMBEDDED:
        return prepare_digits(data_root) / EMBEDDED[name].subdir
    if name in REMOTE:
        return prepare_remote(REMOTE[name], data_root, archive, archive_checksum)
    dataset_splits(name)  # raises the ConfigError listing valid names
    raise AssertionError("unreachable")
