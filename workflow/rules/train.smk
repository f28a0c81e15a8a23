rule train_pretrain:
    """Pretrain on the full source (ATLAS-like) training set: one checkpoint per seed."""
    input:
        lambda w: tensor_files(w.task, SOURCE),
    output:
        expand(f"{RESULTS}/train/{{{{task}}}}/{{{{arch}}}}/{SOURCE}/pretrain/nall/seed{{seed}}/{{f}}",
               seed=SEEDS, f=["metrics.json", "model.ckpt"]),
    params:
        config=stage_config("train"),
        outdir=lambda w: train_dir(w.task, w.arch, SOURCE, "pretrain", "all"),
        source=SOURCE,
        seeds=SEED_ARGS,
        tensors=f"{RESULTS}/tensors",
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{SOURCE}/pretrain/nall.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{SOURCE}/pretrain/nall.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {params.source} --mode pretrain --size all --seeds {params.seeds}"
        " --tensors {params.tensors} --outdir {params.outdir} --threads {threads}"


rule train_target:
    """All points of one (task, arch, target) in one process: zeroshot, then every mode x size, all seeds.

    One process per (task, arch, target) pays the Python/torch/Lightning start-up (~5 s) once instead
    of once per point (see docs/training.md); `fast2full train` also runs a single point.
    """
    input:
        tensors=target_tensors,
        pretrained=pretrained_ckpts,
    output:
        target_points("{task}", "{arch}", "{target}"),
    params:
        config=stage_config("train"),
        modes=" ".join(TARGET_MODES),
        sizes=SIZE_ARGS,
        seeds=SEED_ARGS,
        tensors=f"{RESULTS}/tensors",
        outdir=lambda w: train_dir(w.task, w.arch, w.target, "{mode}", "{size}"),
        pretrained=lambda w: train_dir(w.task, w.arch, SOURCE, "pretrain", "all"),
    wildcard_constraints:
        target="|".join(t for t in TARGETS if t != SOURCE),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} train --config-json {params.config:q} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --mode {params.modes}"
        " --size {params.sizes} --seeds {params.seeds} --tensors {params.tensors}"
        " --pretrained-dir {params.pretrained} --outdir '{params.outdir}' --threads {threads}"


rule publish_model:
    """Export a pretrained checkpoint with its model card as a reusable asset."""
    input:
        f"{RESULTS}/train/{{task}}/{{arch}}/{SOURCE}/pretrain/nall/seed{{seed}}/model.ckpt",
    output:
        directory(f"{RESULTS}/models/{{task}}_{{arch}}_seed{{seed}}"),
    log:
        f"{LOGS}/publish_model/{{task}}_{{arch}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/publish_model/{{task}}_{{arch}}_seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} export-model --ckpt {input} --out {output}"
