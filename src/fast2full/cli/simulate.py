from fast2full.cli.options import add_config, get_config

HELP = (
    "fast detector simulation of a generation chunk with a Delphes card (builtin engine, or "
    "real DelphesHepMC3 with --simulator delphes)"
)


def add_arguments(p):
    add_config(p, "for pileup.mean")
    p.add_argument("--card", required=True, help="Delphes card (.tcl)")
    p.add_argument(
        "--in",
        dest="inp",
        required=True,
        help="generation parquet (contract 1); with --simulator delphes its HepMC3 export",
    )
    p.add_argument(
        "--pileup",
        action="append",
        default=[],
        help="minimum-bias generation parquet to draw pile-up from (repeatable)",
    )
    p.add_argument("--out", required=True, help="output Delphes ROOT file")
    p.add_argument("--batch-size", type=int, default=500, help="events simulated per batch")
    p.add_argument(
        "--simulator",
        choices=["builtin", "delphes"],
        default="builtin",
        help="builtin engine (default) or real DelphesHepMC3 (fast2full.delphes.real)",
    )


def run(args) -> int:
    from fast2full.common import Fast2FullError

    config = get_config(args)
    mean = float(config.get("pileup", {}).get("mean", 0.0))
    if args.simulator == "delphes":
        from fast2full.delphes.real import run_delphes

        if mean > 0 or args.pileup:
            raise Fast2FullError(
                "config: invalid key 'pileup.mean': pileup.mean > 0 is not supported with simulator: "
                "delphes (real Delphes reads pile-up from its own PileUpFile)"
            )
        run_delphes(args.card, args.inp, args.out)
        return 0
    from fast2full.delphes.engine import simulate

    simulate(
        args.card,
        args.inp,
        args.out,
        pileup_paths=args.pileup or None,
        pileup_mean=mean if mean > 0 else None,
        batch_size=args.batch_size,
    )
    return 0
