"""Running real Delphes (``DelphesHepMC3``) on a HepMC3 export, for ``simulator: delphes``.

The executable is looked up, in this order, as ``$FAST2FULL_DELPHES`` (a path), ``DelphesHepMC3``
on ``PATH`` (e.g. conda-forge's ``delphes`` in ``envs/delphes.yaml``) and the prebuilt copy at
``../shared/delphes/bin/DelphesHepMC3`` beside the repository.  The prebuilt wrapper needs the PyPI
package ``root==0.1a12`` in a Python it finds through ``DELPHES_ROOT_PYTHON``; unless that is set
already it is this interpreter (``sys.executable``), which has ``root`` installed by
``pip install -e '.[test]'``.

Seeding.  Delphes seeds ``gRandom`` from the card's ``set RandomSeed N`` (0 or absent: a new seed
every run).  So that a rerun gives the same tree, :func:`run_delphes` runs a two-line wrapper card
written *in the card's own folder* (``source <card>`` then ``set RandomSeed N``): ``source`` lines
of the card keep resolving relative to that folder, as Delphes resolves them against the top-level
card's folder.  ``N`` derives from the card name and the first MiB of the HepMC file (which holds
the first events' momenta, so every chunk gets its own seed).  A card that sets ``RandomSeed``
itself keeps its own value (the wrapper does not override a non-zero card seed).

Delphes refuses to overwrite its output: it writes to a fresh temporary name beside ``out``, which
is renamed only on success (:func:`fast2full.common.atomic_output`); on failure the error names
the card and quotes the end of Delphes' own message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fast2full.common import Fast2FullError, InputError, atomic_output, stable_hash64

log = logging.getLogger("fast2full.simulate")

EXECUTABLE = "DelphesHepMC3"
#: the prebuilt copy, relative to the repository root (see ../shared/delphes/README.md)
SHARED_RELPATH = Path("..") / "shared" / "delphes" / "bin" / EXECUTABLE
_REPO = Path(__file__).resolve().parents[3]
_RANDOM_SEED = re.compile(r"^\s*set\s+RandomSeed\s+(\S+)", re.MULTILINE)


def find_delphes(repo_root: str | Path | None = None) -> Path | None:
    """The ``DelphesHepMC3`` to use (see the module docstring), or None if there is none."""
    env = os.environ.get("FAST2FULL_DELPHES")
    if env:
        return Path(env) if Path(env).is_file() else None
    on_path = shutil.which(EXECUTABLE)
    if on_path:
        return Path(on_path)
    for root in ([Path(repo_root)] if repo_root else []) + [Path.cwd(), _REPO]:
        cand = (root / SHARED_RELPATH).resolve()
        if cand.is_file():
            return cand
    return None


def delphes_env() -> dict[str, str]:
    """The environment for the prebuilt wrapper: ``DELPHES_ROOT_PYTHON`` defaults to this Python."""
    env = dict(os.environ)
    env.setdefault("DELPHES_ROOT_PYTHON", sys.executable)
    return env


def card_seed(card: Path, hepmc: Path) -> int:
    """The RandomSeed for (card, HepMC file): 1..2**31-1, from the card name and the file's head."""
    with open(hepmc, "rb") as fh:
        head = hashlib.sha256(fh.read(1 << 20)).hexdigest()
    return 1 + stable_hash64("delphes", card.name, head) % (2**31 - 2)


def run_delphes(
    card: str | Path,
    hepmc: str | Path,
    out: str | Path,
    exe: str | Path | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> float:
    """Run real Delphes with ``card`` on ``hepmc`` and write its tree to ``out`` (atomically).

    ``seed``: the RandomSeed (default :func:`card_seed`; 0 = let Delphes draw one).  Returns the
    wall time of the Delphes process in seconds.  Raises :class:`Fast2FullError` if no executable
    is found or Delphes fails (the message quotes Delphes' last lines), :class:`InputError` if an
    input is missing.
    """
    card, hepmc = Path(card), Path(hepmc)
    for p in (card, hepmc):
        if not p.is_file():
            raise InputError(p, "file not found")
    exe = Path(exe) if exe else find_delphes()
    if exe is None:
        raise Fast2FullError(
            f"real Delphes ({EXECUTABLE}) not found: set FAST2FULL_DELPHES, put {EXECUTABLE} on PATH "
            f"(conda env envs/delphes.yaml) or provide {SHARED_RELPATH} (../shared/delphes/README.md)"
        )
    m = _RANDOM_SEED.search(card.read_text())
    card_has_seed = m is not None and m.group(1) not in ("0", "{0}", '"0"')
    if seed is None:
        seed = 0 if card_has_seed else card_seed(card, hepmc)
    wrapper = None
    run_card = card
    if seed and not card_has_seed:
        wrapper = card.parent / f".{card.stem}.seed{seed}.{os.getpid()}.tcl"
        wrapper.write_text(
            f"# written by fast2full.delphes.real for one run; removed after it\n"
            f"source {card.name}\nset RandomSeed {seed}\n"
        )
        run_card = wrapper
    try:
        with atomic_output(out) as tmp:
            cmd = [str(exe), str(run_card), str(tmp), str(hepmc)]
            log.info("running %s (RandomSeed %s)", " ".join(cmd), seed or "from the card/none")
            t0 = time.perf_counter()
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, env=delphes_env(), timeout=timeout)
            except subprocess.TimeoutExpired:
                raise Fast2FullError(f"{card}: {EXECUTABLE} did not finish within {timeout} s") from None
            wall = time.perf_counter() - t0
            if res.returncode != 0 or not Path(tmp).is_file():
                tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-8:])
                raise Fast2FullError(f"{card}: {EXECUTABLE} failed (exit {res.returncode}) on {hepmc}:\n{tail}")
            for line in res.stdout.splitlines():
                if "Error" in line or "error" in line:
                    log.warning("Delphes: %s", line)
    finally:
        if wrapper is not None:
            wrapper.unlink(missing_ok=True)
    log.info("real Delphes: %s -> %s in %.1f s", hepmc, out, wall)
    return wall


__all__ = ["EXECUTABLE", "card_seed", "delphes_env", "find_delphes", "run_delphes"]
