"""Run as ``python -m tests.backends.mxnet_round_trip N``: N canonical round trips (save one
ResNet-18, load it into another) on MXNet; prints the number that were not bit-exact."""
import sys
import tempfile

import numpy as np

from backends.registry import get_backend


def main(trials: int) -> int:
    backend, bad = get_backend("mxnet"), 0
    for t in range(trials):
        with tempfile.TemporaryDirectory() as d:
            a = backend.create_model("resnet18", 10, image_size=32, seed=t)
            a.save_weights(f"{d}/a.npz")
            b = backend.create_model("resnet18", 10, image_size=32, seed=1000 + t)
            b.load_weights(f"{d}/a.npz")
            pa, pb = a.named_parameters(), b.named_parameters()
            bad += any(not np.array_equal(pa[n], pb[n]) for n in pa)
    print(f"not bit-exact: {bad} of {trials}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
