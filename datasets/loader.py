"""The shared input pipeline: the same decoded, augmented pixels for every backend.

Augmentation randomness is drawn per (seed, epoch, sample index), so a batch's
pixels do not depend on thread scheduling or on which backend consumes them.
Decoding runs in a small thread pool, one batch ahead of the training step.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from .folder import ImageFolder

Batch = tuple[np.ndarray, np.ndarray]  # (float32 N,C,H,W ; int32 N)


class BatchLoader:
    """Iterate ``(x, y)`` numpy batches over an :class:`ImageFolder`.

    ``train=True``: shuffled each epoch, incomplete last batch dropped (fixed shapes,
    so compiled graphs are not rebuilt mid-epoch). ``train=False``: in order, all images;
    the eval transform is deterministic, so the decoded batches are kept after the first
    pass when they fit in ``cache_bytes`` (decoding dominated scoring; measured).
    """

    def __init__(self, dataset: ImageFolder, transform: Callable, batch_size: int, *,
                 train: bool, seed: int = 0, workers: int = 2, cache_bytes: int = 1 << 30):
        self.dataset = dataset
        self.transform = transform
        self.batch_size = min(batch_size, len(dataset)) if train else batch_size
        self.train = train
        self.seed = seed
        self.workers = workers
        self.epoch = 0
        self.cache_bytes = 0 if train else cache_bytes
        self._cache: list[Batch] | None = None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.train:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def _sample(self, index: int) -> tuple[np.ndarray, int] | None:
        img = self.dataset.load(index)
        if img is None:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        return self.transform(img, rng), self.dataset.samples[index][1]

    def _collate(self, items) -> Batch | None:
        items = [it for it in items if it is not None]
        if not items:  # every image of the batch was skipped (--skip-bad-images)
            return None
        x = np.stack([it[0] for it in items])
        y = np.array([it[1] for it in items], dtype=np.int32)
        return x, y

    def __iter__(self) -> Iterator[Batch]:
        if self._cache is not None:
            self.epoch += 1
            yield from self._cache
            return
        batches, size = [], 0
        for batch in self._decoded():
            size += batch[0].nbytes
            if batches is not None and size <= self.cache_bytes:
                batches.append(batch)
            else:
                batches = None
            yield batch
        if batches is not None and self.cache_bytes:
            self._cache = batches

    def _decoded(self) -> Iterator[Batch]:
        order = self._order()
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.train:
            chunks = [c for c in chunks if len(c) == self.batch_size]
        self.epoch += 1
        with ThreadPoolExecutor(self.workers) as pool:
            pending = None
            for chunk in chunks:
                nxt = [pool.submit(self._sample, int(i)) for i in chunk]
                if pending is not None and (batch := self._collate([f.result() for f in pending])):
                    yield batch
                pending = nxt
            if pending is not None and (batch := self._collate([f.result() for f in pending])):
                yield batch
