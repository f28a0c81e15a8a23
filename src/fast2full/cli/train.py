HELP = "train one (task, arch, target, mode, size) point for every seed; write metrics.json (+ model.ckpt)"


def add_arguments(p):
    p.add_argument("--config", required=True, help="workflow config (its training: section)")
    p.add_argument("--task", required=True, choices=["sigbkg", "qg", "met"])
    p.add_argument("--arch", required=True, choices=["dnn", "gnn", "transformer"])
    p.add_argument("--target", required=True, help="domain trained/evaluated on (the source for pretrain)")
    p.add_argument("--mode", required=True, choices=["pretrain", "zeroshot", "scratch", "finetune", "freeze", "dann"])
    p.add_argument("--size", required=True, help="labelled target training events (int) or 'all'")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--tensors", required=True, help="tensor root: {tensors}/{task}/{domain}/{split}.parquet")
    p.add_argument("--pretrained-dir", default=None,
                   help="the pretrain job's outdir (holds seed{s}/model.ckpt); needed for zeroshot/finetune/freeze/dann")
    p.add_argument("--outdir", required=True, help="writes {outdir}/seed{s}/metrics.json, grid.csv, logs/")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto (GPU if found), cpu, gpu")
    p.add_argument("--model-size", default=None, choices=["tiny", "small", "base"],
                   help="override config training.model_size")


def run(args) -> int:
    import time
    from pathlib import Path

    t0 = time.perf_counter()
    from fast2full.config import load_config
    from fast2full.train import JobSpec, TrainSettings, run_job

    config = load_config(args.config, base_dir=".")
    settings = TrainSettings.from_config(config, threads=args.threads, accelerator=args.accelerator,
                                         model_size=args.model_size)
    spec = JobSpec(task=args.task, arch=args.arch, target=args.target, mode=args.mode, size=args.size,
                   seeds=list(args.seeds), tensors=Path(args.tensors), outdir=Path(args.outdir),
                   pretrained_dir=Path(args.pretrained_dir) if args.pretrained_dir else None)
    run_job(spec, settings, t_start=t0)
    return 0
