"""HPC support: a throw-away single-node SLURM for tests and demos, and paper-scale sizing.

``local_slurm`` writes ``slurm.conf`` and starts/stops munged, slurmctld and slurmd on this machine;
``sizing`` turns a Snakemake dry run plus the benchmark TSVs of a small run into a cluster request.
"""
