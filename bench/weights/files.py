"""Any weight file the suite reads, by its suffix, with the NumPy-only reader for its format."""
from __future__ import annotations

from pathlib import Path

from bench.core.errors import CheckpointError

from . import canonical
from .checkpoints import read_mindspore_ckpt, read_mxnet_params
from .pth import read_state_dict

READERS = {canonical.SUFFIX: lambda p: canonical.read_canonical(p)[1], ".pth": read_state_dict, ".pt": read_state_dict,
           ".params": read_mxnet_params, ".ckpt": read_mindspore_ckpt}


def read_weights(path) -> dict:
    """name -> array of a weight file, whatever its format; CheckpointError naming the file otherwise."""
    reader = READERS.get(Path(path).suffix)
    if reader is None:
        raise CheckpointError(f"{path}: unknown weight format {Path(path).suffix or '(no suffix)'}; "
                              f"expected one of {', '.join(READERS)}")
    return reader(path)
