"""The protocol's training step in NumPy, written from ``bench.plan.recipe``'s formulas: what every
backend's update must equal. Float64 throughout; no framework is imported."""
from __future__ import annotations

import numpy as np

from bench.plan.recipe import decays, smoothed_targets

from .nets import build

RUNNING = (".running_mean", ".running_var")


def smoothed_loss(logits: np.ndarray, labels: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    """Mean cross-entropy against ``(1 - eps) * onehot + eps / K``; and its gradient in the logits."""
    n, k = logits.shape
    shifted = logits - logits.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    target = smoothed_targets(labels, k, eps)
    return float(-(target * logp).sum() / n), (np.exp(logp) - target) / n


class ReferenceTrainer:
    """K steps of the protocol on canonical weights. ``optim``: a ``backends.base.OptimConfig``
    (it holds data only); ``plan``: a strategy ``Plan``."""

    def __init__(self, spec, plan, optim, weights: dict[str, np.ndarray], stem: str = "imagenet"):
        self.spec, self.plan, self.optim = spec, plan, optim
        self.params = {n: np.asarray(v, np.float64).copy() for n, v in weights.items()}
        self.grads: dict[str, np.ndarray] = {}
        self.net = build(spec, plan, self.params, self.grads, stem)
        self.trained = [n for n in self.params if not n.endswith(RUNNING)
                        and not plan.is_frozen(spec.stage_of_canonical(n))]
        self.state: dict[str, list[np.ndarray]] = {}
        self.t = 0

    def restart_from(self, weights: dict[str, np.ndarray]) -> None:
        """Continue from these weights (and BatchNorm statistics), keeping the optimizer state."""
        for name, value in weights.items():
            self.params[name][...] = value

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        for n in self.trained:
            self.grads[n] = np.zeros_like(self.params[n])
        logits = self.net.forward(np.asarray(x, np.float64), train=True)
        loss, dlogits = smoothed_loss(logits, np.asarray(y), self.optim.label_smoothing)
        self.net.backward(dlogits)
        lr = self.optim.lr_at(self.t)
        self.t += 1
        for n in self.trained:
            self._update(n, lr * self.plan.lr_mult[self.spec.stage_of_canonical(n)])
        return loss

    def _update(self, name: str, lr: float) -> None:
        o, w = self.optim, self.params[name]
        wd = o.weight_decay if decays(o.decay_filter, w.shape) else 0.0
        g = self.grads[name] + wd * w
        if o.name == "adam":  # PyTorch's Adam: L2 in the gradient, bias-corrected moments, eps 1e-8
            m, v = self.state.setdefault(name, [np.zeros_like(w), np.zeros_like(w)])
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g * g
            w -= lr * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)
        elif o.momentum:  # a = m * a + g'; w -= lr * a (Nesterov: lr * (g' + m * a))
            a = self.state.setdefault(name, [np.zeros_like(w)])[0]
            a[:] = o.momentum * a + g
            w -= lr * (g + o.momentum * a if o.nesterov else a)
        else:
            w -= lr * g
