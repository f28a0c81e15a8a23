"""envs/*.yaml (`--software-deployment-method conda`): pins equal pyproject.toml's, every rule family
has its environment, the code each environment runs finds its imports there, and a dry run with
conda resolves every environment (conda itself is unreachable here: a stub answers Snakemake's
`conda info` / `conda --version` / channel-priority queries, which is all a dry run asks)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fast2full.cli import COMMANDS
from fast2full.common import InputError
from fast2full.hpc.envs import (
    distributions_of,
    installed_closure,
    load_env,
    pyproject_pins,
    third_party_imports,
)

ROOT = Path(__file__).resolve().parents[1]
ENV_DIR = ROOT / "envs"
FAMILIES = ("generate", "simulate", "delphes", "skim", "train")
#: conda-only packages (no PyPI wheel) that pyproject.toml cannot pin
CONDA_ONLY = {"delphes", "hepmc3"}
PIPE_TOOLS = {"python", "pip"}


def _rule_blocks() -> list[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    return re.split(r"\n(?=\s*rule \w+:)", text)


def _env_commands() -> dict[str, set[str]]:
    """env name -> the `fast2full <subcommand>`s its rules run."""
    out: dict[str, set[str]] = {}
    for block in _rule_blocks():
        m = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
        if not m:
            continue
        env = Path(m.group(1)).name.removesuffix(".yaml")
        out.setdefault(env, set()).update(re.findall(r"fast2full --log \{log\} ([a-z][a-z-]*)", block))
    return out


@pytest.fixture(scope="module")
def pins() -> tuple[dict[str, str], str]:
    return pyproject_pins(ROOT / "pyproject.toml")


def test_every_rule_family_has_an_environment():
    assert {p.stem for p in ENV_DIR.glob("*.yaml")} >= set(FAMILIES)
    used = _env_commands()
    assert set(used) <= {p.stem for p in ENV_DIR.glob("*.yaml")}, "a rule names a missing envs/*.yaml"
    for block in _rule_blocks():
        if re.search(r"^\s*(shell|run|script):", block, flags=re.M) and "rule " in block:
            assert "conda:" in block, block.splitlines()[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_pins_match_pyproject(family, pins):
    pyproject, requires_python = pins
    env = load_env(ENV_DIR / f"{family}.yaml")
    assert env.channels[:1] == ["conda-forge"] and "defaults" not in env.channels
    assert not env.pip_other, f"unpinned or path pip entries in {env.path.name}: {env.pip_other}"
    for name, version in env.pip.items():
        assert name in pyproject, f"{env.path.name}: {name} is not a dependency in pyproject.toml"
        assert version == pyproject[name], f"{env.path.name}: {name}=={version}, pyproject.toml has {pyproject[name]}"
    for name, version in env.conda.items():
        if name == "python":
            assert version and requires_python.startswith(f">={version}"), (version, requires_python)
        elif name not in PIPE_TOOLS:
            assert name in CONDA_ONLY, f"{env.path.name}: conda package {name} should be a pip pin"
            assert version, f"{env.path.name}: conda package {name} is not pinned"


@pytest.mark.parametrize("family", sorted(set(_env_commands()) - {"delphes"}))
def test_environment_provides_what_its_code_imports(family):
    """Static: the third-party imports of the stages run in this environment are installed there."""
    env = load_env(ENV_DIR / f"{family}.yaml")
    assert env.post_deploy.is_file(), f"{env.path.name}: fast2full itself is installed by {env.post_deploy.name}"
    assert os.access(env.post_deploy, os.X_OK) or env.post_deploy.stat().st_mode & stat.S_IRUSR
    commands = _env_commands()[family]
    modules = ["fast2full.common"] + [f"fast2full.cli.{COMMANDS[c]}" for c in commands if c in COMMANDS]
    imports = third_party_imports(modules, ROOT / "src")
    closure = installed_closure(list(env.pip))
    missing = {
        top: files
        for top, dists in distributions_of(set(imports)).items()
        if dists and not set(dists) & closure  # not installed in this venv at all: optional import
        for files in [sorted(imports[top])]
    }
    assert not missing, f"envs/{family}.yaml lacks what {sorted(commands)} import: {missing}"


def test_malformed_env_file_is_named(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("channels: [conda-forge]\ndependencies: python=3.11\n")
    with pytest.raises(InputError, match="broken.yaml"):
        load_env(bad)


CONDA_STUB = """#!/bin/sh
# Answers only what `snakemake -n --software-deployment-method conda` asks.
case "$*" in
  "info --json") echo '{{"conda_prefix": "{prefix}", "platform": "linux-64", "conda_version": "24.11.0"}}' ;;
  "--version") echo "conda 24.11.0" ;;
  "config --get channel_priority --json") echo '{{"get": {{"channel_priority": "strict"}}, "success": true}}' ;;
  *) echo "conda stub: no answer for: $*" >&2; exit 1 ;;
esac
"""


def test_conda_dry_run_resolves_every_environment(tmp_path):
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "conda"
    stub.write_text(CONDA_STUB.format(prefix=tmp_path / "conda"))
    stub.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{stub_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # at the repository root, as documented: Delphes cards `source` files relative to the working
    # directory, so the DAG of the full workflow resolves only there.  A dry run writes no outputs.
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--software-deployment-method", "conda"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    created = set(re.findall(r"Conda environment envs/(\w+)\.yaml will be created", out))
    # the default workflow (builtin simulator) uses every environment except real Delphes
    assert created == set(_env_commands()) - {"delphes"}, out[-3000:]
