"""Every setting is tracked: editing one config key reruns exactly the jobs that depend on it.

A copy of the workflow gets every output faked and recorded by Snakemake (``--touch --forceall``
stores each job's params, i.e. its config slice); then each edit is applied as a ``--configfile``
overlay and a dry run must schedule exactly the expected jobs, nothing upstream.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PROCS = ["ttbar", "wjets", "zjets", "dijet"]
DETS = ["atlas_like", "cms_like"]
TASKS = ["sigbkg", "qg", "met"]


def _run(work: Path, *args: str) -> str:
    res = subprocess.run([*SNAKEMAKE, "--cores", "1", *args], cwd=work, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    return out


def _jobs(out: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(rule, wildcards) of every job a dry run lists (not the target rule `all`)."""
    jobs = set()
    for block in re.split(r"^(?=\s*(?:local)?rule \w+:$)", out, flags=re.M):  # group jobs are indented
        m = re.match(r"\s*(?:local)?rule (\w+):$", block, flags=re.M)
        if not m or m.group(1) == "all":
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        pairs = tuple(sorted(tuple(kv.split("=", 1)) for kv in wc.group(1).split(", "))) if wc else ()
        jobs.add((m.group(1), pairs))
    return jobs


def _rules(jobs) -> set[str]:
    return {r for r, _ in jobs}


def _wc(jobs, rule: str, key: str) -> set[str]:
    return {dict(w)[key] for r, w in jobs if r == rule}


@pytest.fixture(scope="module")
def recorded(repo_root, testdata, tmp_path_factory):
    """A workflow copy whose outputs are all present and recorded, with a small overlay."""
    work = tmp_path_factory.mktemp("rerun")
    for name in ["Snakefile", "config.yaml"]:
        shutil.copy(repo_root / name, work / name)
    for d in ["workflow", "cards", "envs", "src/fast2full/schemas"]:
        shutil.copytree(repo_root / d, work / d)
    small = {
        "processes": {p: {"chunks": 1} for p in PROCS},
        "opendata": {"local_files": {"zjets_ee": [str(testdata / "PHYSLITE_example.root")]}},
        "training": {"archs": ["dnn"], "seeds": [0], "sizes": [20], "modes": ["scratch", "finetune"]},
        "aggregate": {"compare_size": 20},
    }
    (work / "small.yaml").write_text(yaml.safe_dump(small))
    out = _run(work, "-n", "--forceall", "--configfile", "small.yaml", "--", "all")
    for line in re.findall(r"^\s+output: (.*)$", out, flags=re.M):
        for f in line.split(", "):
            p = work / f
            if "." in Path(f).name:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("fake")
            else:  # directory() outputs: results/figures/curves, results/models/*
                p.mkdir(parents=True, exist_ok=True)
    _run(work, "--touch", "--forceall", "--configfile", "small.yaml", "--", "all")
    return work


def _edit(work: Path, name: str, overlay: dict):
    (work / f"{name}.yaml").write_text(yaml.safe_dump(overlay))
    out = _run(work, "-n", "--configfile", "small.yaml", f"{name}.yaml", "--", "all")
    return _jobs(out)


ALL_RULES = {
    "pythia_generate",
    "delphes_simulate",
    "delphes_skim",
    "physlite_skim",
    "tensorize_source",
    "tensorize_target",
    "plot_features",
    "train_pretrain",
    "train_target",
    "publish_model",
    "aggregate_results",
}
DOWNSTREAM_OF_SKIM = ALL_RULES - {"pythia_generate", "delphes_simulate", "physlite_skim", "delphes_skim"}


def test_recorded_workflow_is_up_to_date(recorded):
    out = _run(recorded, "-n", "--configfile", "small.yaml", "--", "all")
    assert _jobs(out) == set(), out[-3000:]
    assert "Nothing to be done" in out


def test_seed_reruns_generation_and_everything_after_but_not_the_full_sim_skim(recorded):
    jobs = _edit(recorded, "seed", {"seed": 12345})
    assert _rules(jobs) == ALL_RULES - {"physlite_skim"}
    # with pile-up on (config pileup.mean > 0) the minimum-bias sample feeds the simulation: regenerated too
    assert _wc(jobs, "pythia_generate", "process") == set(PROCS) | {"minbias"}


@pytest.mark.parametrize(
    "name, overlay",
    [
        (
            "pythia",
            {
                "processes": {
                    "wjets": {"settings": ["WeakBosonAndParton:qqbar2Wg = on", "24:onMode = off", "24:onIfAny = 11 13"]}
                }
            },
        ),
        ("events", {"processes": {"wjets": {"events_per_chunk": 123}}}),
    ],
)
def test_one_process_setting_reruns_that_process_only(recorded, name, overlay):
    jobs = _edit(recorded, name, overlay)
    assert _rules(jobs) == ALL_RULES - {"physlite_skim"}
    for rule in ("pythia_generate", "delphes_simulate", "delphes_skim"):
        assert _wc(jobs, rule, "process") == {"wjets"}, rule
    assert _wc(jobs, "delphes_simulate", "detector") == set(DETS)


def test_selection_cut_reruns_skims_not_generation_or_simulation(recorded):
    jobs = _edit(recorded, "selection", {"selection": {"jets": {"pt_min": 30.0}}})
    assert _rules(jobs) == DOWNSTREAM_OF_SKIM | {"delphes_skim", "physlite_skim"}
    assert len([j for j in jobs if j[0] == "delphes_skim"]) == len(PROCS) * len(DETS)


def test_tensor_region_reruns_only_that_task(recorded):
    jobs = _edit(recorded, "region", {"tensors": {"tasks": {"sigbkg": {"region": {"min_jets": 4}}}}})
    assert _rules(jobs) == {
        "tensorize_source",
        "tensorize_target",
        "plot_features",
        "train_pretrain",
        "train_target",
        "publish_model",
        "aggregate_results",
    }
    for rule in _rules(jobs) - {"aggregate_results"}:
        assert _wc(jobs, rule, "task") == {"sigbkg"}, rule


def test_learning_rate_grid_reruns_training_not_tensors(recorded):
    jobs = _edit(recorded, "lr", {"training": {"learning_rates": [0.01]}})
    assert _rules(jobs) == {"train_pretrain", "train_target", "publish_model", "aggregate_results"}
    assert _wc(jobs, "train_pretrain", "task") == set(TASKS)


def test_bootstrap_reruns_aggregate_only(recorded):
    jobs = _edit(recorded, "bootstrap", {"aggregate": {"bootstrap": 17}})
    assert jobs == {("aggregate_results", ())}


def test_config_key_value_is_tracked_too(recorded):
    out = _run(recorded, "-n", "--configfile", "small.yaml", "--config", "aggregate={bootstrap: 17}", "--", "all")
    assert _jobs(out) == {("aggregate_results", ())}
