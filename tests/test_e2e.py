"""End to end: the real Snakefile on a tiny config, from Pythia8 to figures and the summary table."""

import csv
import shutil
import subprocess
import sys

import pytest
import yaml

from fast2full import plan

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory, repo_root, testdata):
    work = tmp_path_factory.mktemp("e2e")
    for item in ["Snakefile", "workflow", "cards", "envs", "src/fast2full/schemas"]:
        src = repo_root / item
        dst = work / item
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    cfg = yaml.safe_load((repo_root / "tests/data/config_tiny.yaml").read_text())
    cfg["opendata"]["local_files"]["zjets_ee"] = [str(testdata / "PHYSLITE_example.root")]
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "all", "--configfile", "config.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    (work / "snakemake.out").write_text(res.stdout + res.stderr)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    return work, cfg


def test_every_expected_output_exists(e2e_run):
    work, cfg = e2e_run
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "all", "--configfile", "config.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr
    for rel in [
        "results/summary/metrics.csv",
        "results/summary/metrics.parquet",
        "results/summary/reduction_factors.csv",
        "results/summary/summary.md",
    ]:
        p = work / rel
        assert p.is_file() and p.stat().st_size > 0, rel
    for task in cfg["training"]["tasks"]:
        for ext in ("pdf", "png"):
            p = work / f"results/figures/features_{task}.{ext}"
            assert p.is_file() and p.stat().st_size > 0
    curves = list((work / "results/figures/curves").glob("*.png"))
    assert curves, "no learning-curve figures"
    assert all(p.stat().st_size > 0 for p in curves)


def test_table_has_one_row_per_combination(e2e_run):
    work, cfg = e2e_run
    tr = cfg["training"]
    with open(work / "results/summary/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    n_targets = sum(len(tr["targets"][t]) for t in tr["tasks"])
    n_sources = sum(len(plan.sources(cfg, t)) for t in tr["tasks"])  # qg: + the reduced-input source
    n_expected = len(tr["archs"]) * (
        n_sources * len(tr["seeds"])  # pretrain
        + n_targets * len(tr["seeds"]) * (1 + len(tr["modes"]) * len(tr["sizes"]))  # zeroshot + points
    )
    assert len(rows) == n_expected
    src = {(r["task"], r["target"]): r["source"] for r in rows if r["mode"] == "finetune"}
    assert src[("qg", "atlas_fullsim")] == "atlas_like_jet" and src[("qg", "cms_like")] == "atlas_like"
    keys = {(r["task"], r["arch"], r["target"], r["mode"], r["size"], r["seed"]) for r in rows}
    assert len(keys) == n_expected
