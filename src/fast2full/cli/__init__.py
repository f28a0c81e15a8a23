"""The ``fast2full`` command line: argument parsing only, one module per subcommand.

Each ``fast2full.cli.<name>`` module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``.  Those modules import only argparse at module level, so ``fast2full --help``
stays fast; the heavy stage code is imported inside ``run``.

One grammar for every subcommand: the global options (``--log``, ``-v``) go before or after the
subcommand; inputs are ``--in``/``--inputs``, outputs ``--out``/``--outdir``, the configuration
``--config FILE`` (repeatable overlays) or ``--config-json``.  Exit status: 0 done, 1 bad input or a
runtime error (one message naming the file or key; a traceback for an unexpected error), 2 a usage
error (argparse).

With ``--log FILE`` everything the job prints goes to FILE: its log messages, Python tracebacks and
the native output of Pythia, FastJet or Delphes (file descriptors 1 and 2 are redirected); the
terminal gets warnings and errors only.  Without ``--log``, messages from INFO up go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import IO

from fast2full import __version__
from fast2full.common import Fast2FullError

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

EPILOG = (
    "Run `fast2full COMMAND --help` for a command's options.  Snakemake calls these commands with "
    "each job's config slice (--config-json); by hand, pass --config config.yaml [--config overlay.yaml].  "
    "Exit status: 0 done, 1 bad input or runtime error, 2 usage error."
)


def _add_global(p: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--log",
        metavar="FILE",
        default=default,
        help="write everything the command prints (messages, tracebacks, Pythia/FastJet/Delphes "
        "output) to FILE; the terminal then shows warnings and errors only",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="debug messages too",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fast2full", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"fast2full {__version__}")
    _add_global(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(f"fast2full.cli.{modname}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        _add_global(p, suppress=True)  # global options are accepted after the subcommand too
        p.set_defaults(_run=mod.run)
    return parser


def _log_to_file(path: str, verbose: bool) -> IO[str]:
    """Send fds 1 and 2 (and Python's logging) to ``path``; return a stream to the original stderr."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_file = logging.StreamHandler(sys.stderr)
    to_file.setFormatter(fmt)
    to_term = logging.StreamHandler(terminal)
    to_term.setLevel(logging.WARNING)
    to_term.setFormatter(logging.Formatter(f"%(levelname)s fast2full ({path}): %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[to_file, to_term], force=True)
    logging.captureWarnings(True)
    return terminal


def _log_to_stderr(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(sys.stderr)],
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits with status 2
    saved = (os.dup(1), os.dup(2), sys.stdout, sys.stderr) if args.log else None
    terminal = _log_to_file(args.log, args.verbose) if args.log else None
    if terminal is None:
        _log_to_stderr(args.verbose)
    log = logging.getLogger("fast2full")
    try:
        return int(args._run(args) or 0)
    except Fast2FullError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception:
        log.exception("fast2full %s failed with an unexpected error", args.command)
        return 1
    finally:
        if saved is not None:  # give the caller (tests, an embedding process) its descriptors back
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sys.stdout, sys.stderr = saved[2], saved[3]
            logging.captureWarnings(False)
            _log_to_stderr(args.verbose)
            if terminal is not None:
                terminal.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
