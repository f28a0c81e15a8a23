#!/usr/bin/env bash
# Install Debian's slurm-wlm and munge for a throw-away single-node SLURM (root only; CI runs as root).
# Does nothing when the binaries are already there; never fails the caller when it cannot install.
set -uo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-local-slurm: not root or no apt-get: SLURM tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
  || echo "install-local-slurm: apt-get failed: SLURM tests will skip" >&2
exit 0
