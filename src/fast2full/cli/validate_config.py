HELP = (
    "validate a config (a base file and overlays, deep-merged) against the schema, check its card files "
    "exist and its Pythia settings read back; optionally print the merged result"
)


def add_arguments(p):
    p.add_argument(
        "config",
        nargs="+",
        metavar="FILE",
        help="config YAML: the first is the base, each further file is deep-merged over it (as snakemake --configfile)",
    )
    p.add_argument(
        "--print",
        action="store_true",
        dest="show",
        help="print the merged config with the schema defaults filled in (YAML)",
    )


def run(args) -> int:
    import logging
    import sys

    import yaml

    from fast2full.config import load_config, thaw
    from fast2full.pythia_settings import check_config

    config = load_config(*args.config, base_dir=".")
    check_config(config, source=" + ".join(args.config))
    logging.getLogger("fast2full").info("%s: valid", " + ".join(args.config))
    if args.show:
        yaml.safe_dump(thaw(config), sys.stdout, sort_keys=False)
    return 0
