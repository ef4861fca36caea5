"""Which backends are installed here (asked without importing their frameworks)."""
import importlib.util

from architectures import all_specs
from backends.base import REGISTRY

BACKENDS = [name for name in ("mxnet", "mindspore", "torch")
            if all(importlib.util.find_spec(m) for m in REGISTRY[name].probe)]
SUFFIX = {"mxnet": ".params", "mindspore": ".ckpt", "torch": ".pth"}
# every architecture the suite defines on every backend (recipe-only zoo variants excluded)
ARCHITECTURES = [s.name for s in all_specs() if s.every_backend]
