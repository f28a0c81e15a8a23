HELP = "publish a checkpoint as DIR/{model.ckpt, model_card.json, README.md} (load with load_pretrained(DIR))"


def add_arguments(p):
    p.add_argument("--ckpt", required=True, help="a model.ckpt written by `fast2full train --mode pretrain`")
    p.add_argument("--out", required=True, help="output directory")


def run(args) -> int:
    import logging

    from fast2full.models import export_model

    out = export_model(args.ckpt, args.out)
    logging.getLogger("fast2full").info("exported %s -> %s", args.ckpt, out)
    return 0
