"""envs/*.yaml (`--software-deployment-method conda`): conda-forge packages and pip pins both equal
pyproject.toml's (names mapped by fast2full.hpc.envs.CONDA_FORGE_TO_PYPI), every pin exact, python
equal to requires-python, every rule family has its environment, the code each environment runs
finds its imports there, no environment installs fast2full (each checkout runs its own src/), and a
dry run with conda resolves every environment (conda itself is unreachable here: a stub answers
Snakemake's `conda info` / `conda --version` / channel-priority queries, which is all a dry run asks).
Also: pyproject.toml's dependencies are exactly what src/fast2full imports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from fast2full.cli import COMMANDS
from fast2full.common import InputError
from fast2full.hpc.envs import (
    CONDA_FORGE_TO_PYPI,
    CONDA_ONLY,
    CONDA_TOOLS,
    canonical,
    distributions_of,
    installed_closure,
    job_shell_prefix,
    load_env,
    pyproject_pins,
    third_party_imports,
)

ROOT = Path(__file__).resolve().parents[1]
ENV_DIR = ROOT / "envs"
FAMILIES = ("generate", "simulate", "delphes", "skim", "train")
#: the modules an environment's code starts from, where the subcommand's module would overstate it:
#: `simulate --simulator delphes` imports fast2full.cli.simulate's module-level imports and
#: fast2full.delphes.real, never the builtin engine (the other branch of its run())
ENTRY_MODULES = {"delphes": ["fast2full.cli.options", "fast2full.delphes.real"]}
#: pyproject.toml dependencies that no module imports, and why they are there
NOT_IMPORTED = {
    "xxhash": "uproot needs it beside lz4 to read and write LZ4-compressed ROOT files",
    "snakemake": "runs the workflow",
    "snakemake-executor-plugin-slurm": "--profile slurm (docs/hpc.md)",
}


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
        out.setdefault(env, set()).update(re.findall(r"python -m fast2full --log \{log\} ([a-z][a-z-]*)", block))
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
    """conda-forge pins and pip pins alike equal pyproject.toml's pin of the same PyPI distribution,
    every pin is exact (`==`), pip is used only for what conda-forge lacks, python is `=3.11`."""
    pyproject, _ = pins
    env = load_env(ENV_DIR / f"{family}.yaml")
    assert env.channels[:1] == ["conda-forge"] and "defaults" not in env.channels and "nodefaults" in env.channels
    assert not env.pip_other, f"unpinned or path pip entries in {env.path.name}: {env.pip_other}"
    for name, version in env.conda.items():
        assert version, f"{env.path.name}: conda package {name} is not pinned"
        if name == "python":
            assert env.conda_op.get(name) == "=", f"{env.path.name}: python={version} (the series, not ==)"
            continue
        assert env.conda_op.get(name) == "==", f"{env.path.name}: {name}={version} is not an exact pin (==)"
        assert name in CONDA_FORGE_TO_PYPI or name in CONDA_ONLY or name in CONDA_TOOLS, (
            f"{env.path.name}: conda-forge package {name} is not in fast2full.hpc.envs.CONDA_FORGE_TO_PYPI"
        )
    for name, version in env.pypi_pins().items():
        assert name in pyproject, f"{env.path.name}: {name} is not a dependency in pyproject.toml"
        assert version == pyproject[name], f"{env.path.name}: {name}=={version}, pyproject.toml has {pyproject[name]}"
    conda_as_pypi = {canonical(CONDA_FORGE_TO_PYPI[n]) for n in env.conda if n in CONDA_FORGE_TO_PYPI}
    assert not conda_as_pypi & set(env.pip), (
        f"{env.path.name}: both conda and pip install {conda_as_pypi & set(env.pip)}"
    )
    for name in env.pip:  # pip only for what conda-forge does not ship
        assert name not in {canonical(v) for v in CONDA_FORGE_TO_PYPI.values()}, (
            f"{env.path.name}: {name} is on conda-forge ({CONDA_FORGE_TO_PYPI}): list it there, not under pip"
        )
    assert ("pip" in env.conda) == bool(env.pip), f"{env.path.name}: pin pip exactly when there is a pip section"


def test_the_python_range_is_stated_once_and_used_everywhere(pins):
    """requires-python, the classifiers, every env's python=X.Y, ruff's and mypy's targets say the
    same range; the interpreter running the tests is inside it (tests/test_cli.py checks that too)."""
    _, requires_python = pins
    spec = SpecifierSet(requires_python)
    minors = [f"3.{m}" for m in range(6, 20) if f"3.{m}.0" in spec or f"3.{m}.99" in spec]
    assert minors, requires_python
    # every minor admitted is admitted whole (no patch-level bounds the env files could not state)
    assert all(f"{m}.0" in spec and f"{m}.99" in spec for m in minors), requires_python
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    classified = {
        c.rsplit(":: ", 1)[1]
        for c in project["project"].get("classifiers", [])
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classified == set(minors), (classified, minors)
    for family in FAMILIES:
        env = load_env(ENV_DIR / f"{family}.yaml")
        assert env.conda.get("python") in minors, (
            f"{env.path.name}: python={env.conda.get('python')}, {requires_python}"
        )
    lowest = minors[0]
    assert project["tool"]["ruff"]["target-version"] == "py" + lowest.replace(".", "")
    assert project["tool"]["mypy"]["python_version"] == lowest
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in minors


def test_pyproject_dependencies_are_what_the_code_imports(pins):
    """Every third-party module that src/fast2full imports (at any depth, lazy imports included)
    comes from a direct dependency in pyproject.toml, and every dependency is imported, but those
    named in NOT_IMPORTED with their reason (no torch-geometric, hist or other unused pin)."""
    pyproject, _ = pins
    src = ROOT / "src"
    modules = [
        ".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted((src / "fast2full").rglob("*.py"))
    ]
    imports = third_party_imports(modules, src, lazy_depth=10**6)
    providers = distributions_of(set(imports))
    undeclared = {top: sorted(imports[top]) for top, dists in providers.items() if not set(dists) & set(pyproject)}
    assert not undeclared, f"imported but not a dependency in pyproject.toml: {undeclared}"
    imported = {d for dists in providers.values() for d in dists}
    unused = set(pyproject) - imported - set(NOT_IMPORTED)
    assert not unused, f"dependencies in pyproject.toml that nothing imports: {sorted(unused)}"
    assert set(NOT_IMPORTED) <= set(pyproject) and not set(NOT_IMPORTED) & imported


@pytest.mark.parametrize("family", sorted(_env_commands()))
def test_environment_provides_what_its_code_imports(family):
    """Static: the third-party imports of the stages run in this environment are installed there
    (a conda-forge package counts as its PyPI distribution; dependencies as this venv's metadata
    records them)."""
    env = load_env(ENV_DIR / f"{family}.yaml")
    commands = _env_commands()[family]
    modules = ["fast2full.common", "fast2full.cli"] + ENTRY_MODULES.get(
        family, [f"fast2full.cli.{COMMANDS[c]}" for c in commands if c in COMMANDS]
    )
    imports = third_party_imports(modules, ROOT / "src")
    closure = installed_closure(list(env.pypi_pins()))
    missing = {
        top: files
        for top, dists in distributions_of(set(imports)).items()
        if dists and not set(dists) & closure  # not installed in this venv at all: optional import
        for files in [sorted(imports[top])]
    }
    assert not missing, f"envs/{family}.yaml lacks what {sorted(commands)} import: {missing}"


def test_no_environment_installs_a_checkout():
    """An environment may be shared by several checkouts (--conda-prefix): none installs fast2full
    (no post-deploy script, no `-e`/path pip entry); every rule runs `python -m fast2full`."""
    assert not list(ENV_DIR.glob("*.post-deploy.sh")), "a post-deploy script would install one checkout's code"
    for path in ENV_DIR.glob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"^\s*-\s*(-e\b|\.|/|fast2full)", text, flags=re.M), path.name
    for block in _rule_blocks():
        for cmd in re.findall(r"^\s*shell:\s*\n((?:\s*\"[^\n]*\n)+)", block, flags=re.M):
            assert not re.search(r"(?<!-m )\bfast2full --", cmd), f"a rule calls the fast2full script: {cmd}"


def test_pin_files_only_beside_environments_without_pip():
    """Snakemake builds an environment from envs/<env>.<platform>.pin.txt when it exists (an explicit
    list: no pip packages), so a pin file beside an environment with a pip section would build it
    without those packages (docs/hpc.md, Lock files)."""
    for pin in ENV_DIR.glob("*.pin.txt"):
        env_file = ENV_DIR / (pin.name.split(".")[0] + ".yaml")
        assert env_file.is_file(), f"{pin.name}: no {env_file.name} beside it"
        assert not load_env(env_file).pip, f"{pin.name}: {env_file.name} has pip packages a pin file cannot hold"


def test_jobs_run_this_checkouts_code(tmp_path):
    """The job shell prefix puts this checkout's src/ first: another fast2full earlier on the
    caller's PYTHONPATH (another checkout) is not the one a job imports; an unset PYTHONPATH gets
    no empty entry (which Python would read as the job's working directory)."""
    other = tmp_path / "other_checkout" / "src" / "fast2full"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("raise ImportError('the other checkout was imported')\n")
    probe = "python -c \"import os, fast2full; print(fast2full.__file__); print(os.environ['PYTHONPATH'])\""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for pythonpath in (str(other.parent), None):
        if pythonpath is None:
            env.pop("PYTHONPATH", None)
        else:
            env["PYTHONPATH"] = pythonpath
        res = subprocess.run(
            ["bash", "-c", job_shell_prefix(ROOT / "src") + probe],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        file, entries = res.stdout.split()
        assert Path(file) == ROOT / "src" / "fast2full" / "__init__.py"
        assert entries.split(os.pathsep) == [str(ROOT / "src")] + ([pythonpath] if pythonpath else [])
    snakefile = (ROOT / "Snakefile").read_text()
    assert "shell.prefix(job_shell_prefix(" in snakefile


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
    # at the repository root, where config.yaml's relative paths (cards, local PHYSLITE files) point.
    # A dry run writes no outputs.
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
