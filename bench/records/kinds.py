"""One class per record kind (run, study, overhead, tune, profile, peak): ``from_json`` is the check
a record passes when it is read (a record that fails it is named with the reason and skipped), the
attributes are what the readers use, and ``to_json`` is the document as written. Every kind says
where it was measured: its ``machine`` (CPU model, ISA flags, cores, GPUs), its ``commit`` and, for
kinds that time something, its ``contention`` (whether other processes used the CPU meanwhile).

Records of speed, study and profile kinds are built here (``*.new``), with those three fields, and
nowhere else; run records are built by ``bench.records.store.new_record``. A record written by a
later bench with more keys passes; ``to_json`` returns every key it was read with.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import BenchError

from .schema import (NUMBER, SCHEMA_VERSION, Invalid, check_run_record, count, expect, items, number, numbers,
                     obj, text, utc_now)

# The CPU flags that decide which kernels a framework picks (two machines differing only in others,
# e.g. a hypervisor's flags, count as one machine).
ISA_PREFIXES = ("avx", "amx", "fma", "f16c", "sse", "ssse", "vnni", "bf16", "fp16")


@dataclass(frozen=True)
class Machine:
    """The machine a record was measured on."""

    cpu: str
    flags: tuple[str, ...]
    cores: int | None
    gpu: tuple[str, ...]

    @classmethod
    def of(cls, environment) -> "Machine":
        env = environment if isinstance(environment, dict) else {}
        flags = env.get("cpu_flags") if isinstance(env.get("cpu_flags"), list) else []
        gpu = env.get("gpu") if isinstance(env.get("gpu"), list) else []
        cores = env.get("cpu_count")
        return cls(str(env.get("cpu") or "?"), tuple(sorted(str(f) for f in flags)),
                   cores if isinstance(cores, int) and not isinstance(cores, bool) else None, tuple(map(str, gpu)))

    @staticmethod
    def check(environment, what: str = "environment") -> None:
        env = obj(environment, what)
        for key, kind in (("cpu", str), ("cpu_flags", list), ("gpu", list), ("cpu_count", int)):
            if env.get(key) is not None:
                expect(isinstance(env[key], kind) and not isinstance(env[key], bool),
                       f"{what}.{key} is {str(env[key])[:40]!r}, expected a{'n integer' if kind is int else ' ' + kind.__name__}")
        for key in ("cpu_flags", "gpu"):
            expect(all(isinstance(v, str) for v in env.get(key) or []), f"{what}.{key} holds something not a string")
        if env.get("git") is not None:  # the code it was measured with: a commit and whether it was dirty
            git = obj(env["git"], f"{what}.git")
            expect(isinstance(git.get("commit"), (str, type(None))), f"{what}.git.commit is not a string")
            expect(isinstance(git.get("dirty"), (bool, type(None))), f"{what}.git.dirty is not true or false")
        for key in ("frameworks", "packages", "settings", "runtime"):
            if env.get(key) is not None:
                obj(env[key], f"{what}.{key}")

    @property
    def isa(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags if f.startswith(ISA_PREFIXES))

    @property
    def key(self) -> str:
        """What identifies the machine: CPU model, its ISA flags, cores and GPUs."""
        return "|".join([self.cpu, " ".join(self.isa), str(self.cores or "?"), ",".join(self.gpu)])

    @property
    def widest_isa(self) -> str:
        return "avx512f" if "avx512f" in self.flags else "avx2" if "avx2" in self.flags else "-"

    @property
    def label(self) -> str:
        """The machine in words: CPU, widest ISA, cores, GPUs."""
        return f"{self.cpu} ({self.widest_isa}, {self.cores or '?'} cores, {', '.join(self.gpu) or 'no gpu'})"


@dataclass(frozen=True)
class Provenance:
    """The code a record was measured with (``dirty``: the code differed from the commit)."""

    commit: str | None
    dirty: bool | None

    @classmethod
    def of(cls, environment) -> "Provenance":
        git = (environment if isinstance(environment, dict) else {}).get("git")
        git = git if isinstance(git, dict) else {}
        commit, dirty = git.get("commit"), git.get("dirty")
        return cls(commit if isinstance(commit, str) else None, dirty if isinstance(dirty, bool) else None)


@dataclass(frozen=True)
class Contention:
    """Whether other processes used the machine's CPU while it was timed, and their share."""

    busy: bool
    other_share: float | None = None

    @classmethod
    def of(cls, contention) -> "Contention":
        c = contention if isinstance(contention, dict) else {}
        share = c.get("other_share")
        return cls(bool(c.get("busy")), float(share) if isinstance(share, NUMBER) and not isinstance(share, bool)
                   else None)

    @classmethod
    def worst(cls, contentions) -> "Contention":
        """The contention of several timed parts together: busy if any was."""
        cs = [cls.of(c) for c in contentions]
        shares = [c.other_share for c in cs if c.other_share is not None]
        return cls(any(c.busy for c in cs), max(shares) if shares else None)

    def to_json(self) -> dict:
        return {"busy": self.busy, "other_share": self.other_share}


class Record:
    """A record of one kind: ``data`` is the document; ``machine``, ``commit`` and ``contention``
    say where and how cleanly it was measured."""

    KIND = ""

    def __init__(self, data: dict):
        self.data = data

    @classmethod
    def from_json(cls, data) -> "Record":
        """The record, checked; :class:`Invalid` says what is wrong."""
        data = obj(data, "the record")
        expect(data.get("kind", "run") == cls.KIND, f"a {data.get('kind', 'run')!r} record, not a {cls.KIND!r} record")
        for key in ("created", "finished"):  # times the tables sort and print
            expect(isinstance(data.get(key), (str, type(None))), f"{key} is not a time stamp string")
        if data.get("environment") is not None:
            Machine.check(data["environment"])
            if data["environment"].get("peak") is not None:  # the machine's peak, as the record carries it
                PeakRecord.check(obj(data["environment"]["peak"], "environment.peak"))
        cls.check(data)
        return cls(data)

    @staticmethod
    def check(data: dict) -> None:
        raise NotImplementedError

    def to_json(self) -> dict:
        return self.data

    @property
    def environment(self) -> dict:
        env = self.data.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def machine(self) -> Machine:
        return Machine.of(self.environment)

    @property
    def commit(self) -> Provenance:
        return Provenance.of(self.environment)

    @property
    def contention(self) -> Contention:
        return Contention.of(self.data.get("contention"))


def _here(environment: dict | None = None) -> dict:
    """The machine and commit of a record built in this process (its parent's, for a sweep's study)."""
    from bench.measure.environment import capture_environment
    return capture_environment({}) if environment is None else environment


class RunRecord(Record):
    """A training run (``bench.records.store.new_record``; checked by ``bench.records.schema``)."""

    KIND = "run"

    @staticmethod
    def check(data: dict) -> None:
        check_run_record(data)

    @property
    def contention(self) -> Contention:
        timing = self.data.get("timing") if isinstance(self.data.get("timing"), dict) else {}
        return Contention.of(timing.get("contention"))

    @property
    def start(self) -> str | None:
        """The sha256 of the weights a fine-tuned arm started from (None for other arms, and for one
        whose record names no file: a zoo's own weights, or a record from before)."""
        if self.data["config"]["arm"] != "finetune":
            return None
        weights = (self.data.get("model") or {}).get("weights") or {}
        return weights.get("sha256") if isinstance(weights, dict) and isinstance(weights.get("sha256"), str) else None


def _point(point, what: str) -> None:
    point = obj(point, what)
    number(point.get("lr"), f"{what}.lr", 0)
    number(point.get("weight_decay"), f"{what}.weight_decay", 0)
    count(point.get("schedule"), f"{what}.schedule")


class StudyRecord(Record):
    """A tuning study's selection: its arm, space, budget, every trial's validation score, the winner."""

    KIND = "study"

    @staticmethod
    def check(data: dict) -> None:
        from bench.plan.config import RunConfig
        text(data.get("key"), "key")
        try:
            RunConfig.from_json(obj(data.get("arm"), "arm"))
        except (BenchError, TypeError, ValueError) as e:  # Invalid included: named, never a traceback
            if isinstance(e, Invalid):
                raise
            raise Invalid(f"its arm is not a valid run configuration ({str(e)[:160]})") from None
        trials = count(data.get("trials"), "trials")
        expect(1 <= trials <= 256, f"trials {trials} is outside [1, 256]")
        count(data.get("sampler_seed"), "sampler_seed")
        rows = items(data.get("trial_results"), "trial_results")
        expect(len(rows) == trials, f"trial_results holds {len(rows)} trials, the study declares {trials}")
        for i, row in enumerate(rows):
            row = obj(row, f"trial_results[{i}]")
            expect(row.get("trial") == i, f"trial_results[{i}] is trial {str(row.get('trial'))[:20]!r}")
            _point(row.get("point"), f"trial_results[{i}].point")
            text(row.get("status"), f"trial_results[{i}].status")
            for key in ("val_acc", "val_loss", "n_val"):
                if row.get(key) is not None:
                    number(row[key], f"trial_results[{i}].{key}", 0, 1 if key == "val_acc" else None)
        winner = data.get("winner")
        if winner is not None:
            expect(isinstance(winner, int) and not isinstance(winner, bool) and 0 <= winner < trials,
                   f"winner {str(winner)[:20]!r} is not one of the {trials} trials")
            expect(rows[winner].get("val_acc") is not None, f"winner {winner} has no validation score")
            _point(data.get("winner_point"), "winner_point")
        for seed in items(data.get("seeds"), "seeds"):
            count(seed, "seeds")
        StudyRecord._consistent(data, rows, winner)

    @staticmethod
    def _consistent(data: dict, rows: list[dict], winner) -> None:
        """The key is its arm's, space's, budget's and sampler's; the points are the sampler's; the winner
        is the selection rule's over the rows: an edited study is refused, not trusted."""
        from bench.plan.config import RunConfig
        from bench.plan.study import Study
        try:
            study = Study(RunConfig.from_json(data["arm"]), data["trials"], data["sampler_seed"])
        except BenchError as e:
            raise Invalid(f"its arm cannot be a study's ({str(e)[:160]})") from None
        expect(study.key == data["key"], f"key {data['key'][:20]!r} is not its arm's, space's and budget's "
               f"({study.key})")
        points = study.points()
        expect(all(row.get("point") == p for row, p in zip(rows, points)),
               "a trial's point is not the one the study's sampler draws")
        scored = [r for r in rows if r.get("val_acc") is not None]
        for r in scored:
            number(r.get("val_loss"), f"trial_results[{r['trial']}].val_loss")
        best = max(scored, key=lambda r: (r["val_acc"], -r["val_loss"], -r["trial"]))["trial"] if scored else None
        expect(winner == best, f"winner {winner} is not the best trial by validation ({best})")
        if winner is not None:
            expect(data.get("winner_point") == points[winner], "winner_point is not the winning trial's point")

    @classmethod
    def new(cls, study: dict, winner: int | None, rows: list[dict], seeds: list[int], trial_records: list[dict]):
        """The record of a study selected from ``trial_records`` (its trials' run records): measured
        where its trials ran (the machines they name; contention: any trial timed while busy)."""
        mine = [r for r in trial_records if (r.get("config") or {}).get("study") == study["key"]]
        machines = sorted({Machine.of(r.get("environment")).key for r in mine if r.get("environment")})
        env = next((r["environment"] for r in mine if r.get("environment")), None)
        data = {"schema_version": SCHEMA_VERSION, "kind": cls.KIND, "created": utc_now(), **study,
                "winner": winner, "trial_results": rows, "seeds": seeds,
                "winner_point": rows[winner]["point"] if winner is not None else None,
                "environment": _here(env), "machines": machines,
                "contention": Contention.worst((r.get("timing") or {}).get("contention") for r in mine).to_json()}
        if winner is None:
            data["error"] = "no trial finished with a validation score: no winner, no final runs"
        return cls(data)

    @property
    def key(self) -> str:
        return self.data["key"]

    @property
    def arm(self) -> dict:
        return self.data["arm"]

    @property
    def winner(self) -> int | None:
        return self.data.get("winner")


def _loop(value, what: str) -> None:
    loop = obj(value, what)
    numbers(loop.get("round_medians_ms"), f"{what}.round_medians_ms", 0)
    expect(all(isinstance(e, str) for e in items(loop.get("errors"), f"{what}.errors")),
           f"{what}.errors holds something not a string")
    expect(isinstance(loop.get("contended"), bool), f"{what}.contended is not true or false")
    for i, memory in enumerate(items(loop.get("memory", []), f"{what}.memory")):
        for key, value in obj(memory, f"{what}.memory[{i}]").items():
            if value is not None:
                number(value, f"{what}.memory[{i}].{key}", 0)


def _spec(value) -> dict:
    spec = obj(value, "spec")
    for key in ("backend", "model", "strategy"):
        text(spec.get(key), f"spec.{key}")
    for key in ("image_size", "batch_size"):
        count(spec.get(key), f"spec.{key}")
    return spec


class OverheadRecord(Record):
    """``bench overhead``: the harness's step against the framework's own loop, per round."""

    KIND = "overhead"

    @staticmethod
    def check(data: dict) -> None:
        _spec(data.get("spec"))
        for loop in ("native", "harness"):
            _loop(data.get(loop), loop)
        numbers(data.get("round_ratios", []), "round_ratios", 0)
        if data.get("ratio") is not None:
            number(data["ratio"], "ratio", 0)
        if "flops" in data:
            per_step = obj(data["flops"], "flops").get("per_step")
            if per_step is not None:
                number(per_step, "flops.per_step", 0)

    @classmethod
    def new(cls, spec: dict, loops: dict[str, dict], settings: dict, environment: dict | None, **extra):
        data = {"schema_version": SCHEMA_VERSION, "kind": cls.KIND, "created": utc_now(), "spec": spec,
                "settings": settings, **loops, "environment": _here(environment),
                "contention": {"busy": any(loop["contended"] for loop in loops.values()), "other_share": None},
                **extra}
        return cls(data)

    @property
    def contention(self) -> Contention:
        return Contention(any(bool(self.data[loop].get("contended")) for loop in ("native", "harness")))


class TuneRecord(Record):
    """``bench tune``: one backend's step under each candidate runtime setting."""

    KIND = "tune"

    @staticmethod
    def check(data: dict) -> None:
        text(data.get("backend"), "backend")
        text(data.get("strategy"), "strategy")
        count(data.get("batch_size"), "batch_size")
        obj(data.get("defaults"), "defaults")
        for i, row in enumerate(items(data.get("rows"), "rows")):
            row = obj(row, f"rows[{i}]")
            text(row.get("knob"), f"rows[{i}].knob")
            text(row.get("value"), f"rows[{i}].value")
            for cell, medians in obj(row.get("rounds_ms", {}), f"rows[{i}].rounds_ms").items():
                numbers(medians, f"rows[{i}].rounds_ms[{cell!r}]", 0)
            obj(row.get("errors", {}), f"rows[{i}].errors")

    @classmethod
    def new(cls, backend: str, defaults: dict, strategy: str, batch_size: int, rounds: int, rows: list[dict],
            peak: dict | None, environment: dict | None = None):
        data = {"schema_version": SCHEMA_VERSION, "kind": cls.KIND, "created": utc_now(), "backend": backend,
                "defaults": defaults, "strategy": strategy, "batch_size": batch_size, "rounds": rounds, "rows": rows,
                "peak": peak, "environment": _here(environment),
                "contention": {"busy": any(row["busy"] for row in rows), "other_share": None}}
        return cls(data)


class ProfileRecord(Record):
    """``bench profile``: the framework's own profiler over its reference loop."""

    KIND = "profile"

    @staticmethod
    def check(data: dict) -> None:
        _spec(data.get("spec"))
        if "error" in data:
            text(data["error"], "error")
            return
        for name, ms in obj(data.get("ops_ms"), "ops_ms").items():
            number(ms, f"ops_ms[{str(name)[:40]!r}]", 0)
        number(data.get("wall_ms"), "wall_ms", 0)

    @classmethod
    def new(cls, spec: dict, settings: dict, result: dict):
        environment = result.pop("environment", None)
        data = {"schema_version": SCHEMA_VERSION, "kind": cls.KIND, "created": utc_now(), "spec": spec,
                "settings": settings, **result, "environment": _here(environment),
                "contention": Contention.of(result.get("contention")).to_json()}
        return cls(data)


class PeakRecord(Record):
    """``bench peak``: the fastest kernels measured on a machine per precision, and its theoretical peak."""

    KIND = "peak"

    @staticmethod
    def check(data: dict) -> None:
        for name, kernel in obj(data.get("kernels"), "kernels").items():
            kernel = obj(kernel, f"kernels[{str(name)[:40]!r}]")
            text(kernel.get("precision"), f"kernels[{name!r}].precision")
            number(kernel.get("gflops"), f"kernels[{name!r}].gflops", 0)
        obj(data.get("theoretical", {}), "theoretical")
        if data.get("measured_at") is not None:
            text(data["measured_at"], "measured_at")

    @property
    def commit(self) -> Provenance:
        return Provenance.of({"git": self.data.get("git")})

    @property
    def machine(self) -> Machine:
        key = self.data.get("key") if isinstance(self.data.get("key"), dict) else {}
        return Machine.of({"cpu": key.get("cpu"), "cpu_flags": key.get("flags"),
                           "cpu_count": (self.data.get("theoretical") or {}).get("cores")})


KINDS: dict[str, type[Record]] = {k.KIND: k for k in (RunRecord, StudyRecord, OverheadRecord, TuneRecord,
                                                      ProfileRecord, PeakRecord)}
