"""Which backends are installed here, from the runner's own registry (asked without importing
their frameworks); a backend added to ``backends.registry.REGISTRY`` is tested with no edit here."""
from architectures import all_specs
from backends.registry import REGISTRY, backend_info, missing_modules

BACKENDS = [name for name in REGISTRY if not missing_modules(name)]
SUFFIX = {name: backend_info(name).suffix for name in BACKENDS}
# every architecture the suite defines on every backend (recipe-only zoo variants excluded)
ARCHITECTURES = [s.name for s in all_specs() if s.every_backend]


def building(arch: str) -> list[str]:
    """The installed backends that build ``arch`` (a backend may build only some families)."""
    return [b for b in BACKENDS if backend_info(b).builds(b, arch)]


# (architecture, backend) for every installed backend that builds it
BUILDS = [(arch, backend) for arch in ARCHITECTURES for backend in building(arch)]
