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
        " --tensors {RESULTS}/tensors --outdir {params.outdir} --threads {threads}"


def pretrained_ckpts(w):
    d = train_dir(w.task, w.arch, SOURCE, "pretrain", "all")
    return [f"{d}/seed{s}/model.ckpt" for s in SEEDS]


def target_tensors(w):
    files = tensor_files(w.task, w.target)
    if "dann" in TR["modes"]:  # the domain-adversarial head also sees source events
        files += tensor_files(w.task, SOURCE)
    return files


TARGET_MODES = ["zeroshot"] + [m for m in TR["modes"] if m != "zeroshot"]
SIZE_ARGS = " ".join(str(s) for s in TR["sizes"])


def target_points(task, arch, target):
    """Every metrics.json of one (task, arch, target): zeroshot (n0) and each mode x size, all seeds."""
    out = [f"{train_dir(task, arch, target, 'zeroshot', 0)}/seed{s}/metrics.json" for s in SEEDS]
    for mode in TR["modes"]:
        for size in TR["sizes"]:
            out += [f"{train_dir(task, arch, target, mode, size)}/seed{s}/metrics.json" for s in SEEDS]
    return out


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
        config=CONFIGFILE,
        modes=" ".join(TARGET_MODES),
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
        "fast2full --log {log} train --config {params.config} --task {wildcards.task}"
        " --arch {wildcards.arch} --target {wildcards.target} --mode {params.modes}"
        " --size {SIZE_ARGS} --seeds {SEED_ARGS} --tensors {RESULTS}/tensors"
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
