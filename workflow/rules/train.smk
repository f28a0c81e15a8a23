SEEDS = TR["seeds"]
SEED_ARGS = " ".join(str(s) for s in SEEDS)


def tensor_files(task, domain):
    return [f"{RESULTS}/tensors/{task}/{domain}/{s}.parquet" for s in ("train", "val", "test")]


rule train_pretrain:
    """Pretrain on the full source (ATLAS-like) training set: one checkpoint per seed."""
    input:
        lambda w: tensor_files(w.task, SOURCE),
    output:
        expand(f"{RESULTS}/train/{{{{task}}}}/{{{{arch}}}}/{SOURCE}/pretrain/nall/seed{{seed}}/{{f}}",
               seed=SEEDS, f=["metrics.json", "model.ckpt"]),
    params:
        config=CONFIGFILE,
        outdir=lambda w: train_dir(w.task, w.arch, SOURCE, "pretrain", "all"),
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
        "fast2full --log {log} train --config {params.config} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {SOURCE} --mode pretrain --size all --seeds {SEED_ARGS}"
        " --tensors {RESULTS}/tensors --outdir {params.outdir}"


def pretrained_ckpts(w):
    if w.mode == "scratch":
        return []
    d = train_dir(w.task, w.arch, SOURCE, "pretrain", "all")
    return [f"{d}/seed{s}/model.ckpt" for s in SEEDS]


def target_tensors(w):
    files = tensor_files(w.task, w.target)
    if w.mode == "dann":  # the domain-adversarial head also sees source events
        files += tensor_files(w.task, SOURCE)
    return files


rule train_target:
    """One training point on a target domain: all seeds of (task, arch, target, mode, size)."""
    input:
        tensors=target_tensors,
        pretrained=pretrained_ckpts,
    output:
        expand(f"{RESULTS}/train/{{{{task}}}}/{{{{arch}}}}/{{{{target}}}}/{{{{mode}}}}/n{{{{size}}}}/seed{{seed}}/metrics.json",
               seed=SEEDS),
    params:
        config=CONFIGFILE,
        outdir=lambda w: train_dir(w.task, w.arch, w.target, w.mode, w.size),
        pretrained=lambda w: "" if w.mode == "scratch" else
        f"--pretrained-dir {train_dir(w.task, w.arch, SOURCE, 'pretrain', 'all')}",
    wildcard_constraints:
        mode="zeroshot|scratch|finetune|freeze|dann",
        size=r"\d+",
        target="|".join(t for t in TARGETS if t != SOURCE),
    log:
        f"{LOGS}/train/{{task}}/{{arch}}/{{target}}/{{mode}}/n{{size}}.log",
    benchmark:
        f"{BENCH}/train/{{task}}/{{arch}}/{{target}}/{{mode}}/n{{size}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    group:
        "train_points"
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} train --config {params.config} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --mode {wildcards.mode}"
        " --size {wildcards.size} --seeds {SEED_ARGS} --tensors {RESULTS}/tensors"
        " {params.pretrained} --outdir {params.outdir}"


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
