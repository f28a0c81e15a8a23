# Input functions and shared settings. No physics or ML logic here.
import os
from pathlib import Path

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
CONFIGFILE = (workflow.overwrite_configfiles or ["config.yaml"])[-1]

PROCESSES = list(config["processes"])
PHYSICS_PROCESSES = [p for p, c in config["processes"].items() if c.get("role") != "pileup"]
DETECTORS = list(config["detectors"])
SOURCE = config["domains"]["source"]
TARGETS = config["domains"]["targets"]
DOMAINS = [SOURCE] + [t for t in TARGETS if t != SOURCE]
FULLSIM = "atlas_fullsim"
TR = config["training"]


wildcard_constraints:
    process="[a-z][a-z0-9_]*",
    detector="|".join(DETECTORS),
    chunk=r"\d+",
    task="sigbkg|qg|met",
    arch="dnn|gnn|transformer",
    mode="pretrain|zeroshot|scratch|finetune|freeze|dann",
    split="train|val|test",


def chunks(process):
    return range(config["processes"][process]["chunks"])


def gen_files(process):
    return [f"{RESULTS}/gen/{process}/{c}.parquet" for c in chunks(process)]


def card_files(card):
    """The card and every file it `source`s, so editing any of them reruns simulation."""
    from fast2full.delphes.card import card_dependencies

    return card_dependencies(card)


def _check_cards():
    """A card that cannot be read (a `source` loop, a missing sourced file) stops the DAG build
    with one message naming the config key and the card, not an input-function traceback."""
    from fast2full.delphes.card import CardError, parse_card

    for det, dc in config["detectors"].items():
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


MANIFEST = config.get("opendata", {}).get("manifest", f"{RESULTS}/opendata/manifest.json")
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
    return [f"{RESULTS}/opendata/files/{sample}/{i}.root" for i in range(n)]


def skim_files(domain):
    if domain == FULLSIM:
        return [
            f"{RESULTS}/skim/{FULLSIM}/{s}/{Path(f).stem}.parquet"
            for s in opendata_samples()
            for f in physlite_files(s)
        ]
    return [
        f"{RESULTS}/skim/{domain}/{p}/{c}.parquet"
        for p in PHYSICS_PROCESSES
        for c in chunks(p)
    ]


def task_targets(task):
    return [t for t in TR.get("targets", {}).get(task, TARGETS) if f"{task}/{t}" not in TR.get("skip", {})]


def train_dir(task, arch, target, mode, size):
    return f"{RESULTS}/train/{task}/{arch}/{target}/{mode}/n{size}"


def all_metrics():
    out = []
    for task in TR["tasks"]:
        for arch in TR["archs"]:
            for seed in TR["seeds"]:
                out.append(f"{train_dir(task, arch, SOURCE, 'pretrain', 'all')}/seed{seed}/metrics.json")
            for target in task_targets(task):
                for seed in TR["seeds"]:
                    out.append(f"{train_dir(task, arch, target, 'zeroshot', 0)}/seed{seed}/metrics.json")
                for mode in TR["modes"]:
                    for size in TR["sizes"]:
                        for seed in TR["seeds"]:
                            out.append(f"{train_dir(task, arch, target, mode, size)}/seed{seed}/metrics.json")
    return out


def all_targets():
    """Summary tables, learning-curve and feature figures, and the published pretrained models."""
    tasks = TR["tasks"]
    out = [
        f"{RESULTS}/summary/metrics.csv",
        f"{RESULTS}/summary/reduction_factors.csv",
        f"{RESULTS}/figures/curves",
    ]
    out += [f"{RESULTS}/figures/features_{t}.pdf" for t in tasks]
    out += [f"{RESULTS}/models/{t}_{a}_seed{s}" for t in tasks for a in TR["archs"] for s in TR["seeds"]]
    return out
