# Cluster execution: trivial or network-bound steps run on the submit host, not as SLURM jobs
# (compute nodes often have no internet; a model export is a file copy).  Sizing of every rule:
# profiles/default/config.yaml; submission settings: slurm/config.yaml; see docs/hpc.md.
localrules:
    all,
    opendata_manifest,
    opendata_fetch,
    publish_model,
