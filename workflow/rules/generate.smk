rule pythia_generate:
    """Generate one chunk of 13 TeV pp events with Pythia8 -> particle-level parquet."""
    output:
        f"{RESULTS}/gen/{{process}}/{{chunk}}.parquet",
    params:
        config=stage_config("generate"),
    log:
        f"{LOGS}/generate/{{process}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/generate/{{process}}/{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/generate.yaml"
    group:
        "generate"
    shell:
        "fast2full --log {log} generate --config-json {params.config:q} --process {wildcards.process}"
        " --chunk {wildcards.chunk} --out {output}"


rule hepmc_export:
    """Export one generation chunk to HepMC3 ASCII (only needed by real Delphes)."""
    input:
        f"{RESULTS}/gen/{{process}}/{{chunk}}.parquet",
    output:
        temp(f"{RESULTS}/gen/{{process}}/{{chunk}}.hepmc"),
    log:
        f"{LOGS}/export_hepmc/{{process}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/export_hepmc/{{process}}/{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/generate.yaml"
    shell:
        "fast2full --log {log} export-hepmc --in {input} --out {output}"
