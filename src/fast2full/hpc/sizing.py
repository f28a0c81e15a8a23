"""Paper-scale sizing: how many jobs and SLURM submissions, CPU hours and memory a config needs.

Jobs come from a Snakemake dry run (``snakemake -n --forceall --profile slurm --configfile X``),
parsed here.  Costs come from the benchmark TSVs (``results/benchmarks/**.tsv``) of a run of the
small default config: per rule (per process for the event-level stages) a cost model
``cpu_time = a + b * units`` is fitted to the measured jobs, where ``units`` is the work a job does
(events in its chunk, events in its domain, trained event-epochs; see :func:`work_units`), and is
evaluated on every job of the target config.  With one distinct ``units`` value the model is
proportional (a = 0).  Peak memory is the largest measured ``max_rss``; memory of the whole-domain
stages (tensorize, training) grows with the data, which the table marks.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fast2full.common import Fast2FullError, InputError
from fast2full.plan import ARCHS

if TYPE_CHECKING:
    from fast2full.train.settings import TrainSettings

#: rules whose cost grows with the events of their chunk (process wildcard)
CHUNK_RULES = ("pythia_generate", "hepmc_export", "delphes_simulate", "delphes_skim")
#: rules that read a whole domain (or all domains) of one task
DOMAIN_RULES = ("tensorize_source", "tensorize_target", "plot_features")
FULLSIM = "atlas_fullsim"
BENCH_COLUMNS = ("s", "max_rss", "cpu_time")

_DATE = r"\[[^\]]+\]"


@dataclass
class DryJob:
    """One job of a dry run."""

    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    benchmark: str | None = None
    group: str | None = None  # the group job (one SLURM submission) it belongs to, if any
    submission: int = -1  # index of its submission; -1: not submitted (local rule or no action)
    local: bool = False
    has_action: bool = True


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(", "):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_dry_run(text: str) -> list[DryJob]:
    """Jobs of a ``snakemake -n -p`` listing, with the submission each one goes into.

    A ``Group job NAME`` header starts one submission holding the indented jobs below it; a rule at
    column 0 is a submission of its own; ``localrule`` jobs and jobs without an action (``rule all``)
    are not submitted.
    """
    jobs: list[DryJob] = []
    group: str | None = None
    n_sub = -1
    current: DryJob | None = None
    for line in text.splitlines():
        m = re.match(rf"^{_DATE} Group job (\S+)", line)
        if m:
            group = m.group(1)
            n_sub += 1
            current = None
            continue
        m = re.match(r"^(\s*)(local)?rule (\w+):\s*$", line)
        if m:
            indented = bool(m.group(1))
            if not indented:
                group = None
            local = bool(m.group(2))
            if not indented and not local:
                n_sub += 1
            current = DryJob(
                rule=m.group(3), group=group if indented else None, submission=-1 if local else n_sub, local=local
            )
            jobs.append(current)
            continue
        if current is None:
            continue
        m = re.match(r"^\s+(wildcards|resources|benchmark|threads): (.*)$", line)
        if m:
            key, value = m.groups()
            if key == "wildcards":
                current.wildcards = _kv(value)
            elif key == "resources":
                current.resources = _kv(value)
            elif key == "benchmark":
                current.benchmark = value.strip()
            else:
                current.threads = int(value)
        elif line.startswith("Shell command: None"):
            current.has_action = False
        elif line.startswith("Job stats:"):
            current = None
    for job in jobs:  # a rule without action is never submitted
        if not job.has_action and job.group is None:
            job.submission = -1
    return jobs


def dry_run(root: str | Path, configfile: str | Path, profile: str | None = "slurm", timeout_s: float = 600.0) -> str:
    """The dry-run listing of every job (``--forceall``) of ``configfile``, run at ``root``."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "-p", "--configfile", str(configfile)]
    if profile:
        cmd[3:3] = ["--profile", profile]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout_s, check=False)
    if res.returncode != 0:
        raise Fast2FullError(f"dry run for {configfile} failed:\n{(res.stdout + res.stderr)[-3000:]}")
    return res.stdout + res.stderr


def read_benchmark(path: str | Path) -> dict[str, float]:
    """The first data row of a Snakemake benchmark TSV (``s``, ``max_rss`` MB, ``cpu_time`` s, ...)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise InputError(path, f"cannot read benchmark: {exc}") from exc
    if not rows or any(c not in rows[0] for c in BENCH_COLUMNS):
        raise InputError(path, f"not a Snakemake benchmark TSV (need columns {', '.join(BENCH_COLUMNS)})")
    out: dict[str, float] = {}
    for key, value in rows[0].items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue  # h:m:s and 'NA'
    return out


def physics_events(config: dict[str, Any]) -> int:
    """Generated events over all non-pile-up processes."""
    return sum(
        int(p["events_per_chunk"]) * int(p["chunks"]) for p in config["processes"].values() if p.get("role") != "pileup"
    )


#: training rules; the target-training rules share one cost model (the same engine, other grouping)
TRAIN_TARGET_RULES = ("train_target", "train_mode", "train_point", "train_zeroshot")
TRAIN_RULES = ("train_pretrain",) + TRAIN_TARGET_RULES
#: cost of one DANN step relative to another mode's: three batches (target, source, unlabelled target)
DANN_STEP_FACTOR = 3.0


def job_points(job: DryJob, config: dict[str, Any]) -> list[tuple[str, str]]:
    """The (mode, size) training points one training job runs."""
    tr, wc = config.get("training", {}), job.wildcards
    modes = [m for m in tr.get("modes", []) if m != "zeroshot"]
    sizes = [str(s) for s in tr.get("sizes", [])]
    if job.rule == "train_pretrain":
        return [("pretrain", "all")]
    if job.rule == "train_zeroshot":
        return [("zeroshot", "0")]
    if job.rule == "train_mode":
        return [(wc.get("mode", modes[0] if modes else "scratch"), s) for s in sizes]
    if job.rule == "train_point" or ("mode" in wc and "size" in wc):
        return [(wc.get("mode", "scratch"), wc["size"])]
    return [("zeroshot", "0")] + [(m, s) for m in modes for s in sizes]


def _metrics_units(path: Path, batch: int, dann: bool) -> float | None:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    n = int(m.get("n_train") or 0)
    return float(m.get("steps_total", 0)) * min(batch, n) * (DANN_STEP_FACTOR if dann else 1.0) if n else 0.0


def train_settings(config: dict[str, Any]) -> TrainSettings:
    """The config's ``training:`` section as the training stage's :class:`TrainSettings` (without its
    provenance, which only the outputs need)."""
    from fast2full.train.settings import TrainSettings

    tr = config.get("training", {})
    return TrainSettings(**{k: tr[k] for k in TrainSettings.KEYS if k in tr}, provenance={})


@dataclass
class StepModel:
    """Optimiser steps of a member at a training size, from a measured run (:func:`fit_step_model`).

    Early stopping ends a member ``patience`` validation checks after its best one, never before
    ``min_steps`` and at most at ``max_steps`` (fast2full.models.ensemble).  The steps to the best check
    are fitted per mode as a power law of the training rows, ``best_step = a * n**b`` (b: least squares
    in log-log over every member of the measured run, clipped to [0, 1]; a: so that the fitted steps sum
    to the measured ones); the check interval and the
    patience are the target config's own (:func:`fast2full.train.settings.check_interval`, which grows
    with the validation subset).  ``pools``: the measured full train split per (task, target, source)
    and the events that fed it, to scale ``all`` to the target config's events.
    """

    coef: dict[str, tuple[float, float, int]]  # mode -> (a, b, members fitted)
    pools: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)  # (task, domain) -> (rows, events)

    def best_step(self, mode: str, n: float) -> float:
        a, b, _ = self.coef.get(mode) or self.coef.get("scratch") or next(iter(self.coef.values()))
        return a * max(n, 1.0) ** b

    def steps(self, mode: str, n: float, n_val: float, settings: TrainSettings) -> float:
        """Expected steps of a member at ``n`` training rows and ``n_val`` validation rows: the
        training stage's own budget rule (:func:`fast2full.train.settings.budget_for`)."""
        from fast2full.train.settings import budget_for

        b = budget_for(mode, int(n_val), settings)
        return float(min(b.max_steps, max(b.min_steps, self.best_step(mode, n) + b.patience * b.val_every)))


def _task_events(config: dict[str, Any], task: str) -> float:
    """Events of the processes that feed ``task`` (:func:`fast2full.tensorize.excluded_processes` left out)."""
    from fast2full.tensorize import excluded_processes

    skip = excluded_processes(config, task)
    return float(
        sum(
            int(p.get("events_per_chunk", 0)) * int(p.get("chunks", 1))
            for name, p in config.get("processes", {}).items()
            if name not in skip
        )
    )


def fit_step_model(bench_root: str | Path, config: dict[str, Any]) -> StepModel | None:
    """The :class:`StepModel` of the run under ``bench_root`` (its ``results/train/**/metrics.json``
    grid entries; ``config``: that run's config); None if it has no training results."""
    import numpy as np

    xs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    pools: dict[tuple[str, str], tuple[int, float]] = {}
    for path in sorted((Path(bench_root) / "results" / "train").glob("*/*/*/*/n*/seed*/metrics.json")):
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        n = int(m.get("n_train") or 0)
        if n <= 0:
            continue
        for g in m.get("grid") or [m]:
            if (g.get("best_step") or 0) > 0:
                xs[m["mode"]].append((float(n), float(g["best_step"])))
        if m.get("size") == "all" and m.get("mode") in ("scratch", "pretrain"):
            pools[(m["task"], m["target"])] = (n, _task_events(config, m["task"]))
    coef = {}
    for mode, pts in xs.items():
        x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        b = float(np.clip(np.polyfit(x, y, 1)[0], 0.0, 1.0)) if len(np.unique(x)) >= 2 else 0.0
        # the exponent from the log-log fit, the scale from the sums (unbiased for the total steps: the
        # geometric-mean scale of the log fit gave 0.74x the medium run's own member-samples)
        coef[mode] = (float(np.exp(y).sum() / np.exp(b * x).sum()), b, len(pts))
    return StepModel(coef=coef, pools=pools) if coef else None


def pool_rows(model: StepModel, config: dict[str, Any], task: str, domain: str) -> float:
    """Rows of the full train split of (task, domain) under ``config``: the measured pool scaled by the
    events that feed the task; where that does not scale (PHYSLITE, or not measured), the largest
    numeric training size (a lower bound)."""
    sizes = [int(s) for s in config.get("training", {}).get("sizes", []) if str(s).isdigit()]
    floor = float(max(sizes, default=1))
    got = model.pools.get((task, domain))
    if got is None or domain == FULLSIM or got[1] <= 0:
        return floor
    return max(floor, got[0] * _task_events(config, task) / got[1])


def train_units(
    job: DryJob,
    config: dict[str, Any],
    steps: str = "max",
    bench_root: str | Path | None = None,
    step_model: StepModel | None = None,
) -> float:
    """Member-samples a training job trains (members x steps x batch rows, DANN steps x3).

    With ``bench_root`` the steps actually taken are read from the job's ``metrics.json`` files (a
    measured run); otherwise every member is assumed to take ``min_steps`` (``steps="min"``, a lower
    bound), ``max_steps`` (``"max"``, the cap: an upper bound) or the steps ``step_model`` expects at
    the point's training size (``"exp"``).
    """
    tr, wc = config.get("training", {}), job.wildcards
    seeds, lrs = tr.get("seeds", [0]), tr.get("learning_rates", [1e-3])
    settings: TrainSettings | None = None
    batch = int(tr.get("batch_size", 64))
    source = config.get("domains", {}).get("source", "atlas_like")
    total = 0.0
    for mode, size in job_points(job, config):
        if mode == "zeroshot":
            continue
        dann = mode == "dann"
        if bench_root is not None:
            # pretraining: its {source} wildcard (the source or its reduced-input copy, fast2full.plan)
            target = wc.get("source", source) if mode == "pretrain" else wc.get("target", "")
            d = (
                Path(bench_root)
                / "results"
                / "train"
                / wc.get("task", "")
                / wc.get("arch", "")
                / target
                / mode
                / f"n{size}"
            )
            got = [_metrics_units(d / f"seed{s}" / "metrics.json", batch, dann) for s in seeds]
            if all(g is not None for g in got):
                total += sum(got)
                continue
        pre = mode == "pretrain"
        key = ("pretrain_" if pre else "") + ("min_steps" if steps == "min" else "max_steps")
        n_steps = float(tr.get(key, tr.get(key.replace("pretrain_", ""), 1)))
        if steps == "exp" and step_model is not None:
            task = wc.get("task", "")
            domain = wc.get("source", source) if pre else wc.get("target", "")
            pool = pool_rows(step_model, config, task, domain)
            rows = pool if size == "all" else min(pool, float(size))
            fr = config.get("tensors", {}).get("split_fractions", {"train": 0.6, "val": 0.2})
            n_val = int(pool * float(fr.get("val", 0.2)) / max(float(fr.get("train", 0.6)), 1e-9))
            from fast2full.train.settings import val_subset_size

            sub = val_subset_size(None if pre else int(rows), n_val)
            settings = settings or train_settings(config)
            n_steps = step_model.steps(mode, rows, sub, settings)
        n = batch if size == "all" else min(batch, int(size))
        total += len(seeds) * len(lrs) * n_steps * n * (DANN_STEP_FACTOR if dann else 1.0)
    return total


def work_units(
    job: DryJob,
    config: dict[str, Any],
    bench_root: str | Path | None = None,
    steps: str = "max",
    step_model: StepModel | None = None,
) -> tuple[float, str]:
    """(work done by ``job`` under ``config``, what the unit is) for the cost model."""
    wc = job.wildcards
    if job.rule in CHUNK_RULES and wc.get("process") in config["processes"]:
        return float(config["processes"][wc["process"]]["events_per_chunk"]), "events/chunk"
    if job.rule in DOMAIN_RULES:
        if wc.get("domain") == FULLSIM:
            return 1.0, "job"
        return float(physics_events(config)), "events"
    if job.rule in TRAIN_RULES:
        return train_units(job, config, steps=steps, bench_root=bench_root, step_model=step_model), "member-samples"
    return 1.0, "job"


def model_key(job: DryJob) -> tuple[str, str]:
    """Cost models are per rule, per process for the chunk stages, apart for the PHYSLITE domain, and per
    architecture for training (all target-training rules share one model: the same engine)."""
    if job.rule in TRAIN_TARGET_RULES:
        return "train_target", job.wildcards.get("arch", "")
    if job.rule == "train_pretrain":
        return job.rule, job.wildcards.get("arch", "")
    if job.rule in CHUNK_RULES:
        return job.rule, job.wildcards.get("process", "")
    if job.wildcards.get("domain") == FULLSIM:
        return job.rule, FULLSIM
    return job.rule, ""


@dataclass
class CostModel:
    """cpu_time = intercept + slope * units (seconds), fitted on ``n`` measured jobs."""

    intercept: float
    slope: float
    n: int
    unit: str
    max_rss_mb: float
    max_wall_s: float

    def cpu_s(self, units: float) -> float:
        return self.intercept + self.slope * units


def fit_models(jobs: list[DryJob], config: dict[str, Any], bench_root: str | Path) -> dict[tuple[str, str], CostModel]:
    """Cost models from the benchmark TSVs of ``jobs`` (a dry run of the run that wrote them)."""
    import numpy as np

    samples: dict[tuple[str, str], list[tuple[float, dict[str, float], str]]] = defaultdict(list)
    for job in jobs:
        if not job.benchmark:
            continue
        path = Path(bench_root) / job.benchmark
        if not path.is_file():
            continue
        units, unit = work_units(job, config, bench_root=bench_root)
        samples[model_key(job)].append((units, read_benchmark(path), unit))
    models: dict[tuple[str, str], CostModel] = {}
    for key, rows in samples.items():
        x = np.array([r[0] for r in rows])
        y = np.array([r[1].get("cpu_time", r[1]["s"]) for r in rows])
        if len(np.unique(x)) >= 2:
            slope, intercept = np.polyfit(x, y, 1)
            if slope < 0 or intercept < 0:  # noise: fall back to proportional
                slope, intercept = float(y.sum() / x.sum()), 0.0
        else:
            slope, intercept = float(y.mean() / x.mean()), 0.0
        models[key] = CostModel(
            intercept=float(intercept),
            slope=float(slope),
            n=len(rows),
            unit=rows[0][2],
            max_rss_mb=max(r[1].get("max_rss", math.nan) for r in rows),
            max_wall_s=max(r[1]["s"] for r in rows),
        )
    # rule-level fallbacks (a process of the target config that the default run lacks)
    by_rule: dict[str, list[CostModel]] = defaultdict(list)
    for (rule, proc), m in list(models.items()):
        if proc:
            by_rule[rule].append(m)
    for rule, ms in by_rule.items():
        if (rule, "") not in models:
            models[(rule, "")] = max(ms, key=lambda m: m.slope)  # the costliest process: conservative
    return models


@dataclass
class RuleEstimate:
    rule: str
    jobs: int
    submissions: int
    local: bool
    threads: int
    mem_mb: float
    runtime_min: float
    gpu: int
    measured_jobs: int
    peak_rss_mb: float
    cpu_h: float
    max_job_cpu_min: float
    unit: str
    scales_with_data: bool
    cpu_h_min: float = math.nan  # training: every member at min_steps (cpu_h: at max_steps, the cap)
    job_cpu_s: list[float] = field(default_factory=list)  # per job (upper estimate), for the wall time
    job_cpu_s_min: list[float] = field(default_factory=list)
    cpu_h_exp: float = math.nan  # training: every member at the steps the step model expects
    job_cpu_s_exp: list[float] = field(default_factory=list)


def _num(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "<TBD>") else math.nan
    except ValueError:
        return math.nan


def estimate(
    target_jobs: list[DryJob],
    target_config: dict[str, Any],
    models: dict[tuple[str, str], CostModel],
    train_scale: dict[str, float] | None = None,
    step_model: StepModel | None = None,
) -> list[RuleEstimate]:
    """Per rule of the target run: jobs, submissions, requests, measured peak memory, CPU hours.

    Training jobs are costed twice: every member at ``min_steps`` (``cpu_h_min``, a lower bound) and
    at ``max_steps`` (``cpu_h``, the cap: an upper bound).  ``train_scale``: the cost per member-sample
    of the target config's model size and input shape over the measured one's, per ``"arch/task"`` or
    per ``"arch"`` (:func:`model_size_scale`, from bench_train.py).
    ``step_model``: also every member at the steps it expects (``cpu_h_exp``, :class:`StepModel`).
    """
    by_rule: dict[str, list[DryJob]] = defaultdict(list)
    for job in target_jobs:
        if job.has_action:
            by_rule[job.rule].append(job)
    out = []
    for rule, jobs in by_rule.items():
        subs = {j.submission for j in jobs if j.submission >= 0}
        cpu, cpu_min, cpu_exp = [], [], []
        model = None
        for job in jobs:
            model = models.get(model_key(job)) or models.get((model_key(job)[0], ""))
            if model is not None:
                scale = _train_scale(train_scale, job) if rule in TRAIN_RULES else 1.0
                hi = work_units(job, target_config, steps="max")[0]
                lo = work_units(job, target_config, steps="min")[0]
                cpu.append(model.intercept + model.slope * scale * hi)
                cpu_min.append(model.intercept + model.slope * scale * lo)
                if step_model is not None:
                    exp = work_units(job, target_config, steps="exp", step_model=step_model)[0]
                    cpu_exp.append(model.intercept + model.slope * scale * exp)
        out.append(
            RuleEstimate(
                rule=rule,
                jobs=len(jobs),
                submissions=len(subs),
                local=all(j.local for j in jobs),
                threads=max(j.threads for j in jobs),
                mem_mb=max(_num(j.resources.get("mem_mb")) for j in jobs),
                runtime_min=max(_num(j.resources.get("runtime")) for j in jobs),
                gpu=int(max(_num(j.resources.get("gpu")) if j.resources.get("gpu") else 0 for j in jobs)),
                measured_jobs=model.n if model and cpu else 0,
                peak_rss_mb=model.max_rss_mb if model and cpu else math.nan,
                cpu_h=sum(cpu) / 3600 if cpu else math.nan,
                max_job_cpu_min=max(cpu) / 60 if cpu else math.nan,
                unit=model.unit if model and cpu else "",
                scales_with_data=rule in DOMAIN_RULES or rule.startswith("train_"),
                cpu_h_min=sum(cpu_min) / 3600 if cpu_min else math.nan,
                job_cpu_s=cpu,
                job_cpu_s_min=cpu_min,
                cpu_h_exp=sum(cpu_exp) / 3600 if cpu_exp else math.nan,
                job_cpu_s_exp=cpu_exp,
            )
        )
    return out


def _train_scale(train_scale: dict[str, float] | None, job: DryJob) -> float:
    """The cost factor of a training job: its ``arch/task`` entry, else its ``arch`` one, else 1."""
    arch, task = job.wildcards.get("arch", ""), job.wildcards.get("task", "")
    scale = train_scale or {}
    return scale.get(f"{arch}/{task}", scale.get(arch, 1.0))


#: the ensemble size bench_train.py's sizing rows use (the medium and paper configs' 5 seeds x 2 rates)
BENCH_MEMBERS = 10


def input_shape(config: dict[str, Any], task: str) -> tuple[int, int]:
    """(padded slots, features) of ``task``'s tensors under ``config`` (fast-simulation domains)."""
    from fast2full import features

    task_cfg = config.get("tensors", {}).get("tasks", {}).get(task, {})
    return features.input_slots(task, task_cfg), len(features.names(task))


def model_size_scale(
    bench: dict[str, Any],
    default: dict[str, Any],
    target: dict[str, Any],
    measured_allocator: str = "tuned",
) -> tuple[dict[str, float], float | None, str]:
    """The cost per member-sample of ``target``'s training over the measured ``default`` run's, from
    bench_train.py's output ``bench``: (factors, GPU speed-up, a sentence saying what was used).

    With ``by_shape`` rows (``bench_train.py --shapes-from``: the engine at each config's model size and
    each task's own slots and features) the factor is per ``"arch/task"``: the rate at the default's
    model size and shape over the rate at the target's.  Otherwise, per ``"arch"``, the ratio of the
    synthetic fixed-shape ``throughput`` rows at the two model sizes (which ignores the slots: a
    GNN's cost grows with them).  No factor: the measured model size's cost (a note says so).

    ``measured_allocator``: how the measured run's training processes left glibc's allocator
    (``tuned``: :func:`fast2full.train.keep_freed_memory`, what the training stage does; ``default``:
    a run made before it); the target is costed with ``tuned``.  Shape rows say how they were measured
    (``allocator``); the A/B rows of ``bench_train.py --allocator ab`` give both."""
    src = default.get("training", {}).get("model_size", "small")
    dst = target.get("training", {}).get("model_size", "small")
    key = f"ensemble{BENCH_MEMBERS}_member_samples_per_s"
    archs = ARCHS
    scale: dict[str, float] = {}
    shape_rate: dict[tuple, float] = {}
    for r in bench.get("by_shape", []):
        shape = (r["device"], r["arch"], r["model_size"], r["task"], int(r["max_objects"]), int(r["n_features"]))
        if "tuned_over_default" in r:  # an A/B row: both allocators
            for alloc in ("default", "tuned"):
                shape_rate[(*shape, alloc)] = r[f"{alloc}_member_samples_per_cpu_s"]
        elif r.get("member_samples_per_s"):
            shape_rate.setdefault((*shape, r.get("allocator", "tuned")), r["member_samples_per_s"])
    tasks = sorted(set(default.get("training", {}).get("tasks", [])) | set(target.get("training", {}).get("tasks", [])))
    per_task = []
    for arch in archs:
        for task in tasks:
            a = shape_rate.get(("cpu", arch, src, task, *input_shape(default, task), measured_allocator))
            b = shape_rate.get(("cpu", arch, dst, task, *input_shape(target, task), "tuned"))
            if a and b:
                scale[f"{arch}/{task}"] = a / b
                per_task.append(f"{arch}/{task} {a / b:.2g}x")
    rate = {(r["device"], r["arch"], r["model_size"]): r.get(key) for r in bench.get("throughput", [])}
    fixed = []
    for arch in archs:
        a, b = rate.get(("cpu", arch, src)), rate.get(("cpu", arch, dst))
        if a and b:
            scale[arch] = a / b
            fixed.append(f"{arch} {a / b:.1f}x")
    gpu = [
        rate[("cuda", a, dst)] / rate[("cpu", a, dst)]
        for a in archs
        if rate.get(("cuda", a, dst)) and rate.get(("cpu", a, dst))
    ]
    if per_task:
        note = (
            f"Cost per member-sample of {dst} models at the target config's input shapes over {src} at the "
            f"measured run's (bench_train.py --shapes-from, {BENCH_MEMBERS} members, 1 CPU thread; measured "
            f"run's allocator: {measured_allocator}, target's: tuned): " + ", ".join(per_task) + "."
        )
        missing = [f"{a}/{t}" for a in archs for t in tasks if f"{a}/{t}" not in scale]
        if missing:
            note += f" No shape rows for {', '.join(missing)}: " + (
                f"the fixed-shape factor ({', '.join(fixed)})." if fixed else f"the cost of {src} models."
            )
    elif fixed:
        note = (
            f"Cost per member-sample of {dst} over {src} models (bench_train.py, {BENCH_MEMBERS} members, 1 CPU "
            f"thread, synthetic {bench.get('max_objects', '?')}-slot inputs, not the tasks' own shapes): "
            + ", ".join(fixed)
            + "."
        )
    else:
        note = f"bench_train.py output lacks {dst} or {src} rows: model-size factor not applied (cost of {src} models)."
    return scale, (min(gpu) if gpu else None), note


#: stages in dependency order for the wall-time estimate (a stage starts when the previous one ends)
STAGES = (
    ("opendata_manifest", "pythia_generate", "hepmc_export"),
    ("opendata_fetch", "delphes_simulate"),
    ("delphes_skim", "physlite_skim"),
    ("tensorize_source", "tensorize_target"),
    ("train_pretrain", "plot_features"),
    TRAIN_TARGET_RULES + ("publish_model",),
    ("aggregate_results",),
)


def makespan_s(durations: list[float], cores: int) -> float:
    """Longest-processing-time-first schedule of one-core jobs on ``cores`` cores (seconds)."""
    import heapq

    free = [0.0] * max(cores, 1)
    for d in sorted(durations, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free) if durations else 0.0


def wall_time_h(estimates: list[RuleEstimate], cores: int, lower: bool = False, expected: bool = False) -> float:
    """Wall time on one machine of ``cores`` cores: every stage scheduled LPT on all cores, the stages
    one after the other (Snakemake overlaps them, so this errs long).  Jobs are one thread each.
    Training jobs at min_steps (``lower``), at the step model's steps (``expected``) or at the cap."""

    def durations(e: RuleEstimate) -> list[float]:
        if expected and e.job_cpu_s_exp:
            return e.job_cpu_s_exp
        return e.job_cpu_s_min if lower and e.job_cpu_s_min else e.job_cpu_s

    by_rule = {e.rule: durations(e) for e in estimates}
    total = 0.0
    for stage in STAGES:
        total += makespan_s([d for r in stage for d in by_rule.get(r, [])], cores)
    return total / 3600


def _fmt(x: float, digits: int = 1) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def _cpu(e: RuleEstimate) -> str:
    """CPU hours; a range (every member at min_steps - at max_steps) for training."""
    if not math.isnan(e.cpu_h_min) and abs(e.cpu_h_min - e.cpu_h) > 0.005:
        return f"{_fmt(e.cpu_h_min, 2)} – {_fmt(e.cpu_h, 2)}"
    return _fmt(e.cpu_h, 2)


def count_submissions(jobs: list[DryJob]) -> int:
    """SLURM submissions of a dry run: a group job holding several rules counts once."""
    return len({j.submission for j in jobs if j.submission >= 0})


def markdown_table(estimates: list[RuleEstimate], title: str, total_submissions: int | None = None) -> str:
    """The sizing table (markdown) with a total row.  A rule's submissions include group jobs it
    shares with other rules, so the total is ``total_submissions`` (see :func:`count_submissions`)."""
    head = (
        "| rule | jobs | SLURM submissions | threads | mem_mb asked | runtime asked (min) | GPU "
        "| peak RSS measured (MB) | est. CPU h | est. CPU min, largest job (cap) | cost unit |"
    )
    lines = [f"**{title}**", "", head, "|" + " --- |" * 11]
    for e in estimates:
        rss = _fmt(e.peak_rss_mb, 0) + (" (grows with data)" if e.scales_with_data and e.measured_jobs else "")
        lines.append(
            f"| {e.rule}{' (local)' if e.local else ''} | {e.jobs} | {e.submissions} | {e.threads} "
            f"| {_fmt(e.mem_mb, 0)} | {_fmt(e.runtime_min, 0)} | {e.gpu or ''} | {rss} | {_cpu(e)} "
            f"| {_fmt(e.max_job_cpu_min, 1)} | {e.unit or 'no benchmark'} |"
        )
    known = [e.cpu_h for e in estimates if not math.isnan(e.cpu_h)]
    known_min = [e.cpu_h if math.isnan(e.cpu_h_min) else e.cpu_h_min for e in estimates if not math.isnan(e.cpu_h)]
    subs = total_submissions if total_submissions is not None else sum(e.submissions for e in estimates)
    tot = _fmt(float(sum(known)), 2)
    if abs(sum(known_min) - sum(known)) > 0.005:
        tot = f"{_fmt(float(sum(known_min)), 2)} – {tot}"
    lines.append(f"| **total** | {sum(e.jobs for e in estimates)} | {subs} | | | | | | {tot} | | |")
    return "\n".join(lines) + "\n"


def replace_marked(doc: str, begin: str, end: str, body: str) -> str:
    """``doc`` with the text between the ``begin`` and ``end`` marker lines replaced by ``body``."""
    if begin in doc and end in doc:
        pre, rest = doc.split(begin, 1)
        post = rest.split(end, 1)[1]
        return f"{pre}{begin}\n{body}{end}{post}"
    return f"{doc.rstrip()}\n\n{begin}\n{body}{end}\n"
