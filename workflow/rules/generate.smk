rule pythia_generate:
    """Generate one chunk of 13 TeV pp events with Pythia8 -> particle-level parquet."""
    output:
        PATHS.gen("{process}", "{chunk}"),
    log:
        PATHS.log("generate", "{process}", "{chunk}"),
    benchmark:
        PATHS.bench("generate", "{process}", "{chunk}")
    group:
        "generate"
    conda:
        "../../envs/generate.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        config=stage_config("generate"),
    shell:
        "python -m fast2full --log {log} generate --config-json {params.config:q} --process {wildcards.process}"
        " --chunk {wildcards.chunk} --out {output}"


rule hepmc_export:
    """Export one generation chunk to HepMC3 ASCII (only needed by real Delphes)."""
    input:
        PATHS.gen("{process}", "{chunk}"),
    output:
        temp(PATHS.gen("{process}", "{chunk}", "hepmc")),
    log:
        PATHS.log("export_hepmc", "{process}", "{chunk}"),
    benchmark:
        PATHS.bench("export_hepmc", "{process}", "{chunk}")
    conda:
        "../../envs/generate.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m fast2full --log {log} export-hepmc --in {input} --out {output}"
