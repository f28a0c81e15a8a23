HELP = "download one PHYSLITE file listed in the manifest (retries, resume, checksum, atomic rename)"


def add_arguments(p):
    p.add_argument("--manifest", required=True, help="manifest JSON written by `fast2full manifest`")
    p.add_argument("--sample", required=True, help="sample name (config opendata.samples)")
    p.add_argument("--index", required=True, type=int, help="file index within the sample (0-based)")
    p.add_argument("--out", required=True, help="file to write (results/opendata/files/SAMPLE/INDEX.root)")
    p.add_argument("--retries", type=int, default=None, help="retries after the first attempt (default: manifest)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        dest="timeout_s",
        help="connect/read timeout in seconds (default: manifest)",
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=None,
        dest="backoff_s",
        help="first backoff in seconds, doubled per retry (default: manifest)",
    )


def run(args) -> int:
    from fast2full.opendata import fetch_from_manifest

    fetch_from_manifest(
        args.manifest,
        args.sample,
        args.index,
        args.out,
        retries=args.retries,
        timeout_s=args.timeout_s,
        backoff_s=args.backoff_s,
    )
    return 0
