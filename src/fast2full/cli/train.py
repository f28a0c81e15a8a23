from fast2full.cli.options import add_config, get_config
from fast2full.plan import ARCHS, MODES, TASKS

HELP = "train (task, arch, target, mode, size) points for every seed; write metrics.json (+ model.ckpt)"


def add_arguments(p):
    add_config(p, "its training: section")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--target", required=True, help="domain trained/evaluated on (the source for pretrain)")
    p.add_argument(
        "--mode",
        required=True,
        nargs="+",
        choices=MODES,
        help="one mode, or several run in this one process (then --outdir needs '{mode}')",
    )
    p.add_argument(
        "--size",
        required=True,
        nargs="+",
        help="labelled target training events (int) or 'all'; several need '{size}' in --outdir; "
        "zeroshot always uses 0",
    )
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--inputs",
        nargs="+",
        metavar="FILE",
        help="the tensor files this job reads, .../TASK/DOMAIN/SPLIT.parquet (what the workflow "
        "passes: its rule's inputs)",
    )
    src.add_argument("--tensors", metavar="DIR", help="by hand: a tensor root DIR/TASK/DOMAIN/SPLIT.parquet")
    p.add_argument(
        "--pretrained-dir",
        default=None,
        help="the pretrain job's outdir (holds seed{s}/model.ckpt); needed for zeroshot/finetune/freeze/dann",
    )
    p.add_argument(
        "--outdir",
        required=True,
        help="writes {outdir}/seed{s}/metrics.json, grid.csv, logs/; may contain {mode} and {size}",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto (GPU if found), cpu, gpu")
    p.add_argument(
        "--model-size", default=None, choices=["tiny", "small", "base"], help="override config training.model_size"
    )


def points(modes: list[str], sizes: list[str], outdir: str) -> list[tuple[str, str, str]]:
    """(mode, size, outdir) of every point; zeroshot runs once with size 0."""
    from fast2full.common import Fast2FullError

    for field, values in (("mode", modes), ("size", sizes)):
        if len(set(values)) > 1 and "{" + field + "}" not in outdir:
            raise Fast2FullError(f"--outdir {outdir!r} must contain '{{{field}}}' when several --{field} are given")
    out = []
    for mode in dict.fromkeys(modes):
        for size in ["0"] if mode == "zeroshot" else list(dict.fromkeys(sizes)):
            out.append((mode, size, outdir.replace("{mode}", mode).replace("{size}", size)))
    return out


def tensor_inputs(files: list[str]) -> dict:
    """{(task, domain, split): path} of the job's tensor files (fast2full.plan's layout)."""
    from pathlib import Path

    from fast2full.common import Fast2FullError
    from fast2full.plan import parse_tensor_path

    out = {}
    for f in files:
        try:
            out[parse_tensor_path(f)] = Path(f)
        except ValueError as exc:
            raise Fast2FullError(f"train --inputs: {exc}") from None
    return out


def run(args) -> int:
    import time
    from pathlib import Path

    t0 = time.perf_counter()
    from fast2full.train import JobSpec, TrainSettings, run_jobs

    config = get_config(args)
    settings = TrainSettings.from_config(
        config, threads=args.threads, accelerator=args.accelerator, model_size=args.model_size
    )
    tensors = Path(args.tensors) if args.tensors else tensor_inputs(args.inputs)
    specs = [
        JobSpec(
            task=args.task,
            arch=args.arch,
            target=args.target,
            mode=mode,
            size=size,
            seeds=list(args.seeds),
            tensors=tensors,
            outdir=Path(outdir),
            pretrained_dir=Path(args.pretrained_dir) if args.pretrained_dir else None,
        )
        for mode, size, outdir in points(args.mode, args.size, args.outdir)
    ]
    run_jobs(specs, settings, t_start=t0)
    return 0
