rule opendata_manifest:
    """Ask atlasopenmagic (or a saved metadata file) for the configured PHYSLITE samples."""
    input:
        # the saved atlasopenmagic metadata file of offline nodes, when configured: editing it reruns
        lambda w: [f] if (f := config.get("opendata", {}).get("metadata_file")) else [],
    output:
        MANIFEST,
    log:
        PATHS.log("opendata", "manifest"),
    benchmark:
        PATHS.bench("opendata", "manifest")
    conda:
        "../../envs/skim.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        config=stage_config("manifest"),
    shell:
        "python -m fast2full --log {log} manifest --config-json {params.config:q} --out {output}"


rule opendata_fetch:
    """Download one PHYSLITE file: retries, resume, checksum, atomic rename."""
    input:
        manifest=rules.opendata_manifest.output[0],
    output:
        PATHS.physlite("{sample}", "{index}"),
    log:
        PATHS.log("opendata", "fetch", "{sample}", "{index}"),
    benchmark:
        PATHS.bench("opendata", "fetch", "{sample}", "{index}")
    conda:
        "../../envs/skim.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
    shell:
        "python -m fast2full --log {log} fetch --manifest {input.manifest} --sample {wildcards.sample}"
        " --index {wildcards.index} --out {output}"
