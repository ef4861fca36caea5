"""Runtime settings per backend: chosen by the parent of a sweep, given to each child
explicitly, and read back in the child from the C environment for the record.

Why this module exists (all measured): ``import mindspore`` sets
``OMP_NUM_THREADS=1`` in the process's C environment when it is unset (invisible
in ``os.environ``, inherited by every process started afterwards with the default
``env``); the MindSpore backend needs ``ONEDNN_MAX_CPU_ISA=AVX2`` on AVX-512 CPUs
(60x faster 3x3 convolutions) which would slow or change other frameworks. So:

* the parent of a sweep imports no framework (``backends.registry.check_installed``);
* every child starts from the *user's* variables (``os.environ`` minus what the
  suite set, listed in ``BENCH_SETTINGS_ORIGIN``) plus its own backend's measured
  defaults for those the user left unset, passed as an explicit ``env`` (so nothing
  set only in a C environment can leak);
* each record lists every setting of its backend with its value *as the C
  environment holds it* and its origin: ``user``, ``bench default`` or ``framework``.
"""
from __future__ import annotations

import ctypes
import json
import os

from bench.measure.environment import cpu_flags

from .registry import backend_info, registry

ORIGIN_VAR = "BENCH_SETTINGS_ORIGIN"
USER, DEFAULT, FRAMEWORK = "user", "bench default (measured best on this CPU)", "framework (set at import)"
_libc = None


def _origins(environ) -> dict[str, str]:
    try:
        return json.loads(environ.get(ORIGIN_VAR) or "{}")
    except ValueError:
        return {}


def user_environment(environ=None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) without the variables the suite itself set."""
    env = dict(os.environ if environ is None else environ)
    for name, origin in _origins(env).items():
        if origin != USER:
            env.pop(name, None)
    env.pop(ORIGIN_VAR, None)
    return env


def all_setting_names() -> set[str]:
    return {name for info in registry().values() for name in info.settings}


def child_env(backend: str, extra: dict[str, str] | None = None, environ=None,
              settings_from: dict[str, str] | None = None) -> dict[str, str]:
    """The complete environment for a child process that runs ``backend``.

    ``settings_from``: take every runtime setting from this (the user's environment on
    the machine that started the sweep) instead of ``environ``, whose values for
    those names are dropped: a Ray worker sets ``OMP_NUM_THREADS`` of its own."""
    env = user_environment(environ)
    if settings_from is not None:
        names = all_setting_names()
        env = {k: v for k, v in env.items() if k not in names}
        env.update({k: v for k, v in user_environment(settings_from).items() if k in names})
    origins = {}
    for name, value in backend_info(backend).default_settings(cpu_flags()).items():
        if name in env:
            origins[name] = USER
        else:
            env[name] = value
            origins[name] = DEFAULT
    env.update(extra or {})
    env[ORIGIN_VAR] = json.dumps(origins, sort_keys=True)
    return env


def apply_in_process(backend: str) -> None:
    """Give an in-process run (tests, ``--in-process``) the same defaults a child would get;
    call before the framework is imported. Variables the user set are kept."""
    origins = _origins(os.environ)
    for name, value in backend_info(backend).default_settings(cpu_flags()).items():
        if name.startswith("MALLOC_"):  # glibc reads these when the process starts: a child's only
            continue
        if name not in os.environ:
            os.environ[name] = value
            origins[name] = DEFAULT
        else:
            origins.setdefault(name, USER)
    os.environ[ORIGIN_VAR] = json.dumps(origins, sort_keys=True)


def c_getenv(name: str) -> str | None:
    """The variable as the C environment holds it (what OpenMP and oneDNN read)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None)
        _libc.getenv.restype = ctypes.c_char_p
        _libc.getenv.argtypes = [ctypes.c_char_p]
    value = _libc.getenv(name.encode())
    return None if value is None else value.decode(errors="replace")


def effective_settings(backend: str) -> dict[str, dict]:
    """Every environment setting of ``backend`` in effect now: value (C environment) and origin."""
    origins = _origins(os.environ)
    out = {}
    for name in backend_info(backend).settings:
        value = c_getenv(name)
        if value is None:
            continue
        if name in origins:
            origin = origins[name]
        elif os.environ.get(name) == value:
            origin = USER
        else:
            origin = FRAMEWORK
        out[name] = {"value": value, "origin": origin}
    return out
