rule tensorize_source:
    """Objects -> padded tensors for the source domain, or for its reduced-input copy (qg: jet
    observables only, from the same source objects); fixes the normalisation (train split)."""
    input:
        lambda w: skim_files(plan.object_domain(config, w.source)),
    output:
        splits=PATHS.tensor_files("{task}", "{source}"),
        norm=PATHS.norm("{task}", "{source}"),
    log:
        PATHS.log("tensorize", "{task}", "{source}"),
    benchmark:
        PATHS.bench("tensorize", "{task}", "{source}")
    wildcard_constraints:
        source="|".join(ALL_SOURCES),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("tensorize"),
        outdir=lambda w: PATHS.tensor_dir(w.task, w.source),
        reduced=lambda w: reduced_inputs_arg(w.task, w.source),
    shell:
        "python -m fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {wildcards.source} --outdir {params.outdir} --inputs {input} {params.reduced}"


rule tensorize_target:
    """Objects -> padded tensors for a target domain, normalised with the statistics of the source it
    is compared with (the reduced-input source for a target with reduced inputs)."""
    input:
        objects=lambda w: skim_files(w.domain),
        norm=lambda w: PATHS.norm(w.task, plan.source_for(SOURCE, w.task, w.domain)),
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
        reduced=lambda w: reduced_inputs_arg(w.task, w.domain),
    shell:
        "python -m fast2full --log {log} tensorize --config-json {params.config:q} --task {wildcards.task}"
        " --domain {wildcards.domain} --norm {input.norm} --outdir {params.outdir} --inputs {input.objects}"
        " {params.reduced}"


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
