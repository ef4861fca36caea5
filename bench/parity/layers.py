"""NumPy layers with a forward and a backward pass, in float64: no framework, only the formulas.

Each layer reads and writes its tensors by canonical name (torchvision's) in a shared
``params`` dict and adds its gradients into a shared ``grads`` dict, so a network is a
list of layers over canonical names and the update (``bench.parity.reference``) sees
every tensor by the name every backend's canonical file uses.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Layer:
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _acc(grads: dict, name: str, value: np.ndarray) -> None:
    """Add into the gradient of ``name`` where it is wanted (trained tensors only)."""
    if name in grads:
        grads[name] += value


def _pad(x: np.ndarray, pad: int, value: float = 0.0) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=value) if pad else x


def _windows(xp: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(N, C, Ho, Wo, k, k) views of the padded input."""
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def _scatter(dwin: np.ndarray, shape: tuple, k: int, stride: int) -> np.ndarray:
    """The adjoint of ``_windows``: window gradients (N, C, Ho, Wo, k, k) summed into the padded input."""
    out = np.zeros(shape)
    ho, wo = dwin.shape[2:4]
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dwin[..., i, j]
    return out


class Conv2d(Layer):
    """Cross-correlation with zero padding; ``groups`` 1 or equal to the channels (depthwise)."""

    def __init__(self, params, grads, name: str, stride: int = 1, pad: int | None = None, depthwise: bool = False):
        self.p, self.g, self.name = params, grads, name
        self.k = params[f"{name}.weight"].shape[-1]
        self.stride, self.pad = stride, (self.k - 1) // 2 if pad is None else pad
        self.depthwise = depthwise
        self.bias = f"{name}.bias" in params

    def forward(self, x, train):
        w = self.p[f"{self.name}.weight"]
        xp = _pad(x, self.pad)
        self.shape, win = xp.shape, _windows(xp, self.k, self.stride)
        self.win = win
        out = (np.einsum("nchwij,cij->nchw", win, w[:, 0]) if self.depthwise
               else np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2))
        return out + self.p[f"{self.name}.bias"][None, :, None, None] if self.bias else out

    def backward(self, dout):
        w = self.p[f"{self.name}.weight"]
        if self.depthwise:
            _acc(self.g, f"{self.name}.weight", np.einsum("nchwij,nchw->cij", self.win, dout)[:, None])
            dwin = np.einsum("nchw,cij->nchwij", dout, w[:, 0])
        else:
            _acc(self.g, f"{self.name}.weight", np.tensordot(dout, self.win, axes=([0, 2, 3], [0, 2, 3])))
            dwin = np.tensordot(dout, w, axes=([1], [0])).transpose(0, 3, 1, 2, 4, 5)
        if self.bias:
            _acc(self.g, f"{self.name}.bias", dout.sum((0, 2, 3)))
        dxp = _scatter(dwin, self.shape, self.k, self.stride)
        return dxp[:, :, self.pad:dxp.shape[2] - self.pad, self.pad:dxp.shape[3] - self.pad] if self.pad else dxp


class BatchNorm2d(Layer):
    """Training mode: batch statistics (biased variance) normalise, running statistics move by
    ``momentum`` (running = m * running + (1 - m) * batch, the batch variance unbiased as PyTorch
    does); ``frozen``: running statistics normalise and never move (the plan's frozen BatchNorm)."""

    def __init__(self, params, grads, name: str, eps: float, momentum: float, frozen: bool = False):
        self.p, self.g, self.name, self.eps, self.m, self.frozen = params, grads, name, eps, momentum, frozen

    def forward(self, x, train):
        gamma, beta = self.p[f"{self.name}.weight"], self.p[f"{self.name}.bias"]
        if train and not self.frozen:
            mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
            n = x.size // x.shape[1]
            rm, rv = f"{self.name}.running_mean", f"{self.name}.running_var"
            self.p[rm] = self.m * self.p[rm] + (1 - self.m) * mean
            self.p[rv] = self.m * self.p[rv] + (1 - self.m) * var * n / max(n - 1, 1)
        else:
            mean, var = self.p[f"{self.name}.running_mean"], self.p[f"{self.name}.running_var"]
        self.batch = train and not self.frozen
        self.inv = 1.0 / np.sqrt(var + self.eps)
        self.xhat = (x - mean[None, :, None, None]) * self.inv[None, :, None, None]
        return gamma[None, :, None, None] * self.xhat + beta[None, :, None, None]

    def backward(self, dout):
        gamma = self.p[f"{self.name}.weight"]
        _acc(self.g, f"{self.name}.weight", (dout * self.xhat).sum((0, 2, 3)))
        _acc(self.g, f"{self.name}.bias", dout.sum((0, 2, 3)))
        dxhat = dout * gamma[None, :, None, None]
        inv = self.inv[None, :, None, None]
        if not self.batch:
            return dxhat * inv
        mean_d = dxhat.mean((0, 2, 3), keepdims=True)
        mean_dx = (dxhat * self.xhat).mean((0, 2, 3), keepdims=True)
        return inv * (dxhat - mean_d - self.xhat * mean_dx)


class Act(Layer):
    """relu, hardswish (x * relu6(x + 3) / 6) or hardsigmoid (relu6(x + 3) / 6)."""

    def __init__(self, kind: str):
        self.kind = kind

    def forward(self, x, train):
        self.x = x
        if self.kind == "relu":
            return np.maximum(x, 0)
        r6 = np.clip(x + 3, 0, 6) / 6
        return x * r6 if self.kind == "hswish" else r6

    def backward(self, dout):
        x = self.x
        if self.kind == "relu":
            return dout * (x > 0)
        inside = (x > -3) & (x < 3)
        if self.kind == "hswish":
            return dout * np.where(x >= 3, 1.0, np.where(inside, (2 * x + 3) / 6, 0.0))
        return dout * inside / 6


class MaxPool(Layer):
    """3x3, stride 2, padding 1 (ResNet's stem), padding never wins."""

    def forward(self, x, train):
        xp = _pad(x, 1, -np.inf)
        win = _windows(xp, 3, 2)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, 9)
        self.arg, self.shape, self.out = flat.argmax(-1), xp.shape, (n, c, ho, wo)
        return flat.max(-1)

    def backward(self, dout):
        dwin = np.zeros(self.out + (9,))
        np.put_along_axis(dwin, self.arg[..., None], dout[..., None], axis=-1)
        dxp = _scatter(dwin.reshape(self.out + (3, 3)), self.shape, 3, 2)
        return dxp[:, :, 1:-1, 1:-1]


class GlobalPool(Layer):
    """Global average pool to (N, C)."""

    def forward(self, x, train):
        self.shape = x.shape
        return x.mean((2, 3))

    def backward(self, dout):
        n, c, h, w = self.shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), self.shape).copy()


class Linear(Layer):
    def __init__(self, params, grads, name: str):
        self.p, self.g, self.name = params, grads, name

    def forward(self, x, train):
        self.x = x
        return x @ self.p[f"{self.name}.weight"].T + self.p[f"{self.name}.bias"]

    def backward(self, dout):
        _acc(self.g, f"{self.name}.weight", dout.T @ self.x)
        _acc(self.g, f"{self.name}.bias", dout.sum(0))
        return dout @ self.p[f"{self.name}.weight"]


class Sequence(Layer):
    def __init__(self, layers: list[Layer]):
        self.layers = layers

    def forward(self, x, train):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


class Residual(Layer):
    """``body(x) + shortcut(x)`` (identity where ``shortcut`` is None), then ``after`` (ResNet's ReLU)."""

    def __init__(self, body: Layer, shortcut: Layer | None = None, after: Layer | None = None):
        self.body, self.shortcut, self.after = body, shortcut, after

    def forward(self, x, train):
        out = self.body.forward(x, train) + (self.shortcut.forward(x, train) if self.shortcut else x)
        return self.after.forward(out, train) if self.after else out

    def backward(self, dout):
        if self.after:
            dout = self.after.backward(dout)
        return self.body.backward(dout) + (self.shortcut.backward(dout) if self.shortcut else dout)


class SqueezeExcite(Layer):
    """``x * hardsigmoid(fc2(relu(fc1(mean(x)))))`` with 1x1 convolutions (torchvision's)."""

    def __init__(self, params, grads, name: str):
        self.pool, self.fc1 = GlobalPool(), Conv2d(params, grads, f"{name}.fc1", pad=0)
        self.relu, self.fc2 = Act("relu"), Conv2d(params, grads, f"{name}.fc2", pad=0)
        self.gate = Act("hsigmoid")

    def forward(self, x, train):
        s = self.pool.forward(x, train)[:, :, None, None]
        self.s = self.gate.forward(self.fc2.forward(self.relu.forward(self.fc1.forward(s, train), train), train), train)
        self.x = x
        return x * self.s

    def backward(self, dout):
        ds = (dout * self.x).sum((2, 3), keepdims=True)
        ds = self.fc1.backward(self.relu.backward(self.fc2.backward(self.gate.backward(ds))))
        return dout * self.s + self.pool.backward(ds[:, :, 0, 0])
