"""One environment per backend and release (``bench env``): how a backend is named, which
interpreter its jobs get, and the errors, naming the fix, raised before any job starts."""
import json
import sys

import pytest

from bench.cli import main
from bench.core.errors import BackendUnavailable, ConfigError
from bench.execute import environments
from bench.execute.environments import BackendRef, check, requirements


@pytest.fixture
def env_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_ENV_ROOT", str(tmp_path / "envs"))
    return tmp_path / "envs"


def fake_env(root, label, packages):
    """An environment as ``create`` leaves it, as far as ``check`` reads it: an interpreter and its marker.
    The interpreter is this one under another name (a link would lose its venv) that logs each start
    to ``started`` in its folder."""
    directory = root / label
    (directory / "bin").mkdir(parents=True)
    python = directory / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho started >> {directory / 'started'}\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    (directory / environments.MARKER).write_text(json.dumps({"packages": packages, "python": "3.11"}))
    return directory


@pytest.mark.parametrize("text,said", [("tensorflow", "unknown backend 'tensorflow'"),
                                       ("torch@latest", "'latest' is not a release number"),
                                       ("torch@2.x", "'2.x' is not a release number"),
                                       ("torch@", "'' is not a release number"), ("torch", None)])
def test_a_backend_is_named_with_an_optional_release(text, said):
    if said is None:
        assert BackendRef.parse(text) == BackendRef("torch")
        return
    with pytest.raises(ConfigError, match=said):
        BackendRef.parse(text)


def test_releases_pin_the_framework_in_its_extra():
    ref = BackendRef.parse("torch@2.12.1")
    assert ref.label == "torch@2.12.1" and requirements(ref)[0] == "torch==2.12.1"
    assert requirements(BackendRef("mxnet"))[:3] == ["mxnet==1.9.1", "gluoncv==0.10.5.post0", "numpy==1.23.5"]


def test_without_an_environment_a_backend_runs_here_and_a_release_is_an_error(env_root):
    assert check(BackendRef("torch")) == sys.executable
    with pytest.raises(BackendUnavailable, match=r"backend torch@2.12.1 runs in its own environment, .*torch@2.12.1, "
                                                 r"which does not exist; create it: python -m bench env create "
                                                 r"torch@2.12.1"):
        check(BackendRef("torch", "2.12.1"))


def test_an_environment_is_used_only_when_complete_and_at_the_release_asked(env_root):
    directory = fake_env(env_root, "torch@2.12.1", {"torch": "2.12.1", "numpy": "2.3.0"})
    assert check(BackendRef("torch", "2.12.1")) == str(directory / "bin" / "python")
    fake_env(env_root, "torch@2.11.0", {"torch": "2.13.0"})
    with pytest.raises(BackendUnavailable, match="holds torch 2.13.0, not 2.11.0; rebuild it: python -m bench env "
                                                 "create --force torch@2.11.0"):
        check(BackendRef("torch", "2.11.0"))
    (env_root / "mxnet").mkdir()  # a creation that never finished: no marker
    with pytest.raises(BackendUnavailable, match="incomplete or broken .* python -m bench env create --force mxnet"):
        check(BackendRef("mxnet"))


def test_a_sweep_with_a_missing_environment_stops_before_any_job(env_root, tmp_path, capsys):
    out = tmp_path / "runs"
    status = main(["run", "--backend", "torch@2.12.1", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert status == 2 and not out.exists()
    assert "python -m bench env create torch@2.12.1" in capsys.readouterr().err


def test_a_release_is_its_own_row_and_runs_with_its_environments_interpreter(env_root, tmp_path, fake_backend):
    """``--backend fake@1.0``: every job starts with the environment's interpreter (a link to this one
    here), the records name the release, and the table shows it as its own backend."""
    from bench.report.tables import render_table
    from bench.records.store import read_records

    from ...conftest import write_image_folder
    directory = fake_env(env_root, "fake@1.0", {"fake": "1.0"})  # an out-of-tree backend's framework: its name
    folder = write_image_folder(tmp_path / "imgs")
    out = tmp_path / "runs"
    argv = ["run", "--backend", "fake@1.0,fake", "--model", "fake_mlp", "--data-dir", str(folder), "--pretrained",
            "none", "--image-size", "8", "--epochs", "1", "--batch-size", "4", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    records, _ = read_records([out])
    assert sorted(str(r["config"].get("framework_version")) for r in records) == ["1.0", "1.0", "None", "None"]
    ran_there = [r for r in records if r["config"].get("framework_version") == "1.0"]
    assert len((directory / "started").read_text().splitlines()) == len(ran_there) > 0  # one start a job
    assert all(r["environment"]["packages"] and r["environment"]["interpreter"] for r in records)
    table = render_table(records, "markdown")
    assert table.count("| fake@1.0 ") == 2 and table.count("| fake ") == 2  # each release its own rows
    # the two releases' runs of one configuration match in compare and gate (one seed: too few to resolve)
    assert main(["compare", str(out), str(out), "--release", "fake", "fake@1.0"]) == 0
    assert main(["gate", str(out), str(out), "--release", "fake", "fake@1.0"]) == 3
    with pytest.raises(ConfigError, match="holds no run of fake@2.0"):
        from bench.commands.report import _releases
        _releases(["fake", "fake@2.0"], records, records, out, out)


def test_release_names_are_checked(env_root):
    from bench.commands.report import _release_labels
    with pytest.raises(ConfigError, match="two releases of one backend"):
        _release_labels(["torch@2.12.1", "mxnet@1.9.1"])
    with pytest.raises(ConfigError, match="not a release number"):
        _release_labels(["torch@2.12.1", "torch@new"])


@pytest.mark.parametrize("have,want,same", [("2.13.0+cpu", "2.13.0", True), ("2.12.0", "2.12", True),
                                            ("2.13.0+cpu", "2.13.0+cu121", False), ("2.14.1", "2.13.0", False),
                                            (None, "2.13.0", False)])
def test_a_release_is_compared_as_pip_compares_it(have, want, same):
    assert environments.same_release(have, want) is same


def test_env_commands_check_every_name_before_building_and_list_what_there_is(env_root, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(environments, "create", lambda ref, force=False: built.append(ref))
    assert main(["env", "create", "torch", "torch@2.x"]) == 2 and not built  # nothing built before all are valid
    assert "'2.x' is not a release number" in capsys.readouterr().err
    assert main(["env", "list"]) == 0 and "every backend runs in this interpreter" in capsys.readouterr().out
    fake_env(env_root, "torch@2.14.1", {"torch": "2.14.1", "numpy": "2.3.5"}).joinpath(environments.MARKER)
    marker = env_root / "torch@2.14.1" / environments.MARKER
    marker.write_text(json.dumps({"packages": {"torch": "2.14.1", "numpy": "2.3.5"}, "python": "3.11.7",
                                  "created": "2026-12-06T16:00:00Z"}))
    (env_root / "mxnet").mkdir()
    assert main(["env", "list"]) == 0
    out = capsys.readouterr().out
    assert "torch@2.14.1: torch 2.14.1, numpy 2.3.5, Python 3.11.7" in out
    assert "mxnet: incomplete (python -m bench env create --force mxnet)" in out


def test_on_ray_an_environment_of_its_own_is_shipped_as_the_drivers_exact_versions(env_root, fake_backend):
    """``--ray-envs runtime``: Ray builds the backend's environment on each node from exact pins of the
    driver's (never the suite itself or pip's tools); a backend in the shared environment ships none; a
    worker whose runtime environment holds another release refuses, naming both."""
    from bench.execute.ray_executor import _shipped_problem, shipped_envs
    from bench.plan.config import RunConfig
    from bench.plan.sweep import Job
    fake_env(env_root, "fake@1.0", {"fake": "1.0", "numpy": "2.4.6", "bench": "0.1.0", "pip": "24.0",
                                    "setuptools": "80.0"})
    ref = BackendRef("fake", "1.0")
    assert environments.pinned(ref) == ["fake==1.0", "numpy==2.4.6"]
    assert environments.ray_runtime_env(ref)["pip"]["packages"] == ["fake==1.0", "numpy==2.4.6"]
    assert environments.ray_runtime_env(BackendRef("fake")) is None  # no environment of its own: the shared one
    plan = [Job(RunConfig(backend="fake", model="fake_mlp", framework_version=v)) for v in ("1.0", None)]
    shipped = shipped_envs(plan, "runtime")
    assert list(shipped) == ["fake@1.0"]
    assert shipped["fake@1.0"][1] == {"label": "fake@1.0", "framework": "fake", "version": "1.0"}
    assert shipped_envs(plan, "nodes") == {}
    problem = _shipped_problem(shipped["fake@1.0"][1])  # this interpreter has no distribution named fake
    assert "runtime environment of backend fake@1.0 holds fake (none), not 1.0" in problem
    assert _shipped_problem({"label": "x", "framework": "pytest", "version": __import__("pytest").__version__}) is None


def test_ray_only_options_are_refused_for_the_local_executor(capsys):
    assert main(["run", "--backend", "torch", "--ray-envs", "nodes"]) == 2
    assert "--ray-envs" in capsys.readouterr().err
