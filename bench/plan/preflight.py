"""Everything checkable is checked before any work: paths, names and lists a sweep's configs use.

A sweep's parent calls :func:`check_sweep` after the configurations are built and
before the first job starts, so a missing ``--data-dir`` is refused in a second, not
after a pretrain of minutes; every message names the option, the value and what was
expected. What only a run can find (a corrupt image, a framework crash) stays a
failed record of that run.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.core.errors import ConfigError

from bench.weights.files import read_weights

from .config import RunConfig

MIN_FREE_BYTES = 50 << 20   # an output folder with less free space than this is refused


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """``out`` is (or can be made) a writable folder with room for records."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{option} {out}: cannot create it ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {out}: not writable")
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(f"{option} {out}: only {free >> 20} MiB free on its filesystem "
                          f"(at least {MIN_FREE_BYTES >> 20} MiB needed)")
    return out


def _check_split_dirs(config: RunConfig) -> None:
    root = Path(config.data_dir)
    if not root.is_dir():
        raise ConfigError(f"--data-dir {root}: no such directory (layout DIR/<split>/<class>/<image>)")
    for option, split in (("--train-split", config.train_split), ("--eval-split", config.eval_split)):
        if not (root / split).is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise ConfigError(f"{option} {split}: no directory {root / split} "
                              f"(splits present: {', '.join(have) or 'none'})")
    if config.classes:
        have = {p.name for p in (root / config.train_split).iterdir() if p.is_dir()}
        unknown = [c for c in config.classes if c not in have]
        if unknown:
            raise ConfigError(f"--classes: {', '.join(unknown)} not in {root / config.train_split} "
                              f"(has: {', '.join(sorted(have))})")


def _check_registered(config: RunConfig) -> None:
    """A registered dataset's splits and (CIFAR-10's) classes, known before anything is downloaded."""
    from datasets.cifar import CLASSES
    from datasets.registry import dataset_splits
    splits = dataset_splits(config.dataset)
    for option, split in (("--train-split", config.train_split), ("--eval-split", config.eval_split)):
        if split not in splits:
            raise ConfigError(f"{option} {split}: dataset {config.dataset} has the splits {', '.join(splits)}")
    unknown = [c for c in config.classes or () if config.dataset == "cifar10" and c not in CLASSES]
    if unknown:
        raise ConfigError(f"--classes: {', '.join(unknown)} not in CIFAR-10 (has: {', '.join(CLASSES)})")


def check_config(config: RunConfig) -> None:
    """The paths, splits, classes and checksums one configuration names exist and are well formed."""
    from datasets.download import parse_checksum
    if config.data_dir:
        _check_split_dirs(config)
    elif config.dataset != "folder":
        _check_registered(config)
    if config.archive_checksum:
        parse_checksum(config.archive_checksum)
    if config.pretrained not in ("suite", "imagenet", "zoo", "none"):
        path = Path(config.pretrained)
        if not path.is_file():
            raise ConfigError(f"--pretrained {path}: no such file (valid: suite, imagenet, zoo, none, or a path "
                              "to weights: .npz, .params, .ckpt, .pth)")
    if config.archive and "://" not in config.archive and not Path(config.archive).is_file():
        raise ConfigError(f"--archive {config.archive}: no such file (a path or a URL)")


def check_annotated(configs: list[RunConfig], data_root: Path) -> None:
    """A dataset read from annotation files (FGVC-Aircraft) is fetched and both splits read here, in
    the sweep's parent (no framework needed): a missing annotation file or image is one error before
    any job, not one failed record per job."""
    from datasets.registry import REMOTE, prepare_dataset, read_split
    seen = set()
    for c in configs:
        key = (c.dataset, c.archive, c.archive_checksum, c.train_split, c.eval_split)
        if c.data_dir or c.dataset not in REMOTE or REMOTE[c.dataset].reader == "folder" or key in seen:
            continue
        seen.add(key)
        root = prepare_dataset(c.dataset, data_root, archive=c.archive, archive_checksum=c.archive_checksum)
        for split in (c.train_split, c.eval_split):
            read_split(c.dataset, root, split)


def check_sweep(configs: list[RunConfig], out: Path, cache_dir: Path, data_root: Path) -> None:
    """Every configuration's paths, and the folders the sweep writes into."""
    for config in {c.config_hash(): c for c in configs}.values():
        check_config(config)
    for path in sorted({c.pretrained for c in configs} - {"suite", "imagenet", "zoo", "none"}):
        read_weights(path)  # NumPy-only and bounded: a hostile or broken file is refused here, before any work
    check_out_dir(out)
    check_out_dir(cache_dir, "--cache-dir")
    check_out_dir(data_root, "--data-root")
    check_annotated(configs, data_root)
