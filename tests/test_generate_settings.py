"""Pythia settings are checked before any job runs: names exist, values read back as written."""

import subprocess
import sys

import pytest
import yaml

from fast2full.cli import main
from fast2full.config import ConfigError
from fast2full.pythia_settings import check_config, check_line, new_pythia


@pytest.fixture(scope="module")
def pythia():
    p, hook = new_pythia()
    yield p
    del hook


def _cfg(repo_root, name="config.yaml"):
    return yaml.safe_load((repo_root / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "config.paper.yaml"])
def test_project_configs_pass(repo_root, name):
    cfg = _cfg(repo_root, name)
    n = check_config(cfg, name)
    assert n == len(cfg["generation"]["common_settings"]) + 1 + sum(
        len(p["settings"]) for p in cfg["processes"].values()
    )


@pytest.mark.parametrize(
    "line, cause",
    [
        ("PhaseSpace:pTHatMin = 3O.", "'3O.' is not a number"),  # Pythia itself would read 3 GeV
        ("PhaseSpace:pTHatMn = 30.", "'PhaseSpace:pTHatMn' is not a Pythia setting"),
        ("PhaseSpace:pTHatMin = -5", "Pythia rejected it"),  # out of range
        ("WeakZ0:gmZmode = 2.5", "not an integer"),
        ("Top:gg2ttbar = of", "not a flag"),  # Pythia itself would read 'of' as off
        ("ResonanceDecayFilter:daughters = 11 1x", "not a list of integers"),
        ("24:onIfAny = 11 l3 15", "not a list of PDG codes"),
        ("24:onModee = off", "Pythia rejected it"),
        ("9999999:onMode = off", "Pythia rejected it"),
        ("23:mMin = 5O.", "not a number"),
        ("Top:gg2ttbar", "not a 'Key = value' line"),
    ],
)
def test_bad_lines(pythia, line, cause):
    got = check_line(pythia, line)
    assert got is not None and cause in got


@pytest.mark.parametrize(
    "line",
    [
        "PhaseSpace:pTHatMin = 30.",
        "phasespace:pthatmin=30",
        "Beams:frameType 1",
        "Top:gg2ttbar = on",
        "Top:gg2ttbar = off",
        "24:onIfAny = 11 13 15",
        "23:mMin = 50.",
        "ResonanceDecayFilter:mothers = 24",
        "! a comment",
        "PDF:pSet = 13",
        "Init:showChangedSettings = off",
    ],
)
def test_good_lines(pythia, line):
    assert check_line(pythia, line) is None


def test_value_read_back_differs(pythia):
    # a mode whose allowed range Pythia enforces by refusing; Random:seed above 900000000 is refused
    assert "Pythia rejected it" in check_line(pythia, "Random:seed = 900000001")


def test_error_names_process_key_and_line(repo_root):
    cfg = _cfg(repo_root)
    cfg["processes"]["zjets"]["settings"].append("PhaseSpace:pTHatMin = 3O.")
    i = len(cfg["processes"]["zjets"]["settings"]) - 1
    with pytest.raises(ConfigError) as err:
        check_config(cfg, "my.yaml")
    msg = str(err.value)
    assert f"my.yaml: invalid key 'processes.zjets.settings[{i}]'" in msg
    assert "'PhaseSpace:pTHatMin = 3O.'" in msg and "process 'zjets'" in msg and "not a number" in msg
    cfg = _cfg(repo_root)
    cfg["generation"]["common_settings"].append("Next:numberCountt = 0")
    with pytest.raises(ConfigError, match=r"generation\.common_settings\[\d+\].*every process.*not a Pythia setting"):
        check_config(cfg)


def test_cli_validate_config_and_generate_refuse(repo_root, tmp_path, monkeypatch):
    cfg = _cfg(repo_root)
    cfg["processes"]["zjets"]["settings"].append("PhaseSpace:pTHatMin = 3O.")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(repo_root)
    assert main(["validate-config", str(bad)]) == 1
    out = tmp_path / "z.parquet"
    assert main(["generate", "--config", str(bad), "--process", "zjets", "--chunk", "0", "--out", str(out)]) == 1
    assert not out.exists()


def test_snakemake_dry_run_refuses(repo_root, tmp_path):
    cfg = _cfg(repo_root)
    cfg["processes"]["dijet"]["settings"] = ["HardQCD:all = on", "PhaseSpace:pTHatMin = 3O."]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1", "all", "--configfile", str(bad)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "processes.dijet.settings[1]" in out and "PhaseSpace:pTHatMin = 3O." in out and "not a number" in out
