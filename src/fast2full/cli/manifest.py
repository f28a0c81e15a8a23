HELP = "ask atlasopenmagic (or a saved metadata file) for the PHYSLITE samples and write the manifest"


def add_arguments(p):
    p.add_argument("--config", required=True, help="config YAML (section opendata)")
    p.add_argument("--out", required=True, help="manifest JSON to write (results/opendata/manifest.json)")
    p.add_argument("--metadata-file", default=None,
                   help="read metadata from this atlasopenmagic save_metadata file instead of the API "
                        "(default: config opendata.metadata_file)")
    p.add_argument("--save-metadata", default=None, metavar="FILE",
                   help="also save what atlasopenmagic returned (JSON) for use on offline nodes")


def run(args) -> int:
    from fast2full.config import load_config
    from fast2full.opendata import write_manifest

    config = load_config(args.config, base_dir=".")
    write_manifest(config, args.out, metadata_file=args.metadata_file, save_metadata=args.save_metadata)
    return 0
