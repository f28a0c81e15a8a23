rule physlite_skim:
    """PHYSLITE skim (uproot) of one file, downloaded or streamed -> objects parquet (full-simulation domain)."""
    input:
        physlite_input,
    output:
        PATHS.skim(FULLSIM, "{sample}", "{file}"),
    log:
        PATHS.log("skim", FULLSIM, "{sample}", "{file}"),
    benchmark:
        PATHS.bench("skim", FULLSIM, "{sample}", "{file}")
    conda:
        "../../envs/skim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=stage_config("skim_physlite"),
        source=physlite_args,
    shell:
        "python -m fast2full --log {log} skim --source physlite --config-json {params.config:q}"
        " --sample {wildcards.sample} {params.source} --out {output}"


rule delphes_skim:
    """Delphes tree -> objects parquet (the same object schema and selection as PHYSLITE)."""
    input:
        PATHS.sim("{detector}", "{process}", "{chunk}"),
    output:
        PATHS.skim("{detector}", "{process}", "{chunk}"),
    log:
        PATHS.log("skim", "{detector}", "{process}", "{chunk}"),
    benchmark:
        PATHS.bench("skim", "{detector}", "{process}", "{chunk}")
    conda:
        "../../envs/skim.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=stage_config("skim_delphes"),
    shell:
        "python -m fast2full --log {log} skim --source delphes --config-json {params.config:q}"
        " --sample {wildcards.process} --in {input} --out {output}"
