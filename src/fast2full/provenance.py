"""Provenance of an output: fast2full version, git commit of the code, digest of the config.

Every ``metrics.json``, model card and ``summary.md`` carries :func:`provenance` so a number can be
traced to the code and settings that made it:

``{"fast2full_version": "0.1.0", "git_commit": "5e797a3…" (+ "-dirty" if the work tree has
uncommitted changes to tracked files; "unknown" outside a git checkout), "config_digest": "sha256:…"}``

The config digest is the SHA-256 of the config as canonical JSON (sorted keys, no whitespace), so the
same settings give the same digest whatever the YAML layout or comments.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

import fast2full

UNKNOWN = "unknown"
KEYS = ("fast2full_version", "git_commit", "config_digest")


def config_digest(config: dict | None) -> str:
    """``sha256:<hex>`` of ``config`` as canonical JSON; ``unknown`` for None."""
    if config is None:
        return UNKNOWN
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@functools.lru_cache(maxsize=8)
def git_commit(where: str | None = None) -> str:
    """The commit of the git checkout holding ``where`` (default: this package's source), with
    ``-dirty`` if tracked files differ from it; ``unknown`` when there is no git or no checkout.
    ``FAST2FULL_GIT_COMMIT`` overrides (for builds without ``.git``)."""
    env = os.environ.get("FAST2FULL_GIT_COMMIT")
    if env:
        return env
    cwd = Path(where) if where else Path(fast2full.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return f"{head}-dirty" if dirty else head or UNKNOWN


def provenance(config: dict | None = None) -> dict[str, str]:
    """The provenance record of an output made with ``config``."""
    return {
        "fast2full_version": fast2full.__version__,
        "git_commit": git_commit(),
        "config_digest": config_digest(config),
    }


def markdown(prov: dict) -> str:
    """One Markdown line: ``fast2full 0.1.0, commit `abc…`, config `sha256:…```."""
    return (
        f"fast2full {prov.get('fast2full_version', UNKNOWN)}, commit `{prov.get('git_commit', UNKNOWN)}`, "
        f"config `{prov.get('config_digest', UNKNOWN)}`"
    )


__all__ = ["provenance", "config_digest", "git_commit", "markdown", "KEYS"]
