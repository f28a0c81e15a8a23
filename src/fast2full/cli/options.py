"""Options shared by the subcommands (argparse only at import time: ``fast2full --help`` stays fast)."""

from __future__ import annotations

import argparse
from typing import Any


def add_config(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--config FILE`` (repeatable: later files are deep-merged over earlier ones) or ``--config-json``."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="workflow config YAML" + (f" ({what})" if what else "") + "; repeat to overlay "
        "more files (deep-merged, as snakemake --configfile), e.g. --config config.yaml "
        "--config my.yaml",
    )
    g.add_argument(
        "--config-json",
        metavar="JSON",
        help="the config (or this stage's slice of it) as a JSON object: how the workflow passes "
        "the merged config Snakemake holds",
    )


def get_config(args: argparse.Namespace) -> Any:
    """The validated, frozen :class:`fast2full.config.Config` named by ``--config``/``--config-json``."""
    from fast2full.config import load_config_json, load_frozen

    if args.config_json is not None:
        return load_config_json(args.config_json)
    return load_frozen(*args.config, base_dir=".")
