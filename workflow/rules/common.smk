# Input functions and shared settings. No physics or ML logic here.
import os
from pathlib import Path

from fast2full import plan
from fast2full.config import stage_json

# every output path comes from fast2full.plan.Paths; vocabulary and training points from fast2full.plan
PATHS = plan.PATHS
RESULTS = PATHS.root
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def stage_config(stage, **fixed):
    """A params function: the job's config slice as canonical JSON (fast2full.config.stage_slice),
    narrowed by the wildcards the stage names.  As a param, Snakemake reruns the job when its slice
    changes; the command receives it as --config-json (never the config file by path)."""
    names = {
        "generate": ["process"],
        "skim_delphes": ["process"],
        "skim_physlite": ["sample"],
        "tensorize": ["task"],
    }.get(stage, [])
    return lambda w: stage_json(config, stage, **{n: w[n] for n in names}, **fixed)


PROCESSES = list(config["processes"])
PHYSICS_PROCESSES = [p for p, c in config["processes"].items() if c.get("role") != "pileup"]
DETECTORS = list(config["detectors"])
SOURCE = config["domains"]["source"]
TARGETS = config["domains"]["targets"]
DOMAINS = plan.domains(config)
FULLSIM = plan.FULLSIM
TR = config["training"]


wildcard_constraints:
    process="[a-z][a-z0-9_]*",
    detector="|".join(DETECTORS),
    chunk=r"\d+",
    task="|".join(plan.TASKS),
    arch="|".join(plan.ARCHS),
    mode="|".join(plan.MODES),
    split="|".join(plan.SPLITS),


def chunks(process):
    return range(config["processes"][process]["chunks"])


def gen_files(process):
    return [PATHS.gen(process, c) for c in chunks(process)]


def card_files(card):
    """The card and every file it `source`s, so editing any of them reruns simulation."""
    from fast2full.delphes.card import card_dependencies

    return card_dependencies(card)


def _check_cards():
    """A card that cannot be read (a `source` loop, a missing sourced file) stops the DAG build
    with one message naming the config key and the card, not an input-function traceback.
    A top-level card that is not there (e.g. a run in another --directory that only generates) is
    left to Snakemake's own missing-input error, raised only by a job that needs the card."""
    from fast2full.delphes.card import CardError, parse_card

    for det, dc in config["detectors"].items():
        if not Path(dc["card"]).is_file():
            continue
        try:
            missing = [f for f in card_files(dc["card"]) if not Path(f).is_file()]
            if missing:
                parse_card(dc["card"])  # names the card and line of the `source`
                raise CardError(dc["card"], None, f"sourced file(s) not found: {missing}")
        except CardError as err:
            raise WorkflowError(f"config key 'detectors.{det}.card': {err}") from None


_check_cards()


def pileup_inputs(wildcards):
    pu = config.get("pileup", {})
    if float(pu.get("mean", 0.0)) <= 0:
        return []
    return gen_files(pu.get("process", "minbias"))


def opendata_samples():
    return list(config.get("opendata", {}).get("samples", {}))


MANIFEST = config.get("opendata", {}).get("manifest", PATHS.manifest())
STREAM_PREFIX = "stream://"


def physlite_files(sample):
    """Local PHYSLITE files of a sample (config opendata.local_files), else the fetch outputs, else
    (opendata.stream) markers ``stream://{sample}/{index}`` for files read remotely by the skim."""
    from fast2full.opendata import local_files_for

    local = local_files_for(config, sample, base_dir=workflow.basedir)
    if local is not None:
        return local
    n = config["opendata"]["samples"][sample].get("max_files", 1)
    if config["opendata"].get("stream", False):
        return [f"{STREAM_PREFIX}{sample}/{i}" for i in range(n)]
    return [PATHS.physlite(sample, i) for i in range(n)]


def skim_files(domain):
    if domain == FULLSIM:
        return [PATHS.skim(FULLSIM, s, Path(f).stem) for s in opendata_samples() for f in physlite_files(s)]
    return [PATHS.skim(domain, p, c) for p in PHYSICS_PROCESSES for c in chunks(p)]


def task_targets(task):
    return plan.task_targets(config, task)


train_dir = PATHS.train_dir


def all_metrics():
    """Every metrics.json of the study: fast2full.plan.training_points (aggregate reads the same plan)."""
    return [PATHS.metrics(p) for p in plan.training_points(config)]


def all_loss_logs():
    """Every point's declared loss-history directory (seed*/logs, fast2full.plan.seed_dirs), which the
    aggregate's loss figures read next to each metrics.json."""
    return [f"{PATHS.point_dir(p)}/{d}" for p in plan.training_points(config) for d in plan.seed_dirs(p.mode)]


def all_targets():
    """Summary tables, learning-curve and feature figures, and the published pretrained models."""
    tasks = TR["tasks"]
    out = [PATHS.summary("metrics.csv"), PATHS.summary("reduction_factors.csv"), PATHS.figure("curves")]
    out += [PATHS.figure(f"features_{t}.pdf") for t in tasks]
    out += [PATHS.model(t, a, s) for t in tasks for a in TR["archs"] for s in TR["seeds"]]
    return out


def physlite_source(w):
    for f in physlite_files(w.sample):
        if Path(f).stem == w.file:
            return f
    raise ValueError(f"no PHYSLITE file {w.file} for sample {w.sample}")


def physlite_input(w):
    """The PHYSLITE file, or the manifest (for its URL) when the file is streamed."""
    f = physlite_source(w)
    return MANIFEST if f.startswith(STREAM_PREFIX) else f


def physlite_args(w, input):
    f = physlite_source(w)
    return f"--manifest {input[0]} --index {w.file}" if f.startswith(STREAM_PREFIX) else f"--in {input[0]}"


def feature_domains(task):
    """Domains compared in the feature figure: all but those skipped for the task (training.skip)."""
    return [d for d in DOMAINS if f"{task}/{d}" not in TR.get("skip", {})]


SEEDS = TR["seeds"]
SEED_ARGS = " ".join(str(s) for s in SEEDS)
TARGET_MODES = ["zeroshot"] + [m for m in TR["modes"] if m != "zeroshot"]
SIZE_ARGS = " ".join(str(s) for s in TR["sizes"])


tensor_files = PATHS.tensor_files


#: every pretraining domain: the source, and its reduced-input copies (fast2full.plan.REDUCED_INPUTS:
#: qg on atlas_fullsim starts from a source model pretrained on the same jet-only inputs)
ALL_SOURCES = list(dict.fromkeys(s for t in TR["tasks"] for s in plan.sources(config, t)))


def source_of(w):
    """The source domain whose pretrained model a target's transfer points start from."""
    return plan.source_for(SOURCE, w.task, w.target)


def pretrained_dir(w):
    return train_dir(w.task, w.arch, source_of(w), "pretrain", "all")


def pretrained_ckpts(w):
    return [f"{pretrained_dir(w)}/seed{s}/model.ckpt" for s in SEEDS]


def target_tensors(w):
    files = tensor_files(w.task, w.target)
    if "dann" in TR["modes"]:  # the domain-adversarial head also sees source events
        files += tensor_files(w.task, source_of(w))
    return files


def reduced_inputs_arg(task, domain):
    """``--reduced-inputs`` for a tensor domain made with the task's reduced inputs, else nothing."""
    return "--reduced-inputs" if domain in plan.reduced_tensor_domains(config, task) else ""


def target_points(task, arch, target):
    """Every metrics.json of one (task, arch, target): zeroshot (n0) and each mode x size, all seeds."""
    out = [f"{train_dir(task, arch, target, 'zeroshot', 0)}/seed{s}/metrics.json" for s in SEEDS]
    for mode in TR["modes"]:
        for size in TR["sizes"]:
            out += [f"{train_dir(task, arch, target, mode, size)}/seed{s}/metrics.json" for s in SEEDS]
    return out


#: job granularity of the target training (config training.jobs, docs/training.md): one process per
#: (task, arch, target), per (task, arch, target, mode), or per point (task, arch, target, mode, size)
JOBS = TR.get("jobs", "target")
NEVER = "(?!x)x"  # a wildcard pattern that matches nothing: the rule of another granularity never applies
NON_SOURCE = "|".join(t for t in TARGETS if t != SOURCE)
TRAINED_MODES = [m for m in TR["modes"] if m != "zeroshot"]


def point_files(task, arch, target, mode, size):
    """Every file and directory one point's job writes (fast2full.plan.seed_files, seed_dirs): all are
    declared outputs."""
    base = train_dir(task, arch, target, mode, size)
    names = plan.seed_files(mode, TR["learning_rates"], pretrain=mode == "pretrain")
    files = [f"{base}/seed{s}/{f}" for s in SEEDS for f in names]
    return files + [directory(f"{base}/seed{s}/{d}") for s in SEEDS for d in plan.seed_dirs(mode)]


def target_outputs(task, arch, target):
    """Every output of one (task, arch, target): zeroshot (n0) and each mode x size, all seeds."""
    out = point_files(task, arch, target, "zeroshot", 0)
    for mode in TRAINED_MODES:
        for size in TR["sizes"]:
            out += point_files(task, arch, target, mode, size)
    return out
