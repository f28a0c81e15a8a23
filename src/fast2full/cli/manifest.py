from fast2full.cli.options import add_config, get_config

HELP = "ask atlasopenmagic (or a saved metadata file) for the PHYSLITE samples and write the manifest"


def add_arguments(p):
    add_config(p, "section opendata")
    p.add_argument("--out", required=True, help="manifest JSON to write (results/opendata/manifest.json)")
    p.add_argument(
        "--metadata-file",
        default=None,
        help="read metadata from this atlasopenmagic save_metadata file instead of the API "
        "(default: config opendata.metadata_file)",
    )
    p.add_argument(
        "--save-metadata",
        default=None,
        metavar="FILE",
        help="also save what atlasopenmagic returned (JSON) for use on offline nodes",
    )


def run(args) -> int:
    from fast2full.opendata import write_manifest

    config = get_config(args)
    write_manifest(config, args.out, metadata_file=args.metadata_file, save_metadata=args.save_metadata)
    return 0
