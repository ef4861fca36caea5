"""``bench run --executor ray``: the same plan as Ray tasks, on a cluster you already have.

Each job becomes a Ray task that runs the very child the local executor runs
(``python -m bench _exec``) on its worker node, so a crash or an OOM kill of a
framework is still a failed record, never a lost sweep. Nothing is shared but
Ray itself:

* a task returns its record to the driver, which writes it atomically into
  ``--out`` (one file per run, never overwritten) as soon as it arrives;
* a pretrain task returns its canonical weights through Ray's object store; the
  arms that need them receive them as a task argument (Ray runs them after it),
  write them into their node's cache and check their SHA-256;
* each node prepares datasets under its own data root; a node that cannot (no
  network, no disk) fails its jobs with a message that names the node.

A backend with an environment of its own (``bench env create``) runs in it on every node.
``--ray-envs runtime`` (the default) hands it to Ray as a runtime environment built from the
driver's exact package versions (``environments.ray_runtime_env``): Ray builds it once per node
before the node's first job of that backend and starts those jobs' workers in it; a task checks
that it holds the framework release the driver's environment holds, and a node that cannot build
it fails those jobs with Ray's reason. ``--ray-envs nodes`` uses the environments each node
already has under the driver's ``BENCH_ENV_ROOT`` (a shared file system, or ``bench env create``
run on every node).

Timing stays honest: a timed job asks for as many CPUs as the smallest node has
(and a GPU if it uses one) and takes the node's timing lock, so two timed jobs
never share a machine; ``--pack`` asks for one CPU and marks step times packed.
Runtime settings come from the driver's environment and the backend's defaults,
never from Ray (which sets ``OMP_NUM_THREADS`` in its workers). A task whose
worker dies becomes a failed record (``--max-retries``, default 0, so a retry
never hides a crash); so do the tasks of a node that disappears.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import socket
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from backends.settings import user_environment
from bench.core.errors import BackendUnavailable, DiskFull
from bench.core.files import atomic_path
from bench.records.store import failed_record, save_record
from bench.measure.timing import machine_lock
from bench.plan.config import RunConfig, backend_label
from bench.plan.sweep import Job

from .environments import BackendRef, describe, framework, ray_runtime_env, same_release
from .isolate import run_child
from .local import RunOptions, finished_records, not_run, pretrain_cached, report_outcome, stopped


def import_ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--executor ray needs Ray: pip install -e \".[ray]\"") from None
    return ray


def _job_dict(job: Job) -> dict:
    return {"config": job.config.to_json(), "weights": str(job.weights) if job.weights else None}


def _opts_dict(opts: RunOptions) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()}


def run_task(job_d: dict, opts_d: dict, user_env: dict, pretrain: dict | None, shipped: dict | None = None) -> dict:
    """On a worker: one job in an isolated child. Returns {"record", "weights", "sha256"}.
    ``shipped``: the job's backend environment came as a Ray runtime environment (this worker runs in
    it): its label, framework and the release the driver's environment holds.

    Never raises for a failed run (that is a record); only a dead worker or node does."""
    job = Job(RunConfig.from_json(job_d["config"]), weights=Path(job_d["weights"]) if job_d["weights"] else None)
    opts = RunOptions(**{k: Path(v) if k in ("out", "cache_dir", "data_root") else v for k, v in opts_d.items()})
    node = socket.gethostname()
    python = None
    if shipped is not None:
        problem = _shipped_problem(shipped)
        if problem:
            return _result(failed_record(job.config, f"on node {node}: {problem}", node=node))
        python = sys.executable
    if pretrain is not None and not job.is_pretrain:
        if pretrain["record"]["status"] != "ok" or pretrain["weights"] is None:
            return _result(failed_record(job.config, not_run(job, pretrain["record"]["error"])))
        _place_weights(pretrain, job.weights)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        with machine_lock() if not opts.packed else nullcontext():
            outcome, reason, tail = run_child(job, dataclasses.replace(opts, out=Path(tmp)), Path(tmp),
                                              settings_from=user_env, python=python)
        if outcome is None:
            return _result(failed_record(job.config, f"on node {node}: {reason}", stderr_tail=tail, node=node))
        record = json.loads(Path(outcome["path"]).read_text())
    record["node"] = node
    record["node_id"] = _node_id()
    if job.is_pretrain and record["status"] == "ok":
        return _result(record, job.weights.read_bytes())
    return _result(record)


def _shipped_problem(shipped: dict) -> str | None:
    """Why this worker's runtime environment is not the driver's environment of the backend, or None."""
    try:
        have = importlib.metadata.version(shipped["framework"])
    except importlib.metadata.PackageNotFoundError:
        have = None
    if same_release(have, shipped["version"]):
        return None
    return (f"the Ray runtime environment of backend {shipped['label']} holds {shipped['framework']} "
            f"{have or '(none)'}, not {shipped['version']} as the driver's environment does ({sys.executable})")


def shipped_envs(plan: list[Job], envs: str) -> dict[str, tuple[dict, dict]]:
    """Per backend label of the plan that runs in an environment of its own: (Ray runtime environment,
    what its tasks check). Empty for ``--ray-envs nodes``."""
    if envs == "nodes":
        return {}
    out = {}
    for ref in {BackendRef(j.config.backend, j.config.framework_version) for j in plan}:
        runtime_env = ray_runtime_env(ref)
        if runtime_env is not None:
            name = framework(ref)
            out[ref.label] = (runtime_env, {"label": ref.label, "framework": name,
                                            "version": describe(ref)["packages"][name]})
    return out


def _node_id() -> str | None:
    try:
        import ray
        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker
        return None


def _result(record: dict, weights: bytes | None = None) -> dict:
    """What a task returns to the driver: its record, and a pretrain step's canonical weights."""
    return {"record": record, "weights": weights, "sha256": hashlib.sha256(weights).hexdigest() if weights else None}


def _place_weights(pretrain: dict, path: Path) -> None:
    """Write a pretrain step's weights into this node's cache, checked by SHA-256."""
    if hashlib.sha256(pretrain["weights"]).hexdigest() != pretrain["sha256"]:
        raise ValueError("canonical weights from the object store do not match their sha256")
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == pretrain["sha256"]:
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(pretrain["weights"])


def _resources(ray, opts: RunOptions, config: RunConfig) -> dict:
    gpus = {"num_gpus": 1} if config.device == "gpu" else {}
    if opts.packed:
        return {"num_cpus": 1, **gpus}
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return {"num_cpus": min(n["Resources"].get("CPU", 1) for n in alive), **gpus}


def _cached_pretrain(ray, job: Job) -> object:
    """The driver's cached canonical weights, put into the object store as a pretrain result."""
    return ray.put(_result({"status": "ok", "error": None}, job.weights.read_bytes()))


NODE_LOSS_RERUNS = 3  # times a job lost with its node is submitted again


def _alive(ray) -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def run_ray(plan: list[Job], opts: RunOptions, *, address: str | None = None, max_retries: int = 0,
            envs: str = "runtime") -> list[dict]:
    """Submit the plan, collect records as tasks finish. A task lost because a node left the
    cluster after it was submitted (or because the pretrain step it waits on was) is submitted
    again, up to ``NODE_LOSS_RERUNS`` times: a lost node loses no finished job and no job is
    skipped. A task whose worker died on a node still alive is a failed record, never retried
    beyond ``--max-retries``: a crash is never hidden."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    task = ray.remote(run_task)
    done = finished_records(opts.out) if opts.resume else {}
    user_env = user_environment()
    shipped = shipped_envs(plan, envs)
    pre_refs, pending, records, attempts = {}, {}, [], {}

    def submit(job: Job) -> None:
        runtime_env, check = shipped.get(backend_label(job.config.backend, job.config.framework_version), (None, None))
        ref = task.options(max_retries=max_retries, runtime_env=runtime_env,
                           **_resources(ray, opts, job.config)).remote(
            _job_dict(job), _opts_dict(opts), user_env, pre_refs.get(job.needs), check)
        if job.is_pretrain:
            pre_refs[job.key] = ref
        pending[ref] = (job, _alive(ray), pre_refs.get(job.needs))
        attempts[job.key] = attempts.get(job.key, 0) + 1

    for job in plan:
        if job.is_pretrain and pretrain_cached(job):
            print(f"pretrain cached: {job.weights}")
            pre_refs[job.key] = _cached_pretrain(ray, job)
        elif not job.is_pretrain and job.key in done:
            print(f"skip (--resume): ok record {done[job.key]['run_id']}")
            records.append(done[job.key])
        else:
            submit(job)
    print(f"submitted {len(pending)} Ray task(s)", flush=True)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job, nodes, needed = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as e:
                lost = nodes - _alive(ray)
                if (lost or pre_refs.get(job.needs) is not needed) and attempts[job.key] <= NODE_LOSS_RERUNS:
                    print(f"{job.describe()}\n  lost with node(s) {', '.join(sorted(n[:8] for n in lost)) or '-'}"
                          f" ({type(e).__name__}); submitted again", flush=True)
                    submit(job)
                    continue
                records.append(_failed(job, e, opts))
                continue
            records.append(_collect(result, job, opts))
    except (KeyboardInterrupt, DiskFull) as e:
        for ref in pending:
            ray.cancel(ref, force=True)
        if isinstance(e, DiskFull):
            raise stopped(e, len(pending) + 1, len(plan)) from None
        raise
    return records


def _failed(job: Job, error: Exception, opts: RunOptions) -> dict:
    text = str(error).strip()
    if isinstance(error, import_ray().exceptions.RuntimeEnvSetupError):  # Ray's banner first; pip's reason ends it
        label = backend_label(job.config.backend, job.config.framework_version)
        errors = [line.strip() for line in text.splitlines() if line.strip().startswith("ERROR:")]
        message = (f"Ray could not build the runtime environment of backend {label} on a node "
                   f"(--ray-envs nodes uses the nodes' own environments): "
                   f"{' '.join(errors)[:600] if errors else text[-600:]}")
    else:
        message = f"ray task failed: {type(error).__name__}: {text.splitlines()[0][:300] if text else ''}"
    record = save_record(failed_record(job.config, message), opts.out)
    print(f"{job.describe()}\n  failed: {record['error']}", file=sys.stderr)
    return record


def _collect(result: dict, job: Job, opts: RunOptions) -> dict:
    """The task's record written into --out (its weights into the driver's cache)."""
    record = save_record(result["record"], opts.out)
    if job.is_pretrain and result["weights"] is not None:
        _place_weights(result, job.weights)
    print(job.describe())
    report_outcome(record)
    return record
