#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from its working directory: the fast2full
# repository root.  It installs fast2full itself (editable, no dependencies: the YAML pins them).
set -euo pipefail
if ! grep -qs '^name = "fast2full"' pyproject.toml; then
  echo "post-deploy: no fast2full pyproject.toml in $PWD: run snakemake from the repository root" >&2
  exit 1
fi
python -m pip install --no-deps -e .
