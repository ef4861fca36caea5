"""Execute one RunConfig: data, model, strategy, train loop, evaluation, record.

Reads top to bottom like torchvision's reference ``main``: nothing here imports
a framework; everything framework-specific sits behind ``backends.base``.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path

import numpy as np
from tqdm import tqdm

from architectures import input_norm
from backends.base import OptimConfig
from backends.registry import backend_info, get_backend
from backends.settings import effective_settings
from bench.core.errors import BenchError, ConfigError, DivergedError
from bench.core.files import default_cache_dir
from bench.records.store import new_record, save_record, utc_now
from bench.measure.environment import capture_environment
from bench.measure.accuracy import collapse_flags, summarize_accuracy, time_to_target
from bench.measure.timing import ContentionProbe, StepTimer
from bench.plan.config import RunConfig
from bench.plan.recipe import LrSchedule
from bench.plan.strategies import make_plan

from .flops import flops_of
from .peak import cached_peak
from bench.weights import canonical
from bench.weights.imagenet import canonical_imagenet
from bench.weights.scratch_init import INITIALISER, shared_init_file
from datasets.folder import ImageFolder, check_same_classes
from datasets.loader import BatchLoader
from datasets.registry import default_data_root, prepare_dataset, read_split
from datasets.transforms import EvalTransform, TrainTransform


def load_splits(config: RunConfig, data_root: Path, skip_bad_images: bool = False):
    """(train, validation or None, eval) image folders a config names (downloaded on first use)."""
    if config.data_dir:
        root = Path(config.data_dir)
    elif config.dataset == "folder":
        raise ConfigError("experiment 'folder' needs --data-dir PATH (layout PATH/<split>/<class>/<image>)")
    else:
        root = prepare_dataset(config.dataset, data_root, archive=config.archive,
                               archive_checksum=config.archive_checksum)
    train = read_split(config.dataset, root, config.train_split, skip_bad_images)
    evaluation = read_split(config.dataset, root, config.eval_split, skip_bad_images)
    check_same_classes(train, evaluation)
    if config.classes:
        train, evaluation = train.select(config.classes), evaluation.select(config.classes)
    validation = None
    if config.val_shots:  # from the train images the shots leave out: the training set is unchanged
        train, validation = train.shots_and_validation(config.shots, config.val_shots)
    elif config.shots:
        train = train.subsample(config.shots)
    if config.eval_shots:
        evaluation = evaluation.subsample(config.eval_shots)
    if config.val_fraction:
        train, validation = train.split_off(config.val_fraction)
    return train, validation, evaluation


def evaluate(model, loader: BatchLoader) -> dict:
    """Top-1 and mean cross-entropy over the whole eval split.

    The last batch is zero-padded to the full batch size so compiled graphs keep
    one input shape; the padded rows are discarded before scoring.
    """
    correct, loss_sum, n = 0, 0.0, 0
    for x, y in loader:
        k = len(y)
        if k < loader.batch_size:
            x = np.concatenate([x, np.zeros((loader.batch_size - k,) + x.shape[1:], x.dtype)])
        logits = model.predict(x)[:k].astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum += float(-logp[np.arange(k), y].sum())
        correct += int((logits.argmax(axis=1) == y).sum())
        n += k
    return {"loss": loss_sum / n, "acc": correct / n, "correct": correct, "n": n}


def planned_weights(path: Path) -> tuple[str, dict]:
    """The canonical file a sweep's pretrain step wrote for this arm, with its provenance."""
    if not Path(path).exists():
        raise ConfigError(f"the suite's pretrained weights {path} are missing: their pretrain step did not "
                          "write them (see its record)")
    digest = canonical.verify_digest(path, "the suite's pretrained weights",
                                     "delete it and run the sweep again with --resume to pretrain again")
    meta, _ = canonical.read_canonical(path)
    source = meta.get("source", {})
    return str(path), {"source": "suite pretrain", "path": str(path), "sha256": digest,
                       "pretrain_backend": source.get("backend"), "pretrain_config_hash": source.get("config_hash"),
                       "pretrain_run_id": source.get("run_id"), "pretrain_dataset": source.get("dataset")}


def resolve_weights(config: RunConfig, cache_dir: Path, suite_weights: Path | None = None) -> tuple[str | None, dict]:
    """Where the fine-tuned arm's starting weights come from. ``suite_weights``: the canonical
    file the sweep's planned pretrain step wrote (``bench.plan.sweep``), for ``--pretrained suite``."""
    if config.arm != "finetune" or config.pretrained == "none":
        return None, {"source": "random init"}
    if config.pretrained == "imagenet":
        path, provenance = canonical_imagenet(config.model, cache_dir)  # one file, every backend
        return str(path), provenance
    if config.pretrained == "zoo":
        return "zoo", {"source": f"{config.backend}'s own model zoo ({backend_info(config.backend).zoo}), ImageNet"}
    if config.pretrained == "suite":
        if suite_weights is None:
            raise ConfigError("--pretrained suite: the arm starts from its sweep's pretrain step; run it "
                              "through a sweep plan (bench run, bench.plan.sweep.plan_sweep)")
        return planned_weights(suite_weights)
    if not Path(config.pretrained).exists():
        raise ConfigError(f"--pretrained {config.pretrained}: no such weights file "
                          "(valid: suite, imagenet, zoo, none, or a path)")
    return config.pretrained, {"source": "file", "path": config.pretrained,
                               "sha256": canonical.file_sha256(config.pretrained)}


class LrProbe:
    """The lr each stage's parameters got at a few steps (``LrSchedule.probe_steps``), read back
    from the framework after the step (``Model.applied_lr``), beside the protocol's value."""

    def __init__(self, schedule, steps: set[int]):
        self.schedule, self.steps, self.taken, self.rows = schedule, steps, 0, []

    def after_step(self, model) -> None:
        if self.taken in self.steps:
            self.rows.append({"step": self.taken, "protocol": self.schedule.lr_at(self.taken),
                              "applied": model.applied_lr()})
        self.taken += 1


def train_epoch(model, loader: BatchLoader, timer: StepTimer, lr_probe: LrProbe | None = None) -> dict:
    losses, correct, seen = [], 0, 0
    batches = iter(loader)
    t0 = time.perf_counter()
    while True:
        with timer.data():
            batch = next(batches, None)
        if batch is None:
            timer.data_ms.pop()  # the end-of-epoch probe is not a batch
            break
        x, y = batch
        with timer.step():
            loss, ok = model.train_step(x, y)
        if not math.isfinite(loss):
            raise DivergedError(f"loss became {loss} at step {len(losses) + 1} of epoch {loader.epoch}")
        if lr_probe is not None:
            lr_probe.after_step(model)
        losses.append(loss)
        correct += ok
        seen += len(y)
    return {"train_loss": float(np.mean(losses)), "train_acc": correct / max(seen, 1),
            "train_s": time.perf_counter() - t0}


EVAL_BATCH_SIZE = 128  # images per predict call when scoring: eval-mode outputs do not depend on it


def make_loaders(backend, config: RunConfig, *splits: ImageFolder | None):
    """The shared numpy pipeline, or with ``--loader native`` the framework's own: a train loader
    for the first split (``config.batch_size``), eval loaders for the others (at least
    ``EVAL_BATCH_SIZE``: scoring in batches of 10 cost more than the training it scored)."""
    mean, std = input_norm(config.model)
    eval_batch = max(config.batch_size, EVAL_BATCH_SIZE)
    if config.loader == "native":
        opts = dict(image_size=config.image_size, seed=config.seed, crop_scale=config.crop_scale,
                    hflip=config.hflip, mean=mean, std=std)
        make = lambda split, train: backend.native_loader(  # noqa: E731
            split, train=train, batch_size=config.batch_size if train else eval_batch, **opts)
    else:
        transforms = {True: TrainTransform(config.image_size, config.crop_scale, config.hflip, mean, std,
                                           config.color_jitter, config.rand_augment, config.re_prob),
                      False: EvalTransform(config.image_size, mean, std, config.crop_pct)}
        make = lambda split, train: BatchLoader(split, transforms[train],  # noqa: E731
                                                config.batch_size if train else eval_batch, train=train,
                                                seed=config.seed)
    return [None if split is None else make(split, i == 0) for i, split in enumerate(splits)]


def _skipped(*splits: ImageFolder | None) -> list[dict]:
    """Every image skipped (--skip-bad-images), once, with why: the splits may share one list."""
    seen, out = set(), []
    for split in filter(None, splits):
        for item in split.skipped:
            if item["path"] not in seen:
                seen.add(item["path"])
                out.append(item)
    return out


def _score(model, loader: BatchLoader, split: str) -> dict:
    t0 = time.perf_counter()
    result = evaluate(model, loader)
    return {f"{split}_loss": result["loss"], f"{split}_acc": result["acc"], f"{split}_correct": result["correct"],
            f"n_{split}": result["n"], f"{split}_s": time.perf_counter() - t0}


def train_and_evaluate(model, config: RunConfig, loaders, timer: StepTimer, record: dict,
                       progress: bool, lr_probe: LrProbe | None = None) -> None:
    """Train ``config.epochs`` epochs; score the validation split (where carved) as ``config.val_eval``
    says (every epoch or the last one) and the eval split as ``config.test_eval`` says (every
    epoch, the last one, or never)."""
    train_loader, val_loader, eval_loader = loaders
    timer.batch_size = train_loader.batch_size
    cum_train_s = 0.0
    bar = tqdm(range(1, config.epochs + 1), desc=f"{config.backend}/{config.arm}/{config.strategy}",
               disable=not progress, leave=False)
    probe = ContentionProbe().start()
    for epoch in bar:
        stats = train_epoch(model, train_loader, timer, lr_probe)
        cum_train_s += stats["train_s"]
        point = {"epoch": epoch, **stats, "cum_train_s": cum_train_s}
        last = epoch == config.epochs
        if config.test_eval == "epoch" or (config.test_eval == "end" and last):
            point.update(_score(model, eval_loader, "eval"))
        if val_loader is not None and (config.val_eval == "epoch" or last):
            point.update(_score(model, val_loader, "val"))
        record["curve"].append(point)
        bar.set_postfix(loss=f"{stats['train_loss']:.3f}", acc=f"{point.get('eval_acc', point.get('val_acc', 0)):.3f}")
    timer.contention = probe.stop()


def start_weights(model, config: RunConfig, weights: str | None, origin: dict, cache_dir: Path) -> dict:
    """Load the arm's starting weights into ``model``; returns where they came from."""
    if config.arm == "scratch" and config.scratch_init == "shared":
        shapes = {model.table.to_canonical(n): v.shape for n, v in model.named_parameters().items()}
        path = shared_init_file(config.model, shapes, config.seed, cache_dir)
        return {"source": "shared init", "initialiser": INITIALISER, "path": str(path),
                "sha256": canonical.file_sha256(path), "load": model.load_weights(str(path)).to_json()}
    if config.arm == "scratch" or config.arm == "pretrain":
        return {"source": f"{config.backend}'s own initialiser (native)"}
    if weights and weights != "zoo":
        origin["load"] = model.load_weights(weights, new_head=True).to_json()
    return origin


def build_model(backend, config: RunConfig, num_classes: int, weights: str | None):
    return backend.create_model(config.model, num_classes, pretrained="zoo" if weights == "zoo" else None,
                                device=config.device, seed=config.seed, image_size=config.image_size,
                                mode=config.mode, stem=config.stem)


def execute(config: RunConfig, out_dir: Path, *, cache_dir: Path | None = None,
            data_root: Path | None = None, save_weights: Path | None = None, suite_weights: Path | None = None,
            progress: bool = True, skip_bad_images: bool = False, packed: bool = False) -> dict:
    """Run one configuration end to end and write its record (also on failure)."""
    cache_dir = Path(cache_dir or default_cache_dir())
    data_root = Path(data_root or os.environ.get("BENCH_DATA_ROOT") or default_data_root())
    record = new_record(config)
    timer = StepTimer(warmup=config.warmup_steps, packed=packed)
    phases, started = timer.phases, time.perf_counter()
    backend = None
    try:
        with phases("import"):
            backend = get_backend(config.backend)  # first: a backend module may register its architectures
        config.check_model()
        with phases("data"):
            train, validation, evaluation = load_splits(config, data_root, skip_bad_images)
        record["data"] = {"train_images": len(train), "eval_images": len(evaluation),
                          "val_images": len(validation) if validation else 0,
                          "classes": train.classes, "train_root": str(train.root)}
        plan = make_plan("scratch" if config.arm == "scratch" else config.strategy,
                         bn_stats_frozen=config.bn_stats == "frozen")
        with phases("model"):
            weights, origin = resolve_weights(config, cache_dir, suite_weights)
            model = build_model(backend, config, len(train.classes), weights)
            record["environment"] = capture_environment(backend.versions(), backend.runtime_settings(),
                                                        effective_settings(config.backend),  # after the context is set
                                                        peak=cached_peak())
            record["environment"]["determinism"] = backend.determinism(config.device)
            origin = start_weights(model, config, weights, origin, cache_dir)
            steps_per_epoch = len(train) // min(config.batch_size, len(train))  # the train loader drops a remainder
            schedule = LrSchedule.of(config, steps_per_epoch)
            model.configure(plan, OptimConfig.of(config, schedule), precision=config.precision)
        record["model"] = {"weights": origin, "plan": plan.to_json(), "params": model.param_counts(),
                           "param_groups": model.param_groups(),
                           "weight_decay_groups": model.weight_decay_groups(), "runtime": model.describe(),
                           "precision": model.precision_report(),
                           "flops": flops_of(config.model, config.image_size, config.stem, plan, config.batch_size,
                                             len(train.classes), cache_dir)}
        lr_probe = LrProbe(schedule, set(schedule.probe_steps()))
        with phases("data"):
            loaders = make_loaders(backend, config, train, validation, evaluation)
        record["data"]["eval_batch_size"] = loaders[-1].batch_size
        try:
            train_and_evaluate(model, config, loaders, timer, record, progress, lr_probe)
            record["model"]["lr"] = {"schedule": schedule.to_json(), "read_back": lr_probe.rows}
        finally:
            record["data"]["skipped"] = _skipped(train, validation, evaluation)
        record["accuracy"] = summarize_accuracy(config, record["curve"])
        record["time_to_accuracy"] = time_to_target(config, record["curve"], (timer.compile_ms or 0) / 1e3)
        record["flags"] = collapse_flags(record["curve"], len(train.classes))
        if save_weights:
            Path(save_weights).parent.mkdir(parents=True, exist_ok=True)
            with phases("save"):
                model.save_weights(str(save_weights), source={
                    "run_id": record["run_id"], "config_hash": record["config_hash"],
                    "backend": config.backend, "dataset": config.dataset, "final_acc": record["accuracy"]["final"]})
                digest = canonical.file_sha256(save_weights)
                canonical.write_digest(save_weights, digest)  # the fine-tuned arms check it before they load
                record["saved_weights"] = {"path": str(save_weights), "sha256": digest}
        record["status"] = "ok"
    except DivergedError as e:
        record.update(status="diverged", error=str(e))
    except BenchError as e:  # bad input found here: a failed record, as a crash is
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
    except Exception as e:  # a framework crash: keep the record, say what happened
        record.update(status="failed", error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc(limit=20))
    finally:
        record["timing"] = timer.summary() | {"wall_s": time.perf_counter() - started}
        if backend is not None:
            record["timing"]["device_peak_mb"] = backend.peak_device_memory_mb(config.device)
        if record["status"] != "running":
            record["finished"] = utc_now()
            save_record(record, out_dir)
    return record
