from fast2full.cli.options import add_config, get_config
from fast2full.plan import TASKS

HELP = "objects parquet files of one domain -> padded train/val/test tensors for one task"


def add_arguments(p):
    add_config(p)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--domain", required=True, help="domain name stored in the metadata (atlas_like, ...)")
    p.add_argument("--outdir", required=True, help="writes {outdir}/{train,val,test}.parquet (+ norm.json)")
    p.add_argument(
        "--norm", default=None, help="source domain's norm.json; without it this is the source and norm.json is written"
    )
    p.add_argument("--inputs", nargs="+", required=True, help="objects parquet files")
    p.add_argument(
        "--reduced-inputs",
        action="store_true",
        help="the task's reduced inputs (qg: jet observables only; fast2full.plan.REDUCED_INPUTS), for a "
        "domain without particle-flow constituents and the source copy compared with it",
    )


def run(args) -> int:
    from fast2full.tensorize import tensorize

    config = get_config(args)
    tensorize(
        args.inputs,
        args.outdir,
        config,
        args.task,
        args.domain,
        norm_path=args.norm,
        reduced_inputs=args.reduced_inputs,
    )
    return 0
