HELP = "validate a config file against the schema (and check its card files exist and its Pythia settings read back)"


def add_arguments(p):
    p.add_argument("config", nargs="+", help="config YAML file(s)")


def run(args) -> int:
    import logging

    from fast2full.config import load_config
    from fast2full.pythia_settings import check_config

    for c in args.config:
        check_config(load_config(c, base_dir="."), source=c)
        logging.getLogger("fast2full").info("%s: valid", c)
    return 0
