"""The conda environments in ``envs/`` (``--software-deployment-method conda``) against pyproject.toml.

The environment files name conda-forge packages; pyproject.toml names PyPI distributions.
:data:`CONDA_FORGE_TO_PYPI` is the one table between the two.  Two checks that need no conda: every
pin in an environment (conda-forge or pip) equals the pin in pyproject.toml of the same distribution
(one source of versions), and every third-party package that the code run by an environment's rules
imports is installed there (pinned in the file, or a dependency of a pinned package).

No environment installs fast2full itself: the rules run ``python -m fast2full`` with the checkout's
``src/`` on ``PYTHONPATH`` (the Snakefile's ``shell.prefix``), so one environment can serve any
number of checkouts (``--conda-prefix``) and each of them runs its own code.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from fast2full.common import InputError

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(==|=)\s*([^=\s]+))?\s*$")

#: conda-forge package -> the PyPI distribution it packages, for every conda-forge package that the
#: environment files use (the one place the two names meet; a package missing here fails
#: tests/test_envs.py).  Checked on anaconda.org/conda-forge: ``fastjet`` is scikit-hep's Python
#: bindings (the C++ library alone is ``fastjet-cxx``), ``lz4`` the Python bindings (``lz4-c`` the C
#: library), ``python-xxhash`` the Python bindings of xxhash, ``pytorch-cpu`` the CPU build of PyTorch
#: (``pytorch-gpu`` the CUDA one), ``matplotlib-base`` matplotlib without a GUI toolkit.
#: Not here: ``pythia8mc`` (conda-forge's ``pythia8`` installs the module as ``pythia8``, while the
#: code imports ``pythia8mc`` and calls its ``nextBatch``), so it stays a pip pin.
CONDA_FORGE_TO_PYPI = {
    "atlasopenmagic": "atlasopenmagic",
    "awkward": "awkward",
    "cycler": "cycler",
    "fastjet": "fastjet",
    "jsonschema": "jsonschema",
    "lightning": "lightning",
    "lz4": "lz4",
    "matplotlib-base": "matplotlib",
    "mplhep": "mplhep",
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "pyhepmc": "pyhepmc",
    "python-xxhash": "xxhash",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "pyyaml": "pyyaml",
    "requests": "requests",
    "scipy": "scipy",
    "uproot": "uproot",
    "urllib3": "urllib3",
    "vector": "vector",
}
#: conda-forge packages with no PyPI distribution in pyproject.toml (C++ programs and libraries)
CONDA_ONLY = frozenset({"delphes", "hepmc3"})
#: the interpreter and the installer: pinned in every file, not dependencies of the code
CONDA_TOOLS = frozenset({"python", "pip"})


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class CondaEnv:
    """One ``envs/<name>.yaml``: conda specs (name -> version or None, and the operator: ``==`` exact,
    ``=`` that version's series) and pip pins (name -> version)."""

    path: Path
    channels: list[str]
    conda: dict[str, str | None] = field(default_factory=dict)
    conda_op: dict[str, str] = field(default_factory=dict)
    pip: dict[str, str] = field(default_factory=dict)
    pip_other: list[str] = field(default_factory=list)  # pip lines that are not name==version

    def pypi_pins(self) -> dict[str, str]:
        """PyPI distribution -> version of every conda-forge package with a PyPI counterpart
        (:data:`CONDA_FORGE_TO_PYPI`) and every pip pin."""
        out = {canonical(CONDA_FORGE_TO_PYPI[n]): v for n, v in self.conda.items() if n in CONDA_FORGE_TO_PYPI and v}
        return out | self.pip


def load_env(path: str | Path) -> CondaEnv:
    """Parse a conda environment file; raise InputError naming the file on a malformed one."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"not a readable YAML file: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("dependencies"), list):
        raise InputError(path, "no `dependencies:` list")
    env = CondaEnv(path=path, channels=list(doc.get("channels") or []))
    for dep in doc["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            for line in dep["pip"]:
                name, sep, version = str(line).partition("==")
                if sep and _REQ_NAME.fullmatch(name.strip()):
                    env.pip[canonical(name.strip())] = version.strip()
                else:
                    env.pip_other.append(str(line))
        elif isinstance(dep, str):
            m = _CONDA_SPEC.match(dep)
            if not m:
                raise InputError(path, f"conda dependency {dep!r} is not `name`, `name=version` or `name==version`")
            name = canonical(m.group(1))
            env.conda[name] = m.group(3)
            if m.group(2):
                env.conda_op[name] = m.group(2)
        else:
            raise InputError(path, f"unexpected dependency entry {dep!r}")
    return env


def pyproject_pins(path: str | Path) -> tuple[dict[str, str], str]:
    """(distribution -> pinned version, requires-python) from pyproject.toml's [project] table
    (its ``dependencies``; the ``test`` and ``lint`` extras are not used by the workflow's rules)."""
    path = Path(path)
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise InputError(path, f"no readable [project] table: {exc}") from exc
    pins: dict[str, str] = {}
    for req in project.get("dependencies", []):
        name, sep, version = req.partition("==")
        if not sep:
            raise InputError(path, f"dependency {req!r} is not pinned with ==")
        pins[canonical(name.strip())] = version.split(";")[0].strip()
    return pins, str(project.get("requires-python", ""))


def _module_file(module: str, src_root: Path) -> Path | None:
    base = src_root.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs at import time (outside any function body)."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child, not in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return out


def third_party_imports(
    modules: list[str], src_root: str | Path, package: str = "fast2full", lazy_depth: int = 1
) -> dict[str, set[str]]:
    """Top-level third-party modules that running ``modules`` imports.

    ``package`` modules are followed recursively through imports at any level.  Third-party imports
    at module level always count; those inside functions count only in the starting modules and in
    the ``package`` modules they import directly (depth <= ``lazy_depth``): a stage's own lazy imports
    run, a lazy import in some helper module the stage merely reads from (e.g. the Pythia import in
    ``fast2full.generate`` reached through ``read_particles``) does not.
    Returns top-level name -> importing files.
    """
    import sys

    src_root = Path(src_root)
    depth: dict[str, int] = {}
    todo: list[tuple[str, int]] = [(m, 0) for m in modules]
    found: dict[str, set[str]] = {}
    while todo:
        mod, d = todo.pop(0)  # breadth first: each module gets its smallest depth
        if mod in depth and depth[mod] <= d:
            continue
        depth[mod] = d
        # importing a.b.c runs a/__init__ and a/b/__init__ too
        parts = mod.split(".")
        todo += [(".".join(parts[:i]), d) for i in range(1, len(parts))]
        file = _module_file(mod, src_root)
        if file is None:
            continue
        tree = ast.parse(file.read_text(), filename=str(file))
        for node, at_import in _imports(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif node.level:  # relative import inside the package
                pkg = mod if file.name == "__init__.py" else mod.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rsplit(".", 1)[0]
                base = f"{pkg}.{node.module}" if node.module else pkg
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top == package:
                    if _module_file(name, src_root) is not None:
                        todo.append((name, d + 1))
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    if at_import or d <= lazy_depth:
                        found.setdefault(top, set()).add(str(file.relative_to(src_root)))
    return found


def installed_closure(dists: list[str]) -> set[str]:
    """Distributions installed by pip-installing ``dists``: their (non-extra) requirements, recursively,
    as recorded in this interpreter's installed metadata."""
    closure: set[str] = set()
    todo = [canonical(d) for d in dists]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in reqs:
            if "extra ==" in req.replace(" ", " "):
                continue
            m = _REQ_NAME.match(req)
            if m:
                todo.append(canonical(m.group(1)))
    return closure


def distributions_of(top_level_modules: set[str] | list[str]) -> dict[str, list[str]]:
    """Top-level module -> the installed distributions providing it (empty: not installed here)."""
    mapping = metadata.packages_distributions()
    return {m: sorted({canonical(d) for d in mapping.get(m, [])}) for m in top_level_modules}


def job_shell_prefix(src: str | Path) -> str:
    """The bash text the Snakefile puts before every job's shell command (``shell.prefix``): strict
    mode (Snakemake's default prefix) and ``src`` first on ``PYTHONPATH``, so ``python -m fast2full``
    runs the checkout's code inside any environment: the pip route's venv, or a conda environment
    that holds no fast2full (Snakemake drops the caller's ``PYTHONPATH`` there; this line comes
    after the activation).  An empty ``PYTHONPATH`` adds no empty entry (that would be the cwd)."""
    quoted = "'" + str(Path(src).resolve()).replace("'", "'\\''") + "'"
    return f"set -euo pipefail; export PYTHONPATH={quoted}${{PYTHONPATH:+:$PYTHONPATH}}; "
