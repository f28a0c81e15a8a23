"""The Snakemake DAG: dry runs of the real Snakefile (no jobs executed)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "-n", "--nolock", "--ignore-incomplete", "--cores", "1", *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dry_run_lists_whole_dag(repo_root):
    res = dry_run(repo_root, "all", "--forceall")  # whatever results/ already holds
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    for rule in [
        "pythia_generate",
        "delphes_simulate",
        "delphes_skim",
        "physlite_skim",
        "tensorize_source",
        "tensorize_target",
        "train_pretrain",
        "train_target",
        "aggregate_results",
        "plot_features",
        "publish_model",
    ]:
        assert rule in out, f"rule {rule} missing from the DAG"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("bogus_key", 1, "invalid key 'bogus_key'"),
        ("simulator", "geant4", "invalid key 'simulator'"),
    ],
)
def test_bad_config_fails_before_any_job(repo_root, tmp_path, key, value, message):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    cfg[key] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = dry_run(repo_root, "all", "--configfile", str(bad))
    assert res.returncode != 0
    assert message in res.stderr + res.stdout


def test_missing_card_is_named(repo_root, tmp_path):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    cfg["detectors"]["cms_like"]["card"] = "cards/no_such_card.tcl"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = dry_run(repo_root, "all", "--configfile", str(bad))
    assert res.returncode != 0
    assert "detectors.cms_like.card" in res.stderr + res.stdout


def test_stream_option_skims_remote_files_without_fetch(repo_root, tmp_path):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    cfg["opendata"]["stream"] = True
    cfg["opendata"]["local_files"] = None  # null deletes the key of config.yaml (overlay)
    p = tmp_path / "stream.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = dry_run(repo_root, "all", "--forceall", "--configfile", str(p), "-p")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "opendata_fetch" not in out and "opendata_manifest" in out
    assert "--manifest results/opendata/manifest.json --index 0" in out
