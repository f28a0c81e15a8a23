rule tensorize_source:
    """Objects -> padded tensors for the source domain; fixes the normalisation (train split)."""
    input:
        lambda w: skim_files(SOURCE),
    output:
        splits=expand(f"{RESULTS}/tensors/{{{{task}}}}/{SOURCE}/{{split}}.parquet", split=["train", "val", "test"]),
        norm=f"{RESULTS}/tensors/{{task}}/{SOURCE}/norm.json",
    params:
        config=stage_config("tensorize"),
        outdir=lambda w: f"{RESULTS}/tensors/{w.task}/{SOURCE}",
        domain=SOURCE,
    log:
        f"{LOGS}/tensorize/{{task}}/{SOURCE}.log",
    benchmark:
        f"{BENCH}/tensorize/{{task}}/{SOURCE}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {params.domain} --outdir {params.outdir} --inputs {input}"


rule tensorize_target:
    """Objects -> padded tensors for a target domain, normalised with the source statistics."""
    input:
        objects=lambda w: skim_files(w.domain),
        norm=f"{RESULTS}/tensors/{{task}}/{SOURCE}/norm.json",
    output:
        expand(f"{RESULTS}/tensors/{{{{task}}}}/{{{{domain}}}}/{{split}}.parquet", split=["train", "val", "test"]),
    params:
        config=stage_config("tensorize"),
        outdir=lambda w: f"{RESULTS}/tensors/{w.task}/{w.domain}",
    wildcard_constraints:
        domain="|".join(t for t in TARGETS if t != SOURCE),
    log:
        f"{LOGS}/tensorize/{{task}}/{{domain}}.log",
    benchmark:
        f"{BENCH}/tensorize/{{task}}/{{domain}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {wildcards.domain} --norm {input.norm} --outdir {params.outdir} --inputs {input.objects}"


rule plot_features:
    """Feature comparison across the three domains (paper figures 1-3)."""
    input:
        lambda w: [f"{RESULTS}/tensors/{w.task}/{d}/train.parquet" for d in feature_domains(w.task)],
    output:
        pdf=f"{RESULTS}/figures/features_{{task}}.pdf",
        png=report(f"{RESULTS}/figures/features_{{task}}.png", caption="../report/features.rst",
                   category=lambda w: REPORT_TASKS[w.task], subcategory="Input features (figs. 1-3)"),
    log:
        f"{LOGS}/plot_features/{{task}}.log",
    benchmark:
        f"{BENCH}/plot_features/{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} plot-features --task {wildcards.task} --out {output.pdf} --inputs {input}"
