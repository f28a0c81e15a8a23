HELP = "reduce a Delphes tree or a PHYSLITE file to the objects parquet (one shared selection)"

SOURCES = ("delphes", "physlite")


def add_arguments(p):
    p.add_argument("--source", required=True, choices=SOURCES,
                   help="delphes: a Delphes ROOT tree (fast simulation); physlite: ATLAS PHYSLITE (full simulation)")
    p.add_argument("--config", required=True, help="config YAML (its 'selection' is applied)")
    p.add_argument("--sample", required=True,
                   help="process (delphes) or Open Data sample (physlite) name; its config role sets is_signal")
    p.add_argument("--in", dest="in_path", required=True, help="input ROOT file")
    p.add_argument("--out", required=True, help="output objects parquet (written atomically)")
    p.add_argument("--chunk", type=int, default=None,
                   help="delphes only: generation chunk index for the event IDs "
                        "(default: the input file's stem when it is an integer, else 0)")


def run(args) -> int:
    import logging

    from fast2full.config import load_config

    log = logging.getLogger("fast2full")
    config = load_config(args.config, base_dir=".")
    if args.source == "delphes":
        from fast2full.readers.delphes import skim_delphes

        n = skim_delphes(args.in_path, args.out, config, args.sample, chunk=args.chunk)
    else:
        from fast2full.readers.physlite import skim_physlite

        n = skim_physlite(args.in_path, args.out, config, args.sample)
    log.info("skim %s: %d events -> %s", args.source, n, args.out)
    return 0
