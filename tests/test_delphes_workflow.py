"""Snakemake wiring of the simulation: the card and every file it sources are rule inputs, so
editing one reruns simulation and what follows, but not generation (dry run, fake outputs)."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
GEN = "results/gen/ttbar/0.parquet"
SIM = "results/sim/{det}/ttbar/0.root"
SKIM = "results/skim/{det}/ttbar/0.parquet"


@pytest.fixture
def workdir(repo_root, tmp_path):
    for name in ["Snakefile", "config.yaml"]:
        shutil.copy(repo_root / name, tmp_path / name)
    # no pile-up overlay: the fake outputs below are the ttbar chain only (minbias is not faked)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["pileup"]["mean"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for d in ["workflow", "cards", "envs", "src/fast2full/schemas"]:
        shutil.copytree(repo_root / d, tmp_path / d)
    t0 = time.time() - 1000
    for det in ["atlas_like", "cms_like"]:
        for i, f in enumerate([GEN, SIM.format(det=det), SKIM.format(det=det)]):
            p = tmp_path / f
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("fake")
            os.utime(p, (t0 + 10 * i, t0 + 10 * i))
    for card in (tmp_path / "cards").rglob("*.tcl"):
        os.utime(card, (t0 - 100, t0 - 100))
    return tmp_path


def _jobs(workdir, *targets):
    res = subprocess.run(
        [*SNAKEMAKE, "-n", "--cores", "1", *targets, "--rerun-triggers", "mtime"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    out = res.stdout + res.stderr
    outputs = re.findall(r"^\s*output: (.*)$", out, flags=re.M)
    rules = re.findall(r"^rule (\w+):$", out, flags=re.M)
    return rules, outputs


TARGETS = [SKIM.format(det="atlas_like"), SKIM.format(det="cms_like")]


def test_up_to_date_outputs_do_nothing(workdir):
    rules, outputs = _jobs(workdir, *TARGETS)
    assert rules == [] and outputs == []


@pytest.mark.parametrize(
    "touched, rerun",
    [
        ("cards/atlas_like.tcl", ["atlas_like"]),
        ("cards/common/genlevel.tcl", ["atlas_like", "cms_like"]),  # sourced by both cards
    ],
)
def test_touching_a_card_reruns_simulation_not_generation(workdir, touched, rerun):
    os.utime(workdir / touched, None)
    rules, outputs = _jobs(workdir, *TARGETS)
    assert "pythia_generate" not in rules and GEN not in outputs
    assert sorted(outputs) == sorted([SIM.format(det=d) for d in rerun] + [SKIM.format(det=d) for d in rerun])
    assert set(rules) == {"delphes_simulate", "delphes_skim"}


@pytest.mark.parametrize(
    "edit, message",
    [
        # a loop: genlevel.tcl sources itself (relative to the top-level card's folder)
        (("cards/common/genlevel.tcl", "\nsource common/genlevel.tcl\n"), "recursive 'source'"),
        # a missing sourced file: the error names the sourcing card and its line
        (("cards/atlas_like.tcl", "\nsource common/nothere.tcl\n"), "atlas_like.tcl:"),
    ],
)
def test_bad_source_stops_the_dag_build_with_one_message(workdir, edit, message):
    path, text = edit
    with open(workdir / path, "a") as fh:
        fh.write(text)
    res = subprocess.run(
        [*SNAKEMAKE, "-n", "--cores", "1", *TARGETS], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert message in out and "detectors.atlas_like.card" in out, out[-3000:]
    assert "RecursionError" not in out and len(out.splitlines()) < 30, out[-3000:]
