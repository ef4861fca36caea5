"""Which backends are installed here, from the runner's own registry (asked without importing
their frameworks); a backend added to ``backends.registry.REGISTRY`` is tested with no edit here."""
from architectures import all_specs
from backends.registry import REGISTRY, backend_info, missing_modules

BACKENDS = [name for name in REGISTRY if not missing_modules(name)]
SUFFIX = {name: backend_info(name).suffix for name in BACKENDS}
# every architecture the suite defines on every backend (recipe-only zoo variants excluded)
ARCHITECTURES = [s.name for s in all_specs() if s.every_backend]
