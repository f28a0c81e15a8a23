#!/usr/bin/env bash
# Stop the single-node SLURM started by start-local-slurm.sh (slurmd, slurmctld, munged).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python -m fast2full.hpc.local_slurm stop "$@"
