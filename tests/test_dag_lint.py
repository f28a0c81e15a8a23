"""The workflow passes Snakemake's own linter (issue 13, item 4); .ci/run also runs ruff, snakefmt, mypy."""

import subprocess
import sys


def test_snakemake_lint_is_clean(repo_root):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-4000:]
