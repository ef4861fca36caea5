"""Update parity: K training steps of one backend against the NumPy reference, step by step.

One run is a :class:`~bench.plan.config.RunConfig` (architecture, strategy, optimizer and every
recipe element) laid over ``epochs`` x ``steps_per_epoch`` steps, from one canonical weights file,
on fixed batches (:func:`fixed_batches`), dropout off on every side.

What is compared is each step's update, one step ahead: before step ``t`` the reference takes the
backend's weights after step ``t - 1`` (its own optimizer state, built from gradients at those same
weights, stays), takes step ``t``, and per trained tensor ``|dw_backend - dw_ref| / |dw_ref|`` is the
relative error of that update (of the update, not of the weights, which would hide it). Free-running
trajectories cannot be compared: a float64 PyTorch ResNet-18 equals the reference to 1e-13 over 6
steps, its float32 run parts from it by 2e-1 at batch 4 (rounding amplified through BatchNorm over
few samples; measured), whatever the formulas. A tensor of a frozen stage must not move at all.
BatchNorm running statistics are reported beside (they never enter a training-mode forward). Runs in
the backend's own process: ``bench parity`` starts one per backend.
"""
from __future__ import annotations

import numpy as np

from .reference import RUNNING, ReferenceTrainer


def fixed_batches(seed: int, steps: int, batch: int, size: int, classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 1, (batch, 3, size, size)).astype(np.float32),
             rng.permutation(np.arange(batch) % classes).astype(np.int32)) for _ in range(steps)]


# An update the formulas make (almost) zero is judged against this share of the model's RMS update
# (scaled to the tensor's size), not against itself: a BatchNorm shift followed by a linear layer and
# another BatchNorm has exactly zero gradient (the next mean removes it), and fp32 leaves ~1e-8 there.
FLOOR = 1e-2


def update_errors(w0: dict, got: dict, want: dict, names, frozen=frozenset()) -> dict[str, float]:
    """Per tensor ``|(got - w0) - (want - w0)| / max(|want - w0|, FLOOR * rms * sqrt(size))``, ``rms``
    the reference update's root mean square over ``names``; a ``frozen`` tensor: 0 if it did not
    move at all, else inf."""
    ref = {n: np.linalg.norm((want[n] - w0[n]).ravel()) for n in names}
    size = sum(w0[n].size for n in names) or 1
    rms = np.sqrt(sum(r * r for r in ref.values()) / size)
    out = {}
    for n in names:
        if n in frozen:
            out[n] = 0.0 if np.array_equal(got[n], w0[n]) else float("inf")
            continue
        diff = np.linalg.norm((got[n].astype(np.float64) - want[n]).ravel())
        scale = max(ref[n], FLOOR * rms * np.sqrt(w0[n].size))
        out[n] = float(diff / scale) if scale > 0 else (0.0 if diff == 0 else float("inf"))
    return out


def stage_errors(spec, w0: dict, got: dict, want: dict, names, frozen=frozenset()) -> dict[str, tuple[float, str]]:
    """Per canonical stage: the largest update error (:func:`update_errors`) and the tensor it is in."""
    out: dict[str, tuple[float, str]] = {}
    for name, err in update_errors(w0, got, want, names, frozen).items():
        stage = spec.stage_of_canonical(name)
        if stage not in out or err > out[stage][0]:
            out[stage] = (err, name)
    return out


PARITY_CLASSES = 10  # the head of the weights bench parity writes when none are given


def write_initial_weights(config, path) -> None:
    """The model's own initialisation on ``config.backend`` at ``config.seed``, as canonical weights."""
    from backends.registry import get_backend
    model = get_backend(config.backend).create_model(config.model, PARITY_CLASSES, image_size=config.image_size,
                                                     seed=config.seed, stem=config.stem, mode=config.mode)
    model.save_weights(str(path), source={"bench parity": f"{config.backend} initialisation, seed {config.seed}"})


def run_backend_steps(config, steps_per_epoch: int, weights: str, model_factory=None) -> dict:
    """The backend's K steps and the reference's, compared after every step (the backend's side
    imports its framework: call this in that backend's process)."""
    from architectures import get_spec
    from backends.base import OptimConfig
    from backends.registry import get_backend
    from bench.plan.recipe import LrSchedule
    from bench.plan.strategies import make_plan
    from bench.weights import canonical

    spec = get_spec(config.model)
    _, state = canonical.read_canonical(weights)
    classes = state[f"{spec.head_name}.weight"].shape[0]
    make = model_factory or get_backend(config.backend).create_model
    model = make(config.model, classes, image_size=config.image_size, seed=config.seed, stem=config.stem,
                 mode=config.mode)
    model.load_weights(weights, new_head=False)
    dropouts = model.disable_dropout()
    optim = OptimConfig.of(config, LrSchedule.of(config, steps_per_epoch))
    plan = make_plan(config.strategy, bn_stats_frozen=config.bn_stats == "frozen")
    model.configure(plan, optim)
    canon = lambda: {model.table.to_canonical(n): v for n, v in model.named_parameters().items()}  # noqa: E731
    w0 = canon()
    reference = ReferenceTrainer(spec, plan, optim, w0, config.stem)
    learnable = [n for n in w0 if not n.endswith(RUNNING)]
    frozen = {n for n in learnable if plan.is_frozen(spec.stage_of_canonical(n))}
    rows, before = [], w0
    for t, (x, y) in enumerate(fixed_batches(config.seed, config.epochs * steps_per_epoch, config.batch_size,
                                             config.image_size, classes)):
        loss, _ = model.train_step(x, y)
        applied = model.applied_lr()
        reference.restart_from(before)
        ref_loss = reference.step(x, y)
        got = canon()
        errors = stage_errors(spec, before, got, reference.params, learnable, frozen)
        running_names = [n for n in w0 if n.endswith(RUNNING)]
        running = stage_errors(spec, before, got, reference.params, running_names,
                               {n for n in running_names if plan.bn_frozen(spec.stage_of_canonical(n))})
        before = got
        rows.append({"step": t, "loss": loss, "ref_loss": ref_loss, "lr": applied,
                     "protocol_lr": {s: optim.lr_at(t) * plan.lr_mult[s] for s in applied},
                     "stages": {s: {"error": e, "tensor": n} for s, (e, n) in errors.items()},
                     "running_stats": {s: {"error": e, "tensor": n} for s, (e, n) in running.items()}})
    return {"backend": config.backend, "model": config.model, "dropout_layers_off": dropouts,
            "config": config.to_json(), "steps_per_epoch": steps_per_epoch, "steps": rows,
            "frozen_stages": list(plan.frozen)}


# The largest one-step update error a translation may show in fp32. Measured on the all-elements recipe
# (tests/backends/test_update_parity.py), batch 4, 32 px: at most 6.6e-3 on every backend for ResNet-18
# and MobileNetV3-small (1.9e-2 in other regimes); a wrong translation: 0.35 (Gluon's nag, the lr inside
# its buffer, at the first lr change), 0.70 (MindSpore's own use_nesterov), 4.2 (decay on BatchNorm).
TOLERANCE = 5e-2


def worst(result: dict) -> dict:
    """The largest update error over every step and stage of ``run_backend_steps``'s result."""
    cells = [(cell["error"], row["step"], stage, cell["tensor"])
             for row in result["steps"] for stage, cell in row["stages"].items()]
    error, step, stage, tensor = max(cells)
    return {"error": error, "step": step, "stage": stage, "tensor": tensor, "ok": error <= TOLERANCE}
