"""FLOPs of one training step, counted from the layers that run, not from a profiler's guess.

A layer list (convolutions and dense layers in the order the forward runs them, each with
its forward FLOPs per image and its canonical parameter names) is read once per
architecture, stem and image size from the PyTorch model (``bench _layers``: forward hooks
on every ``Conv2d`` and ``Linear``; torch names are canonical) and cached. From it, for a
strategy's plan, with F a layer's forward FLOPs:

* forward: every layer, F;
* backward, weight gradient: F for every layer whose weight trains;
* backward, input gradient: F for every layer with a trainable layer before it (the
  gradient has to pass it on the way back); none before the first trainable layer.

A linear probe therefore costs its forward plus the head's weight gradient: its backward
never enters the frozen backbone. Counted: multiply-adds x2 of convolutions (grouped and
depthwise with their real ``in/groups`` fan-in) and dense layers; BatchNorm, activations,
pooling and additions (a few percent of a ResNet's) are not. torch's ``FlopCounterMode``
gives the same totals for ResNet-18 (tested) but counts a depthwise convolution's backward
as a dense one.
"""
from __future__ import annotations


def step_flops(layers: list[dict], trainable, batch: int) -> dict:
    """``layers``: [{"name", "flops" (forward, per image), "params": [canonical names]}] in forward
    order; ``trainable(name) -> bool`` for a canonical parameter name."""
    forward = weight_grad = input_grad = 0
    seen_trainable = False
    for layer in layers:
        f = layer["flops"]
        forward += f
        trains = any(trainable(p) for p in layer["params"])
        if seen_trainable:
            input_grad += f
        if trains:
            weight_grad += f
            seen_trainable = True
    per_image = forward + weight_grad + input_grad
    return {"forward": forward * batch, "backward": (weight_grad + input_grad) * batch, "per_step": per_image * batch,
            "batch": batch, "counted": "2 x multiply-adds of convolutions and dense layers (forward, weight and "
                                      "input gradients of what runs); elementwise layers not counted"}
