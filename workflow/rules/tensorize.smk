rule tensorize_source:
    """Objects -> padded tensors for the source domain; fixes the normalisation (train split)."""
    input:
        lambda w: skim_files(SOURCE),
    output:
        splits=PATHS.tensor_files("{task}", SOURCE),
        norm=PATHS.norm("{task}", SOURCE),
    log:
        PATHS.log("tensorize", "{task}", SOURCE),
    benchmark:
        PATHS.bench("tensorize", "{task}", SOURCE)
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("tensorize"),
        outdir=lambda w: PATHS.tensor_dir(w.task, SOURCE),
        domain=SOURCE,
    shell:
        "python -m fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {params.domain} --outdir {params.outdir} --inputs {input}"


rule tensorize_target:
    """Objects -> padded tensors for a target domain, normalised with the source statistics."""
    input:
        objects=lambda w: skim_files(w.domain),
        norm=PATHS.norm("{task}", SOURCE),
    output:
        PATHS.tensor_files("{task}", "{domain}"),
    log:
        PATHS.log("tensorize", "{task}", "{domain}"),
    benchmark:
        PATHS.bench("tensorize", "{task}", "{domain}")
    wildcard_constraints:
        domain="|".join(t for t in TARGETS if t != SOURCE),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("tensorize"),
        outdir=lambda w: PATHS.tensor_dir(w.task, w.domain),
    shell:
        "python -m fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {wildcards.domain} --norm {input.norm} --outdir {params.outdir} --inputs {input.objects}"


rule plot_features:
    """Feature comparison across the three domains (paper figures 1-3)."""
    input:
        lambda w: [PATHS.tensor(w.task, d, "train") for d in feature_domains(w.task)],
    output:
        pdf=PATHS.figure("features_{task}.pdf"),
        png=report(
            PATHS.figure("features_{task}.png"),
            caption="../report/features.rst",
            category=lambda w: REPORT_TASKS[w.task],
            subcategory="Input features (figs. 1-3)",
        ),
    log:
        PATHS.log("plot_features", "{task}"),
    benchmark:
        PATHS.bench("plot_features", "{task}")
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m fast2full --log {log} plot-features --task {wildcards.task} --out {output.pdf} --inputs {input}"
