"""The study's vocabulary, its plan (which jobs and points a config asks for) and every output path.

Declared once here and used by the Snakefile (``workflow/rules/common.smk``), the CLI's choices,
``fast2full train`` and ``aggregate``:

* vocabulary: :data:`TASKS`, :data:`ARCHS`, :data:`MODES` (:data:`TRANSFER_MODES`), :data:`SPLITS`,
  the full-simulation domain :data:`FULLSIM` and the full-split size token :data:`FULL_SIZE`;
* the plan: :func:`domains`, :func:`task_targets`, :func:`training_points` (every metrics.json the
  study produces), :func:`expected_combinations` (every row of the factor table);
* the reduced-input comparison (:data:`REDUCED_INPUTS`): which source model each target's transfer
  points start from (:func:`source_for`), the pretraining sources of a task (:func:`sources`), and the
  domain whose objects a tensor domain is made of (:func:`object_domain`);
* the paths: :class:`Paths` (``results/...`` layout of every stage's outputs, logs and benchmarks).

Light on purpose (standard library only): ``fast2full --help`` and the Snakefile import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

#: the three tasks (docs/tensors.md)
TASKS = ("sigbkg", "qg", "met")
#: the classification tasks (sigmoid score, AUC) and the regression task (MET vector, resolution)
CLASSIFICATION_TASKS = ("sigbkg", "qg")
REGRESSION_TASKS = ("met",)
#: the three backbones (fast2full.models)
ARCHS = ("dnn", "gnn", "transformer")
#: trained on the source only / the pretrained model on the target, untouched
SOURCE_MODES = ("pretrain", "zeroshot")
#: transfer modes that start from the pretrained source model (they get a reduction factor)
TRANSFER_MODES = ("finetune", "freeze", "dann")
#: what config ``training.modes`` may list: the from-scratch reference and the transfer modes
CONFIG_MODES = ("scratch", *TRANSFER_MODES)
#: every mode a metrics.json may carry
MODES = (*SOURCE_MODES, *CONFIG_MODES)
SPLITS = ("train", "val", "test")
#: the full-simulation domain (ATLAS Open Data PHYSLITE)
FULLSIM = "atlas_fullsim"
#: the size token of a full (source or target) train split
FULL_SIZE = "all"

#: Per task, the target domains that lack an input the fast-simulation domains have, and the reduced
#: tensor settings that they and a reduced-input copy of the source (``{source}{suffix}``, made from the
#: source's objects) both use, so that their transfer points start from a model pretrained on the same
#: inputs the target has (docs/tensors.md).  DAOD_PHYSLITE keeps no particle-flow constituents of
#: ``AnalysisJets``: qg on atlas_fullsim reads the jet observables only, one slot per row.
REDUCED_INPUTS: dict[str, dict[str, Any]] = {
    "qg": {
        "domains": (FULLSIM,),
        "suffix": "_jet",
        "tensors": {"max_constituents": 0, "constituent_types": []},
        "why": "DAOD_PHYSLITE keeps no particle-flow constituents of AnalysisJets: jet observables only",
    }
}


def domains(config: Mapping[str, Any]) -> list[str]:
    """The source first, then every other target domain."""
    src = config["domains"]["source"]
    return [src, *(t for t in config["domains"]["targets"] if t != src)]


def task_targets(config: Mapping[str, Any], task: str) -> list[str]:
    """Targets a task is trained on: ``training.targets[task]`` (default: every target) minus ``training.skip``."""
    tr = config["training"]
    targets = (tr.get("targets") or {}).get(task, config["domains"]["targets"])
    skip = tr.get("skip") or {}
    return [t for t in targets if f"{task}/{t}" not in skip]


def reduced_source(source: str, task: str) -> str | None:
    """The reduced-input copy of the source domain for ``task`` (``atlas_like_jet`` for qg), or None
    if the task has no reduced-input comparison."""
    r = REDUCED_INPUTS.get(task)
    return f"{source}{r['suffix']}" if r else None


def has_reduced_inputs(task: str, target: str) -> bool:
    """Whether ``target``'s ``task`` tensors are the reduced inputs (:data:`REDUCED_INPUTS`)."""
    return target in REDUCED_INPUTS.get(task, {}).get("domains", ())


def source_for(source: str, task: str, target: str) -> str:
    """The source domain whose pretrained model the transfer points (zeroshot, finetune, freeze, dann)
    of ``task`` on ``target`` start from: the reduced-input source for a target with reduced inputs,
    else ``source`` itself."""
    red = reduced_source(source, task)
    return red if red is not None and has_reduced_inputs(task, target) else source


def sources(config: Mapping[str, Any], task: str) -> list[str]:
    """The pretraining domains of ``task``: the source, and its reduced-input copy if one of the task's
    targets has reduced inputs."""
    src = config["domains"]["source"]
    return list(dict.fromkeys([src, *(source_for(src, task, t) for t in task_targets(config, task))]))


def reduced_tensor_domains(config: Mapping[str, Any], task: str) -> list[str]:
    """The tensor domains of ``task`` made with the reduced inputs: the reduced source and every
    reduced target (empty when no configured target needs them)."""
    src = config["domains"]["source"]
    targets = [t for t in task_targets(config, task) if has_reduced_inputs(task, t)]
    return [source_for(src, task, targets[0]), *targets] if targets else []


def object_domain(config: Mapping[str, Any], domain: str) -> str:
    """The domain whose objects (skims) the tensor domain ``domain`` is made of: the source for its
    reduced-input copies, else ``domain``."""
    src = config["domains"]["source"]
    return src if any(reduced_source(src, t) == domain for t in REDUCED_INPUTS) else domain


@dataclass(frozen=True)
class Point:
    """One trained (or evaluated) model: one metrics.json."""

    task: str
    arch: str
    target: str
    mode: str
    size: int | str  # an int, 0 for zeroshot, or FULL_SIZE
    seed: int


def training_points(config: Mapping[str, Any]) -> list[Point]:
    """Every point the config asks for, in a fixed order: per task and arch, the pretraining (each of
    :func:`sources`, full split) per seed, then per target zeroshot (size 0) and every mode x size, per
    seed."""
    tr = config["training"]
    out: list[Point] = []
    for task in tr["tasks"]:
        for arch in tr["archs"]:
            for source in sources(config, task):
                out += [Point(task, arch, source, "pretrain", FULL_SIZE, s) for s in tr["seeds"]]
            for target in task_targets(config, task):
                out += [Point(task, arch, target, "zeroshot", 0, s) for s in tr["seeds"]]
                out += [
                    Point(task, arch, target, mode, size, s)
                    for mode in tr["modes"]
                    for size in tr["sizes"]
                    for s in tr["seeds"]
                ]
    return out


def expected_combinations(config: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every configured (task, arch, target, mode) that gets a row in the factor table."""
    tr = config["training"]
    return [
        (task, arch, target, mode)
        for task in tr["tasks"]
        for arch in tr["archs"]
        for target in task_targets(config, task)
        for mode in tr["modes"]
    ]


@dataclass(frozen=True)
class Paths:
    """The output layout under ``root`` (``results``).  Arguments may be Snakemake wildcard patterns
    (``"{process}"``): every method only formats strings."""

    root: str = "results"

    # generation and simulation
    def gen(self, process: object, chunk: object, ext: str = "parquet") -> str:
        return f"{self.root}/gen/{process}/{chunk}.{ext}"

    def sim(self, detector: object, process: object, chunk: object) -> str:
        return f"{self.root}/sim/{detector}/{process}/{chunk}.root"

    # open data
    def manifest(self) -> str:
        return f"{self.root}/opendata/manifest.json"

    def physlite(self, sample: object, index: object) -> str:
        return f"{self.root}/opendata/files/{sample}/{index}.root"

    # objects and tensors
    def skim(self, domain: object, sample: object, name: object) -> str:
        return f"{self.root}/skim/{domain}/{sample}/{name}.parquet"

    def tensors_root(self) -> str:
        return f"{self.root}/tensors"

    def tensor_dir(self, task: object, domain: object) -> str:
        return f"{self.root}/tensors/{task}/{domain}"

    def tensor(self, task: object, domain: object, split: object) -> str:
        return f"{self.tensor_dir(task, domain)}/{split}.parquet"

    def tensor_files(self, task: object, domain: object) -> list[str]:
        return [self.tensor(task, domain, s) for s in SPLITS]

    def norm(self, task: object, domain: object) -> str:
        return f"{self.tensor_dir(task, domain)}/norm.json"

    # training
    def train_dir(self, task: object, arch: object, target: object, mode: object, size: object) -> str:
        return f"{self.root}/train/{task}/{arch}/{target}/{mode}/n{size}"

    def point_dir(self, p: Point) -> str:
        return f"{self.train_dir(p.task, p.arch, p.target, p.mode, p.size)}/seed{p.seed}"

    def metrics(self, p: Point) -> str:
        return f"{self.point_dir(p)}/metrics.json"

    def model(self, task: object, arch: object, seed: object) -> str:
        return f"{self.root}/models/{task}_{arch}_seed{seed}"

    # summary and figures
    def summary(self, name: str) -> str:
        return f"{self.root}/summary/{name}"

    def figure(self, name: str) -> str:
        return f"{self.root}/figures/{name}"

    # bookkeeping of every rule
    def log(self, *parts: object) -> str:
        return f"{self.root}/logs/{'/'.join(str(p) for p in parts)}.log"

    def bench(self, *parts: object) -> str:
        return f"{self.root}/benchmarks/{'/'.join(str(p) for p in parts)}.tsv"


def seed_files(mode: str, learning_rates: Any, pretrain: bool = False) -> list[str]:
    """The declared files ``fast2full train`` writes in a point's ``seed{s}/`` folder (relative names):
    the metrics and per-event predictions; for a trained mode the learning-rate grid; for pretraining
    also the checkpoint.  Everything else it writes lies under :func:`seed_dirs`."""
    out = ["metrics.json", "predictions.parquet"]
    if mode != "zeroshot":
        out.append("grid.csv")
    if pretrain:
        out.append("model.ckpt")
    return out


def seed_dirs(mode: str) -> list[str]:
    """The declared directories ``fast2full train`` writes in a point's ``seed{s}/`` folder: for a
    trained mode ``logs/``, the per-learning-rate loss histories ``logs/lr{lr}/metrics.csv``.  One
    directory, not one file per learning rate: outputs named after ``training.learning_rates`` would
    stop Snakemake from rerunning the job when the grid changes (tests/test_dag_rerun.py); the
    directory is the rule's ``directory()`` output, rewritten whole by every run."""
    return [] if mode == "zeroshot" else ["logs"]


def parse_tensor_path(path: str) -> tuple[str, str, str]:
    """(task, domain, split) of a ``.../{task}/{domain}/{split}.parquet`` tensor file (the layout of
    :meth:`Paths.tensor`); ValueError for any other name."""
    p = PurePosixPath(str(path).replace("\\", "/"))
    split, domain, task = p.stem, p.parent.name, p.parent.parent.name
    if p.suffix != ".parquet" or split not in SPLITS or task not in TASKS or not domain:
        raise ValueError(
            f"{path}: not a tensor file .../TASK/DOMAIN/SPLIT.parquet "
            f"(TASK one of {', '.join(TASKS)}, SPLIT one of {', '.join(SPLITS)})"
        )
    return task, domain, split


PATHS = Paths()
