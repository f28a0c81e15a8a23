from fast2full.cli.options import add_config, get_config

HELP = "reduce a Delphes tree or a PHYSLITE file to the objects parquet (one shared selection)"

SOURCES = ("delphes", "physlite")


def add_arguments(p):
    p.add_argument(
        "--source",
        required=True,
        choices=SOURCES,
        help="delphes: a Delphes ROOT tree (fast simulation); physlite: ATLAS PHYSLITE (full simulation)",
    )
    add_config(p, "its 'selection' is applied")
    p.add_argument(
        "--sample",
        required=True,
        help="process (delphes) or Open Data sample (physlite) name; its config role sets is_signal",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--in", dest="in_path", help="input ROOT file (a local path or, for physlite, a URL)")
    src.add_argument(
        "--manifest",
        help="physlite streaming: the Open Data manifest; with --index, the skim "
        "reads that file's URL remotely (opendata.stream)",
    )
    p.add_argument("--index", type=int, default=None, help="with --manifest: the file index within the sample")
    p.add_argument("--out", required=True, help="output objects parquet (written atomically)")
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="delphes only: generation chunk index for the event IDs "
        "(default: the input file's stem when it is an integer, else 0)",
    )


def run(args) -> int:
    import logging

    log = logging.getLogger("fast2full")
    config = get_config(args)
    if args.manifest is not None:
        from fast2full.common import Fast2FullError
        from fast2full.opendata import stream_skim

        if args.source != "physlite" or args.index is None:
            raise Fast2FullError("skim: --manifest is for --source physlite and needs --index")
        log.info("streaming %s file %d of %s", args.sample, args.index, args.manifest)
        n = stream_skim(args.manifest, args.sample, args.index, args.out, config)
    elif args.source == "delphes":
        from fast2full.readers.delphes import skim_delphes

        n = skim_delphes(args.in_path, args.out, config, args.sample, chunk=args.chunk)
    else:
        from fast2full.readers.physlite import skim_physlite

        n = skim_physlite(args.in_path, args.out, config, args.sample)
    log.info("skim %s: %d events -> %s", args.source, n, args.out)
    return 0
