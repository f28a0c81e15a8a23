rule train_pretrain:
    """Pretrain on the full source (ATLAS-like) training set, or on its reduced-input copy (qg jet
    observables only, for atlas_fullsim): one checkpoint per seed (all seeds x learning rates as one
    ensemble)."""
    input:
        lambda w: tensor_files(w.task, w.source),
    output:
        point_files("{task}", "{arch}", "{source}", "pretrain", "all"),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{source}}/pretrain/nall.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{source}}/pretrain/nall.tsv"
    wildcard_constraints:
        source="|".join(ALL_SOURCES),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        config=stage_config("train"),
        outdir=lambda w: train_dir(w.task, w.arch, w.source, "pretrain", "all"),
        seeds=SEED_ARGS,
    shell:
        "python -m fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.source} --mode pretrain --size all --seeds {params.seeds}"
        " --inputs {input} --outdir {params.outdir} --threads {threads}"


rule train_target:
    """All points of one (task, arch, target) in one process (training.jobs: target): zeroshot, then
    every mode x size, each point's seeds x learning rates as one ensemble.  Pays the
    Python/torch/Lightning start-up once; for small studies (docs/training.md)."""
    input:
        tensors=target_tensors,
        pretrained=pretrained_ckpts,
    output:
        target_outputs("{task}", "{arch}", "{target}"),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}.tsv"
    wildcard_constraints:
        target=NON_SOURCE if JOBS == "target" else NEVER,
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        config=stage_config("train"),
        seeds=SEED_ARGS,
        pretrained=pretrained_dir,
        modes=" ".join(TARGET_MODES),
        sizes=SIZE_ARGS,
        outdir=lambda w: train_dir(w.task, w.arch, w.target, "{mode}", "{size}"),
    shell:
        "python -m fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --seeds {params.seeds} --inputs {input.tensors}"
        " --pretrained-dir {params.pretrained} --threads {threads}"
        " --mode {params.modes} --size {params.sizes} --outdir '{params.outdir}'"


rule train_zeroshot:
    """The pretrained models of every seed on one target's test split (training.jobs: mode or point)."""
    input:
        tensors=lambda w: tensor_files(w.task, w.target),
        pretrained=pretrained_ckpts,
    output:
        point_files("{task}", "{arch}", "{target}", "zeroshot", 0),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}/zeroshot.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}/zeroshot.tsv"
    wildcard_constraints:
        target=NON_SOURCE if JOBS != "target" else NEVER,
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=stage_config("train"),
        seeds=SEED_ARGS,
        pretrained=pretrained_dir,
        outdir=lambda w: train_dir(w.task, w.arch, w.target, "zeroshot", 0),
    shell:
        "python -m fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --seeds {params.seeds} --inputs {input.tensors}"
        " --pretrained-dir {params.pretrained} --threads {threads}"
        " --mode zeroshot --size 0 --outdir {params.outdir}"


rule train_mode:
    """Every size of one (task, arch, target, mode) in one process (training.jobs: mode)."""
    input:
        tensors=target_tensors,
        pretrained=pretrained_ckpts,
    output:
        [f for size in TR["sizes"] for f in point_files("{task}", "{arch}", "{target}", "{mode}", size)],
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}/{{mode}}.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}/{{mode}}.tsv"
    wildcard_constraints:
        target=NON_SOURCE,
        mode="|".join(TRAINED_MODES) if JOBS == "mode" else NEVER,
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        config=stage_config("train"),
        seeds=SEED_ARGS,
        pretrained=pretrained_dir,
        sizes=SIZE_ARGS,
        outdir=lambda w: train_dir(w.task, w.arch, w.target, w.mode, "{size}"),
    shell:
        "python -m fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --seeds {params.seeds} --inputs {input.tensors}"
        " --pretrained-dir {params.pretrained} --threads {threads}"
        " --mode {wildcards.mode} --size {params.sizes} --outdir '{params.outdir}'"


rule train_point:
    """One point (task, arch, target, mode, size), its seeds x learning rates as one ensemble
    (training.jobs: point; the paper-scale granularity, docs/hpc.md)."""
    input:
        tensors=target_tensors,
        pretrained=pretrained_ckpts,
    output:
        point_files("{task}", "{arch}", "{target}", "{mode}", "{size}"),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}/{{mode}}/n{{size}}.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}/{{mode}}/n{{size}}.tsv"
    wildcard_constraints:
        target=NON_SOURCE,
        mode="|".join(TRAINED_MODES),
        size="|".join(str(s) for s in TR["sizes"]) if JOBS == "point" else NEVER,
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        config=stage_config("train"),
        seeds=SEED_ARGS,
        pretrained=pretrained_dir,
        outdir=lambda w: train_dir(w.task, w.arch, w.target, w.mode, w.size),
    shell:
        "python -m fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --seeds {params.seeds} --inputs {input.tensors}"
        " --pretrained-dir {params.pretrained} --threads {threads}"
        " --mode {wildcards.mode} --size {wildcards.size} --outdir {params.outdir}"


rule publish_model:
    """Export the pretrained checkpoints of every seed of one (task, arch), each with its model card, as
    reusable assets (one job per (task, arch): the start-up is paid once, not per seed)."""
    input:
        expand(
            f"{RESULTS}/train/{{{{task}}}}/{{{{arch}}}}/{SOURCE}/pretrain/nall/seed{{seed}}/model.ckpt",
            seed=SEEDS,
        ),
    output:
        [directory(PATHS.model("{task}", "{arch}", s)) for s in SEEDS],
    log:
        f"{LOGS}/publish_model/{{task}}_{{arch}}.log",
    benchmark:
        f"{BENCH}/publish_model/{{task}}_{{arch}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m fast2full --log {log} export-model --ckpt {input} --out {output}"
