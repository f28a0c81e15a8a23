#!/usr/bin/env bash
# Start a single-node SLURM on this machine (root): writes /etc/slurm/slurm.conf, starts munged,
# slurmctld and slurmd, waits until the node is idle.  Needs the fast2full package (activate .venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash workflow/slurm/install-local-slurm.sh
exec python -m fast2full.hpc.local_slurm start "$@"
