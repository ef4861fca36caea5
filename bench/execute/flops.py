"""FLOPs of a configuration's training step, for its record (``bench.measure.flops``).

The layer list comes from the PyTorch model, read in a child process of its own
(``bench _layers``, under torch's settings) once per architecture, stem and image size,
and cached under ``<cache>/flops/``; a machine without the torch extra records "not counted".
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from backends.registry import arch_view, backend_info, missing_modules
from backends.settings import child_env
from bench.core.files import atomic_path
from bench.measure.flops import step_flops

from .child import run_bench_child


def layer_table(arch: str, image_size: int, stem: str, num_classes: int, cache_dir: Path) -> list[dict] | None:
    path = Path(cache_dir) / "flops" / f"{arch}-{stem}-{image_size}px-{num_classes}cls.json"
    if not path.exists():
        if missing_modules("torch") or not backend_info("torch").builds("torch", arch):
            return None
        with tempfile.TemporaryDirectory(prefix="bench-layers-") as tmp:
            out, err = Path(tmp) / "layers.json", Path(tmp) / "stderr.txt"
            with open(err, "w") as f:
                code = run_bench_child(["_layers", arch, str(image_size), stem, str(num_classes), str(out)],
                                       child_env("torch"), 600, f)
            if code != 0 or not out.exists():
                return None
            with atomic_path(path) as tmp_path:
                tmp_path.write_text(out.read_text())
    try:
        layers = json.loads(path.read_text())
    except ValueError:
        return None
    return layers if isinstance(layers, list) else None


def flops_of(arch: str, image_size: int, stem: str, plan, batch: int, num_classes: int, cache_dir: Path) -> dict:
    """FLOPs per training step under ``plan`` (forward, backward, total), or why they are not counted."""
    layers = layer_table(arch, image_size, stem, num_classes, cache_dir)
    if layers is None:
        return {"per_step": None, "counted": "not counted: the layer list is read from the PyTorch model "
                                             "(needs the torch extra and an architecture torch builds)"}
    spec = arch_view(arch, "torch").spec
    return step_flops(layers, lambda name: not plan.is_frozen(spec.stage_of_canonical(name)), batch)
