def physlite_source(w):
    for f in physlite_files(w.sample):
        if Path(f).stem == w.file:
            return f
    raise ValueError(f"no PHYSLITE file {w.file} for sample {w.sample}")


def physlite_input(w):
    """The PHYSLITE file, or the manifest (for its URL) when the file is streamed."""
    f = physlite_source(w)
    return MANIFEST if f.startswith(STREAM_PREFIX) else f


def physlite_args(w, input):
    f = physlite_source(w)
    return f"--manifest {input[0]} --index {w.file}" if f.startswith(STREAM_PREFIX) else f"--in {input[0]}"


rule physlite_skim:
    """coffea skim of one PHYSLITE file -> objects parquet (full-simulation domain)."""
    input:
        physlite_input,
    output:
        f"{RESULTS}/skim/{FULLSIM}/{{sample}}/{{file}}.parquet",
    params:
        config=CONFIGFILE,
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
        "fast2full --log {log} skim --source physlite --config {params.config}"
        " --sample {wildcards.sample} {params.source} --out {output}"


rule delphes_skim:
    """Delphes tree -> objects parquet (the same object schema and selection as PHYSLITE)."""
    input:
        f"{RESULTS}/sim/{{detector}}/{{process}}/{{chunk}}.root",
    output:
        f"{RESULTS}/skim/{{detector}}/{{process}}/{{chunk}}.parquet",
    params:
        config=CONFIGFILE,
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
        "fast2full --log {log} skim --source delphes --config {params.config}"
        " --sample {wildcards.process} --in {input} --out {output}"
