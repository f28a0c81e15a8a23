"""The ``fast2full`` command line: argument parsing only, one module per subcommand.

Each ``fast2full.cli.<name>`` module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``.  Those modules import only argparse at module level, so ``fast2full --help``
stays fast; the heavy stage code is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fast2full.common import Fast2FullError, setup_logging

#: subcommand name -> module under fast2full.cli
COMMANDS = {
    "generate": "generate",
    "export-hepmc": "export_hepmc",
    "simulate": "simulate",
    "manifest": "manifest",
    "fetch": "fetch",
    "skim": "skim",
    "tensorize": "tensorize",
    "plot-features": "plot_features",
    "train": "train",
    "export-model": "export_model",
    "aggregate": "aggregate",
    "validate-config": "validate_config",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fast2full", description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also write the log to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(f"fast2full.cli.{modname}")
        except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
            if exc.name != f"fast2full.cli.{modname}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log, verbose=args.verbose)
    log = logging.getLogger("fast2full")
    try:
        return int(args._run(args) or 0)
    except Fast2FullError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
