rule physlite_skim:
    """PHYSLITE skim (uproot) of one file, downloaded or streamed -> objects parquet (full-simulation domain)."""
    input:
        physlite_input,
    output:
        f"{RESULTS}/skim/{FULLSIM}/{{sample}}/{{file}}.parquet",
    params:
        config=stage_config("skim_physlite"),
        source=physlite_args,
    log:
        f"{LOGS}/skim/{FULLSIM}/{{sample}}/{{file}}.log",
    benchmark:
        f"{BENCH}/skim/{FULLSIM}/{{sample}}/{{file}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/skim.yaml"
    shell:
        "fast2full --log {log} skim --source physlite --config-json {params.config:q}"
        " --sample {wildcards.sample} {params.source} --out {output}"


rule delphes_skim:
    """Delphes tree -> objects parquet (the same object schema and selection as PHYSLITE)."""
    input:
        f"{RESULTS}/sim/{{detector}}/{{process}}/{{chunk}}.root",
    output:
        f"{RESULTS}/skim/{{detector}}/{{process}}/{{chunk}}.parquet",
    params:
        config=stage_config("skim_delphes"),
    log:
        f"{LOGS}/skim/{{detector}}/{{process}}/{{chunk}}.log",
    benchmark:
        f"{BENCH}/skim/{{detector}}/{{process}}/{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/skim.yaml"
    shell:
        "fast2full --log {log} skim --source delphes --config-json {params.config:q}"
        " --sample {wildcards.process} --in {input} --out {output}"
