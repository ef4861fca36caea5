"""One virtual environment per backend, and per framework release: where a backend's jobs run.

``bench env create torch mxnet@1.9.1 torch@2.12.1`` builds ``<root>/<backend>[@<version>]/``
(``BENCH_ENV_ROOT``, default ``~/.cache/bench/envs``) with ``python -m venv`` and pip: the suite
itself (editable, from this checkout) and the backend's extra from ``pyproject.toml``, the
framework's pin replaced by the requested release. A marker file written last
(``bench-env.json``: what was asked, every installed distribution and its version) says the
environment is complete; the executors start a backend's children with that environment's
interpreter (``interpreter``), so MXNet keeps NumPy 1.23.5 while another backend's environment
has NumPy 2. A backend with no environment of its own runs in the current interpreter (one shared
environment, today's install); a release asked for must have its environment, and a missing,
incomplete or mismatched one is an error naming the backend, the folder and the command that
fixes it, raised before any job starts (``check``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BackendUnavailable
from bench.plan.config import backend_label, check_release

PROJECT = Path(__file__).resolve().parents[2]   # the checkout whose pyproject.toml names the extras
MARKER = "bench-env.json"
# what an environment holds, asked of its own interpreter through the suite installed in it
# (the same listing every record's environment.packages comes from)
PACKAGES = ("import json, sys; from bench.measure.environment import installed_packages; "
            "print(json.dumps({'python': sys.version.split()[0], 'packages': installed_packages()}))")


def env_root(environ=None) -> Path:
    """Where the environments are: ``BENCH_ENV_ROOT`` of ``environ`` (default: this process's; a Ray
    worker reads the driver's), else ``~/.cache/bench/envs``."""
    return Path((environ if environ is not None else os.environ).get("BENCH_ENV_ROOT")
                or Path.home() / ".cache" / "bench" / "envs")


@dataclass(frozen=True)
class BackendRef:
    """A backend as a command names it: ``torch``, or ``torch@2.12.1`` for one release of its framework."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> "BackendRef":
        from backends.registry import backend_info
        name, at, version = text.strip().partition("@")
        backend_info(name)  # an unknown backend: ConfigError naming the known ones
        if at:
            check_release(name, version)
        return cls(name, version or None)

    @property
    def label(self) -> str:
        return backend_label(self.name, self.version)

    @property
    def directory(self) -> Path:
        return env_root() / self.label

    def directory_in(self, environ=None) -> Path:
        return env_root(environ) / self.label


def _project() -> dict:
    """``pyproject.toml``'s [project] table: the suite's name and its extras."""
    import tomllib
    with open(PROJECT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _extras() -> dict[str, list[str]]:
    return _project()["optional-dependencies"]


def _name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def framework(ref: BackendRef) -> str:
    """The distribution that is the backend's framework: its extra's first requirement (an out-of-tree
    backend, ``BENCH_BACKENDS``, has no extra here: the distribution named as its extra)."""
    from backends.registry import backend_info
    extra = backend_info(ref.name).extra
    return _name_of(_extras()[extra][0]) if extra in _extras() else extra.lower()


def requirements(ref: BackendRef) -> list[str]:
    """What the environment installs besides the suite: the backend's extra (its framework pinned to
    ``ref.version`` when given), the ImageNet-weights extra, and the dev extra's pytest (the backend's
    own tests run in its environment: ``tests/backends/test_own_environments.py``)."""
    from backends.registry import backend_info
    extras = _extras()
    needs = list(extras.get(backend_info(ref.name).extra) or [backend_info(ref.name).extra])
    if ref.version:
        needs[0] = f"{framework(ref)}=={ref.version}"
    tests = [r for r in extras.get("dev", []) if _name_of(r) == "pytest"]
    return needs + [r for r in extras.get("imagenet", []) + tests if r not in needs]


def same_release(have: str | None, want: str) -> bool:
    """Whether an installed version is the release asked for: ``2.12`` is ``2.12.0``, and a local build
    label (``2.13.0+cpu``) counts only where the release asked for names one."""
    from packaging.version import InvalidVersion, Version
    if have is None:
        return False
    try:
        h, w = Version(have), Version(want)
    except InvalidVersion:
        return have == want
    return h == w if w.local else Version(h.public) == w


def _marker(directory: Path) -> dict | None:
    path = directory / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("packages"), dict) else None


def _python(directory: Path) -> Path:
    return directory / "bin" / "python"


def describe(ref: BackendRef, environ=None) -> dict | None:
    """The marker of ``ref``'s environment (what it was built from, every package version), or None."""
    directory = ref.directory_in(environ)
    return _marker(directory) if _python(directory).exists() else None


def check(ref: BackendRef, environ=None) -> str:
    """The interpreter ``ref``'s jobs run with; BackendUnavailable, naming the fix, when its environment
    is asked for and missing, incomplete, or holds another release than the one asked for."""
    directory = ref.directory_in(environ)
    if not directory.exists():
        if ref.version is None:
            return sys.executable  # no environment of its own: the shared one
        raise BackendUnavailable(f"backend {ref.label} runs in its own environment, {directory}, which does not "
                                 f"exist; create it: python -m bench env create {ref.label}")
    marker = describe(ref, environ)
    if marker is None:
        raise BackendUnavailable(f"the environment of backend {ref.label} at {directory} is incomplete or broken "
                                 f"(no {MARKER} or no bin/python: its creation did not finish); rebuild it: "
                                 f"python -m bench env create --force {ref.label}")
    name = framework(ref)
    have = marker["packages"].get(name)
    if have is None:
        raise BackendUnavailable(f"the environment of backend {ref.label} at {directory} has no {name}; "
                                 f"rebuild it: python -m bench env create --force {ref.label}")
    if ref.version and not same_release(have, ref.version):
        raise BackendUnavailable(f"the environment of backend {ref.label} at {directory} holds {name} "
                                 f"{have}, not {ref.version}; rebuild it: python -m bench env create --force "
                                 f"{ref.label}")
    return str(_python(directory))


def interpreter(backend: str, version: str | None = None, environ=None) -> str:
    return check(BackendRef(backend, version), environ)


def create(ref: BackendRef, force: bool = False, out=sys.stderr) -> dict:
    """Build ``ref``'s environment (pip, from the registry this machine reaches); its marker."""
    directory, existing = ref.directory, describe(ref)
    if existing is not None and not force:
        print(f"bench: {ref.label}: {directory} exists (python -m bench env create --force {ref.label} "
              "rebuilds it)", file=out)
        return existing
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    steps = [[sys.executable, "-m", "venv", str(directory)],
             [str(_python(directory)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "-e", str(PROJECT), *requirements(ref)]]
    for argv in steps:
        print(f"bench: {ref.label}: {' '.join(argv)}", file=out, flush=True)
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise BackendUnavailable(f"creating the environment of backend {ref.label} at {directory} failed "
                                     f"({argv[2] if argv[1] == '-m' else argv[0]} exited {done.returncode}): "
                                     f"{done.stdout.strip()[-600:]}")
    found = subprocess.run([str(_python(directory)), "-c", PACKAGES], capture_output=True, text=True, check=True)
    marker = {"backend": ref.name, "version": ref.version, "requirements": requirements(ref),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "build_s": round(time.monotonic() - began, 1)} | json.loads(found.stdout)
    have = marker["packages"].get(framework(ref))
    if ref.version and not same_release(have, ref.version):
        raise BackendUnavailable(f"{directory}: pip installed {framework(ref)} {have} for {ref.label}")
    tmp = directory / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1, sort_keys=True))
    os.replace(tmp, directory / MARKER)  # written last: its presence says the environment is complete
    return marker


# what a copy of an environment leaves to its own installer: the suite (installed from the checkout or
# shipped with the task) and pip's own tools
NOT_PINNED = ("pip", "setuptools", "wheel")


def pinned(ref: BackendRef, environ=None) -> list[str]:
    """``ref``'s environment as exact pins (``name==version`` for every distribution its marker lists, but
    the suite and pip's own tools): what another machine installs to hold the very same versions."""
    marker = describe(ref, environ)
    if marker is None:
        check(ref, environ)  # raises, naming the fix
        raise BackendUnavailable(f"backend {ref.label} has no environment of its own to copy")
    skip = {_project()["name"].lower(), *NOT_PINNED}
    return [f"{name}=={version}" for name, version in sorted(marker["packages"].items()) if name not in skip]


def ray_runtime_env(ref: BackendRef, environ=None) -> dict | None:
    """The Ray runtime environment that gives every node ``ref``'s environment: Ray builds it once per
    node from the driver's exact pins (its ``pip`` plugin: a copy of the node's Python environment, which
    holds the suite and Ray, with the pins installed over it) and starts the backend's workers in it.
    None for a backend that runs in the shared environment. Pip's configuration on the node (index, cache,
    ``PIP_FIND_LINKS``) applies; pip's cache is kept, so a node builds from the wheels it has."""
    if check(ref, environ) == sys.executable:
        return None
    return {"pip": {"packages": pinned(ref, environ), "pip_check": False,
                    "pip_install_options": ["--disable-pip-version-check"]}}


def check_backend(ref: BackendRef) -> bool:
    """Before any job starts: whether ``ref`` runs in an environment of its own (complete, holding its
    framework at the release asked for: ``check``); where it runs here, that its framework is installed
    here (asked without importing it). BackendUnavailable naming the fix otherwise."""
    from backends.registry import check_installed
    if check(ref) != sys.executable:
        return True
    check_installed(ref.name)
    return False
