HELP = "publish checkpoints as DIR/{model.ckpt, model_card.json, README.md} (load with load_pretrained(DIR))"


def add_arguments(p):
    p.add_argument(
        "--ckpt", required=True, nargs="+", help="model.ckpt files written by `fast2full train --mode pretrain`"
    )
    p.add_argument("--out", required=True, nargs="+", help="output directories, one per --ckpt, in the same order")


def run(args) -> int:
    import logging

    from fast2full.models import export_model

    if len(args.ckpt) != len(args.out):  # a usage error: exit status 2
        logging.getLogger("fast2full").error(
            "export-model: %d --ckpt files but %d --out directories (one each)", len(args.ckpt), len(args.out)
        )
        return 2
    for ckpt, out_dir in zip(args.ckpt, args.out):
        out = export_model(ckpt, out_dir)
        logging.getLogger("fast2full").info("exported %s -> %s", ckpt, out)
    return 0
