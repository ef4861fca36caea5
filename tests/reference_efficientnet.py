"""An independent NumPy forward pass of EfficientNet-Lite0, Lite1 and Lite2 (eval mode), for tests.

Written from the reference description (TF "same" padding, ReLU6, no
squeeze-excite, BatchNorm eps 1e-3) and reading the canonical names directly,
sharing no code with the backends' model definitions, so a mistake in either
backend's architecture shows up as a logit mismatch here.
"""
from __future__ import annotations

import math

import numpy as np

EPS = 1e-3
# The blocks that stride 2: the first of the /4, /8, /16 and /32 stages. TensorFlow's Lite block
# strings have repeats 1, 2, 2, 3, 3, 4, 1 (strides 1, 2, 2, 2, 1, 2, 1); Lite1 and Lite2 take
# ceil(1.1 x) and ceil(1.2 x) of the middle five: 1, 3, 3, 4, 4, 5, 1.
STRIDED = {"efficientnet_lite0": (1, 3, 5, 11), "efficientnet_lite1": (1, 4, 7, 15),
           "efficientnet_lite2": (1, 4, 7, 15)}


def _pad_same(x, k, s):
    h = x.shape[2]
    out = math.ceil(h / s)
    total = max((out - 1) * s + k - h, 0)
    lo, hi = total // 2, total - total // 2
    return np.pad(x, ((0, 0), (0, 0), (lo, hi), (lo, hi)))


def _windows(x, k, s):
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return v[:, :, ::s, ::s]  # (n, c, ho, wo, k, k)


def conv(x, w, s=1, depthwise=False):
    k = w.shape[-1]
    if k == 1 and s == 1:
        return np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0], optimize=True)
    win = _windows(_pad_same(x, k, s), k, s)
    if depthwise:
        return np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def bn(x, p, name):
    scale = p[f"{name}.weight"] / np.sqrt(p[f"{name}.running_var"] + EPS)
    shift = p[f"{name}.bias"] - p[f"{name}.running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def relu6(x):
    return np.clip(x, 0, 6)


def forward(p: dict[str, np.ndarray], x: np.ndarray, arch: str = "efficientnet_lite0") -> np.ndarray:
    """Logits for images ``x`` (N, 3, H, W), already scaled to [-1, 1]."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    h = relu6(bn(conv(x.astype(np.float64), p["_conv_stem.weight"], 2), p, "_bn0"))
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in p:
        b = f"_blocks.{i}"
        dw = p[f"{b}._depthwise_conv.weight"]
        inp = h
        if f"{b}._expand_conv.weight" in p:
            h = relu6(bn(conv(h, p[f"{b}._expand_conv.weight"]), p, f"{b}._bn0"))
        stride = 2 if i in STRIDED[arch] else 1
        h = relu6(bn(conv(h, dw, stride, depthwise=True), p, f"{b}._bn1"))
        h = bn(conv(h, p[f"{b}._project_conv.weight"]), p, f"{b}._bn2")
        if stride == 1 and h.shape == inp.shape:
            h = h + inp
        i += 1
    h = relu6(bn(conv(h, p["_conv_head.weight"]), p, "_bn1"))
    return h.mean(axis=(2, 3)) @ p["_fc.weight"].T + p["_fc.bias"]
