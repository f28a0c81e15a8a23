HELP = "fast detector simulation of a generation chunk with a Delphes card (builtin engine)"


def add_arguments(p):
    p.add_argument("--config", required=True, help="workflow config (for pileup.mean)")
    p.add_argument("--card", required=True, help="Delphes card (.tcl)")
    p.add_argument("--in", dest="inp", required=True, help="generation parquet (contract 1)")
    p.add_argument("--pileup", action="append", default=[],
                   help="minimum-bias generation parquet to draw pile-up from (repeatable)")
    p.add_argument("--out", required=True, help="output Delphes ROOT file")
    p.add_argument("--batch-size", type=int, default=500, help="events simulated per batch")


def run(args) -> int:
    from fast2full.config import load_config
    from fast2full.delphes.engine import simulate

    config = load_config(args.config, base_dir=".")
    mean = float(config.get("pileup", {}).get("mean", 0.0))
    simulate(args.card, args.inp, args.out, pileup_paths=args.pileup or None,
             pileup_mean=mean if mean > 0 else None, batch_size=args.batch_size)
    return 0
