"""Small shared helpers: the project's error type, atomic outputs, logging and progress lines."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("fast2full")


class Fast2FullError(RuntimeError):
    """An error the user can act on: the message names the file (or config key) and the cause.

    The CLI prints it without a traceback and exits with status 2.
    """


class InputError(Fast2FullError):
    """Bad input file: corrupt, truncated, wrong format."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{path}: {cause}")


def read_json(path: str | os.PathLike, what: str = "file", missing_hint: str = "") -> object:
    """Parse a JSON file; a missing or malformed file raises InputError naming it (``what`` says
    which kind of file, ``missing_hint`` how to make it)."""
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(path, f"{what} not found{' (' + missing_hint + ')' if missing_hint else ''}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc


def setup_logging(logfile: str | None = None, verbose: bool = False) -> None:
    """Log to stderr and, if given, to ``logfile`` (Snakemake's ``log:``)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def remove_stale_temporaries(final: Path, suffix: str) -> list[Path]:
    """Remove the hidden temporaries an earlier, killed writer of ``final`` left beside it
    (``.NAME.XXXXXXXX<suffix>`` from :func:`atomic_output`); only the job making ``final`` writes them."""
    import glob
    import re

    pattern = re.compile(rf"\.{re.escape(final.name)}\.[A-Za-z0-9_]{{8}}{re.escape(suffix)}")
    removed = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.*"):
        if pattern.fullmatch(p.name):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        log.warning(
            "removed %d temporary file(s) a killed job left beside %s: %s",
            len(removed),
            final,
            ", ".join(p.name for p in removed),
        )
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception the temporary file (or directory) is removed, so no partial output is ever left
    under the final name.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final, suffix or final.suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            tmp_path.unlink(missing_ok=True)
        raise


def stable_hash64(*parts: object) -> int:
    """A platform-independent non-negative 63-bit hash of ``parts`` (for seeds and IDs)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class Progress:
    """Progress lines for long stages: items done, rate, time left.

    >>> p = Progress(total=1000, what="events", every_s=10); p.update(100); p.done()
    """

    def __init__(
        self, total: int | None, what: str = "events", every_s: float = 5.0, logger: logging.Logger | None = None
    ):
        self.total, self.what, self.every_s = total, what, every_s
        self.log = logger or log
        self.n = 0
        self.t0 = self._last = time.perf_counter()

    def update(self, n: int = 1, note: Callable[[], str] | None = None) -> None:
        """Count ``n`` more items; every ``every_s`` seconds log the progress line, followed by
        ``note()`` (what else the stage reports, built only when a line is due)."""
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self.log.info("%s%s", self.line(now), f"; {note()}" if note is not None else "")

    def left_s(self, now: float | None = None) -> float:
        """Seconds left at the rate so far (nan before the first item or without a total)."""
        el = (now or time.perf_counter()) - self.t0
        rate = self.n / el if el > 0 else 0.0
        return (self.total - self.n) / rate if self.total and rate > 0 else float("nan")

    def line(self, now: float | None = None) -> str:
        el = (now or time.perf_counter()) - self.t0
        rate = self.n / el if el > 0 else 0.0
        if self.total:
            left = self.left_s(now)
            return (
                f"{self.n}/{self.total} {self.what} ({100 * self.n / self.total:.0f}%), "
                f"{rate:.1f} {self.what}/s, {left:.0f} s left"
            )
        return f"{self.n} {self.what}, {rate:.1f} {self.what}/s"

    def done(self) -> float:
        el = time.perf_counter() - self.t0
        self.log.info(
            "done: %d %s in %.1f s (%.1f %s/s)", self.n, self.what, el, self.n / el if el > 0 else 0.0, self.what
        )
        return el
