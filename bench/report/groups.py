"""Which records belong together: one row is one configuration (every field but the seed).

Records group by their ``group_hash`` (the config hash without the seed), the machine
they ran on (``machine_key``: CPU model, its ISA flags, cores, GPUs) and, for a fine-tuned
arm, the sha256 of the weights it started from (``start_of``): two runs that differ in
anything else (lr, optimizer, epochs, BatchNorm mode, stem, eval shots, scratch
initialiser, ...), that ran on two machines or that started from two pretrained files
never pass as two seeds. Groups that would look alike are told apart by what differs,
machine and starting file included (``[machine=...]``, ``[start=...]``). A seed run twice is
counted once (the latest run) and reported as a duplicate. Fine-tuned and scratch arms
pair on everything that defines the task and budget, and on the machine, seed by seed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from bench.plan.config import ADDED_LATER, RunConfig, backend_label
from bench.records.kinds import Machine, RunRecord
from bench.plan.recipe import recipe_label

# Fields that name a row in tables; the others are shown only where two rows differ in them.
# "protocol" is derived: "tuned" for a tuning study's final runs, "recipe" otherwise; "recipe" names
# the recipe's elements (bench.plan.recipe.recipe_label: "constant" where all are at their defaults).
SHOWN = ("experiment", "model", "backend", "arm", "strategy", "scratch_init", "shots", "protocol", "recipe")
# What may differ between a fine-tuned arm and the scratch arm it is compared with.
ARM_FIELDS = ("arm", "strategy", "lr", "optimizer", "momentum", "weight_decay", "bn_stats", "pretrained",
              "pretrain_backend", "scratch_init", "seed", "notes")
# ... and, where both were tuned, what their studies chose for them (the budget is the study's).
TUNED_FIELDS = ("epochs", "study")


def group_hash(rec: dict) -> str:
    return rec.get("group_hash") or RunConfig.from_json(rec["config"]).group_hash()


def protocol(config: dict) -> str:
    return "tuned" if config.get("study") else "recipe"


def one_release(records: list[dict], backend: str) -> list[dict]:
    """The run records of ``backend`` as ``--backend`` names it (``torch@2.12.1``: that release, run in its
    own environment; ``torch``: the runs of the shared environment), each named as if no release had
    been given, so that two releases' runs of one configuration match (``bench gate``/``compare
    --release A B``: what changed with the framework's release, everything else the same)."""
    from bench.execute.environments import BackendRef
    ref = BackendRef.parse(backend)
    out = []
    for rec in records:
        config = rec.get("config") or {}
        if config.get("backend") == ref.name and config.get("framework_version") == ref.version:
            renamed = {k: v for k, v in rec.items() if k != "group_hash"} | {
                "config": {k: v for k, v in config.items() if k != "framework_version"}}
            out.append(renamed)
    return out


def pair_key(config: dict) -> tuple:
    """Task and budget: equal for a fine-tuned arm and its scratch baseline. Under the tuned
    protocol the budget is the study's (same trials, same space), not the epochs it chose."""
    skip = ARM_FIELDS + (TUNED_FIELDS if protocol(config) == "tuned" else ())
    return (("protocol", protocol(config)),) + tuple(sorted(
        (k, str(v)) for k, v in config.items() if k not in skip and ADDED_LATER.get(k, object()) != v))


def machine_key(rec: dict) -> str:
    """What identifies the machine a record ran on (``bench.records.kinds.Machine.key``)."""
    return Machine.of(rec.get("environment")).key


def start_of(rec: dict) -> str | None:
    """The sha256 of the weights a fine-tuned arm started from (``RunRecord.start``)."""
    return RunRecord(rec).start


@dataclass
class Group:
    """The runs of one configuration on one machine from one starting file, one per seed."""

    config: dict                          # the config of its first run, seed removed
    runs: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)   # later runs of a seed already counted
    variant: str = ""                     # fields in which it differs from groups shown alike
    machine: str = ""                     # machine_key of its runs
    start: str | None = None              # start_of its runs

    @property
    def machine_label(self) -> str:
        """The machine in words (``machine_of``), from its first run."""
        return machine_of(self.runs[0]) if self.runs else "?"

    @property
    def pairing(self) -> tuple:
        """What a fine-tuned group and its scratch baseline share: task, budget and machine."""
        return pair_key(self.config) + (("machine", self.machine),)

    @property
    def seeds(self) -> list[int]:
        return [r["config"]["seed"] for r in self.runs]

    def by_seed(self) -> dict[int, dict]:
        return {r["config"]["seed"]: r for r in self.runs}

    def finals(self) -> list[float]:
        return [r["accuracy"]["final"] for r in self.runs]

    def label(self, key: str) -> object:
        if key == "recipe":
            return recipe_label(self.config)
        if key == "backend":  # torch, or torch@2.14.1: one release, in its own environment
            return backend_label(self.config.get("backend"), self.config.get("framework_version"))
        return protocol(self.config) if key == "protocol" else self.config.get(key)


def row_label(group: Group) -> str:
    """How a table names a group's arm: its strategy, the scratch init, "tuned", and what tells it
    apart from groups that would otherwise look alike."""
    strategy = group.label("strategy")
    tuned = ", tuned" if group.label("protocol") == "tuned" else ""
    if group.label("arm") == "scratch":
        strategy = f"scratch ({group.label('scratch_init') or 'native'} init{tuned})"
    elif tuned:
        strategy += " (tuned)"
    recipe = group.label("recipe")
    strategy += f" [recipe: {recipe}]" if recipe != "constant" else ""
    return strategy + (f" [{group.variant}]" if group.variant else "")


def _sort_key(rec: dict) -> str:
    return rec.get("finished") or rec.get("created") or ""


def group_records(records: list[dict], arms=("finetune", "scratch")) -> list[Group]:
    """Ok records of ``arms`` grouped by configuration; duplicate seeds set aside (latest kept).
    A tuning study's trials are not results (they were never scored on test): they are left out."""
    buckets: dict[tuple, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        if rec.get("status") == "ok" and rec["config"]["arm"] in arms and rec["config"].get("trial") is None:
            buckets[(group_hash(rec), machine_key(rec), start_of(rec))][rec["config"]["seed"]].append(rec)
    groups = []
    for (_, machine, start), by_seed in buckets.items():
        runs, dups = [], []
        for seed in sorted(by_seed):
            ordered = sorted(by_seed[seed], key=_sort_key)
            runs.append(ordered[-1])
            dups.extend(ordered[:-1])
        config = {k: v for k, v in runs[0]["config"].items() if k not in ("seed", "notes")}
        groups.append(Group(config, runs, dups, machine=machine, start=start))
    _name_variants(groups)
    return sorted(groups, key=lambda g: (tuple(str(g.label(k)) for k in SHOWN), g.variant))


def _name_variants(groups: list[Group]) -> None:
    """Groups that look alike in the SHOWN columns get the fields that tell them apart."""
    alike: dict[tuple, list[Group]] = defaultdict(list)
    for g in groups:
        alike[tuple(str(g.label(k)) for k in SHOWN)].append(g)
    for same in alike.values():
        if len(same) < 2:
            continue
        keys = sorted({k for g in same for k in g.config})
        differ = [k for k in keys if len({str(g.config.get(k)) for g in same}) > 1]
        machines, starts = {g.machine for g in same}, {g.start for g in same}  # once per set: linear in groups
        words = len({g.machine_label for g in same}) == len(machines)
        for g in same:
            g.variant = ", ".join([f"{k}={g.config.get(k)}" for k in differ]
                                  + _machine_and_start(g, len(machines) > 1, words, len(starts) > 1))


def _machine_and_start(group: Group, machines: bool, words: bool, starts: bool) -> list[str]:
    """``machine=...`` and ``start=...`` where groups shown alike ran on two machines (``machines``) or
    started from two files (``starts``): the machine in words, and where two machines share those words
    (not ``words``), its ISA flags too."""
    out = []
    if machines:
        label = group.machine_label if words else \
            f"{group.machine_label} [{' '.join(Machine.of(group.runs[0].get('environment')).isa)}]"
        out.append(f"machine={label}")
    if starts:
        out.append(f"start={(group.start or 'unrecorded')[:12]}")
    return out


def scratch_baselines(groups: list[Group]) -> dict[tuple, tuple[Group, int]]:
    """(pairing, scratch init) -> the one scratch group fine-tuned groups of that task compare with, and
    how many scratch variants of it there were. Where a task was trained from scratch under several
    settings (lr, optimizer, ...: the arm's own fields), the baseline is, in order: one a tuning study
    chose (under the tuned protocol), the one with the most seeds, then the earliest config hash. None
    of these looks at a test score, so no variant is picked for beating the fine-tuned arm."""
    by_task: dict[tuple, list[Group]] = defaultdict(list)
    for g in groups:
        if g.label("arm") == "scratch":
            by_task[(g.pairing, g.label("scratch_init") or "native")].append(g)
    return {key: (min(same, key=lambda g: (not g.config.get("study"), -len(g.runs), group_hash(g.runs[0]))),
                  len(same)) for key, same in by_task.items()}


def pair_groups(groups: list[Group]) -> list[tuple[Group, Group]]:
    """(fine-tuned group, scratch group) with the same task and budget, one pair per scratch init:
    linear in the groups, whatever the number of scratch variants (``scratch_baselines``)."""
    baselines: dict[tuple, list[Group]] = defaultdict(list)
    for (pairing, _), (g, _) in sorted(scratch_baselines(groups).items(), key=lambda kv: kv[0][1]):
        baselines[pairing].append(g)
    return [(g, s) for g in groups if g.label("arm") == "finetune" for s in baselines.get(g.pairing, [])]


def paired_finals(ft: Group, sc: Group) -> tuple[list[dict], list[dict]]:
    """Runs of the two groups on the seeds both have, in seed order."""
    a, b = ft.by_seed(), sc.by_seed()
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def config_name(rec: dict) -> str:
    """A run configuration as one line: experiment, model, backend, row label, its group hash."""
    c = rec["config"]
    return f"{c['experiment']} {c['model']} {c['backend']} {row_label(Group(c))} [{group_hash(rec)[:8]}]"


def busy(rec: dict) -> bool:
    """Whether other processes used more than the threshold of the CPU while ``rec`` was timed."""
    return RunRecord(rec).contention.busy


def timed_runs(group: Group) -> list[dict]:
    """The runs whose times count: neither packed nor timed while other processes used the CPU."""
    return [r for r in group.runs if not (r.get("timing") or {}).get("packed") and not busy(r)]


def clean_step_ms(rec: dict) -> float | None:
    """A finished run's steady-state median step, or None when it has no clean one (a pretrain
    step, a packed run, or one timed while other processes used the CPU)."""
    timing = rec.get("timing") or {}
    steady = timing.get("steady") or {}
    if rec.get("status") != "ok" or (rec.get("config") or {}).get("arm") == "pretrain" or timing.get("packed") \
            or busy(rec) or not steady.get("median_ms"):
        return None
    return float(steady["median_ms"])


def machine_of(rec: dict, versions: bool = False) -> str:
    """The machine a record was measured on in words (``Machine.label``: CPU, widest ISA, cores, GPUs);
    with ``versions``, its framework versions too."""
    env = rec.get("environment") or {}
    return Machine.of(env).label + (" " + str(sorted((env.get("frameworks") or {}).items())) if versions else "")
