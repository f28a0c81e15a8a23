"""Check every Pythia setting of a config before any job runs: the name exists in Pythia and the value
Pythia reads back equals what was written.

Run from the Snakefile's config validation (so also under ``snakemake -n``), by ``fast2full
validate-config`` and by ``fast2full generate`` (for its own process).  One ``pythia8mc.Pythia("",
False)`` object, with the ``ResonanceDecayFilterHook`` attached as in :func:`fast2full.generate.make_pythia`
(so the ``ResonanceDecayFilter:*`` settings exist), and no ``init()``: about 0.3 s for a whole config.

Per line ``Key = value`` (or ``Key value``, as Pythia reads it):

* a settings-database key (``PhaseSpace:pTHatMin``): it must be a flag, mode, parm, word or one of the
  vector types; the value is parsed strictly here (a flag is one of on/off, true/false, yes/no, 1/0, ok;
  a mode an integer; a parm a real number; vectors comma- or space-separated), and after
  ``readString`` the value Pythia stores must equal it (so Pythia's range clamping or its lenient number
  parsing, which reads ``3O.`` as 3, is an error);
* a particle-data line (``24:onIfAny = 11 13 15``, the key starts with a PDG code): Pythia must accept it
  (known particle and property); integer lists (``onIfAny`` and friends) and real-valued properties
  (``m0``, ``mWidth``, ``mMin``, ``mMax``, ``tau0``) are parsed strictly, the real ones read back.

Any failure is one :class:`fast2full.config.ConfigError` naming the config key
(``processes.wjets.settings[4]``), the process, the line and the cause.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("fast2full.pythia_settings")

_LINE = re.compile(r"^\s*([^\s=]+)\s*(?:=\s*|\s+)(.*?)\s*$")
FLAG_TRUE = ("on", "true", "yes", "1", "ok")
FLAG_FALSE = ("off", "false", "no", "0")
#: particle-data properties that take a list of PDG codes
PARTICLE_INT_LISTS = (
    "onifany",
    "onifall",
    "onifmatch",
    "offifany",
    "offifall",
    "offifmatch",
    "onposifany",
    "onposifall",
    "onposifmatch",
    "onnegifany",
    "onnegifall",
    "onnegifmatch",
)
#: particle-data properties with a real value, and the ParticleData getter that reads them back
PARTICLE_PARMS = {"m0": "m0", "mwidth": "mWidth", "mmin": "mMin", "mmax": "mMax", "tau0": "tau0"}
#: relative tolerance of the read-back comparison of real values (Pythia stores doubles)
REL_TOL = 1e-12


def _strict_float(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _strict_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,{}]+", text) if t]


def _check_setting(pythia, key: str, value: str) -> str | None:
    """None if ``key = value`` is a valid settings-database line that reads back, else the cause."""
    s = pythia.settings
    if s.isFlag(key):
        low = value.lower()
        if low not in FLAG_TRUE + FLAG_FALSE:
            return f"value '{value}' is not a flag (on/off, true/false, yes/no, 1/0)"
        want: Any = low in FLAG_TRUE
        kind, read = "flag", s.flag
    elif s.isMode(key):
        want = _strict_int(value)
        if want is None:
            return f"value '{value}' is not an integer ({key} is an integer mode)"
        kind, read = "mode", s.mode
    elif s.isParm(key):
        want = _strict_float(value)
        if want is None:
            return f"value '{value}' is not a number ({key} is a real-valued parameter)"
        kind, read = "parm", s.parm
    elif s.isWord(key):
        want, kind, read = value, "word", s.word
    elif s.isMVec(key):
        want = [_strict_int(t) for t in _tokens(value)]
        if not want or None in want:
            return f"value '{value}' is not a list of integers ({key} is an integer vector)"
        kind, read = "mvec", lambda k: list(s.mvec(k))
    elif s.isPVec(key):
        want = [_strict_float(t) for t in _tokens(value)]
        if not want or None in want:
            return f"value '{value}' is not a list of numbers ({key} is a real-valued vector)"
        kind, read = "pvec", lambda k: list(s.pvec(k))
    elif s.isFVec(key):
        toks = [t.lower() for t in _tokens(value)]
        if not toks or any(t not in FLAG_TRUE + FLAG_FALSE for t in toks):
            return f"value '{value}' is not a list of flags ({key} is a flag vector)"
        want, kind, read = [t in FLAG_TRUE for t in toks], "fvec", lambda k: list(s.fvec(k))
    elif s.isWVec(key):
        want, kind, read = _tokens(value), "wvec", lambda k: list(s.wvec(k))
    else:
        return f"'{key}' is not a Pythia setting (no flag, mode, parm, word or vector of that name)"
    if not pythia.readString(f"{key} = {value}"):
        return f"Pythia rejected it (out of the allowed range of {key}?)"
    got = read(key)
    if kind in ("parm", "pvec"):
        same = (
            (len(got) == len(want) and all(math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0) for a, b in zip(got, want)))
            if kind == "pvec"
            else math.isclose(got, want, rel_tol=REL_TOL, abs_tol=0.0)
        )
    elif kind == "word":
        same = got.strip() == want.strip()
    else:
        same = got == want
    if not same:
        return f"Pythia stores {key} = {got!r}, not the {want!r} written (clamped to its allowed range?)"
    return None


def _check_particle(pythia, key: str, value: str) -> str | None:
    """None if the particle-data line is accepted and (where checkable) reads back, else the cause."""
    code, _, prop = key.partition(":")
    prop_low = prop.lower()
    if prop_low in PARTICLE_INT_LISTS:
        toks = _tokens(value)
        if not toks or any(_strict_int(t) is None for t in toks):
            return f"value '{value}' is not a list of PDG codes"
    want = None
    if prop_low in PARTICLE_PARMS:
        want = _strict_float(value)
        if want is None:
            return f"value '{value}' is not a number"
    if not pythia.readString(f"{key} = {value}"):
        return "Pythia rejected it (unknown particle or particle property, or a bad value)"
    if want is not None:
        got = getattr(pythia.particleData, PARTICLE_PARMS[prop_low])(int(code))
        if not math.isclose(got, want, rel_tol=REL_TOL, abs_tol=0.0):
            return f"Pythia stores {key} = {got!r}, not the {want!r} written"
    return None


def check_line(pythia, line: str) -> str | None:
    """None if Pythia reads ``line`` as written, else the cause (a sentence)."""
    if not line.strip() or not line.strip()[0].isalnum():  # Pythia ignores comment lines
        return None
    m = _LINE.match(line)
    if not m or not m.group(2):
        return "not a 'Key = value' line"
    key, value = m.group(1), m.group(2)
    if key[0].isdigit() or key.startswith("-"):
        return _check_particle(pythia, key, value)
    return _check_setting(pythia, key, value)


def new_pythia():
    """One uninitialised Pythia with the ResonanceDecayFilter:* settings registered (as in generation)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    hook = pythia8mc.ResonanceDecayFilterHook(pythia.settings)
    pythia.setUserHooksPtr(hook)
    return pythia, hook


def config_lines(config: dict, processes: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """(config key, process, line) of every Pythia line of the config (common settings once per run)."""
    gen = config.get("generation", {}) or {}
    out = [
        (f"generation.common_settings[{i}]", "every process", s)
        for i, s in enumerate(gen.get("common_settings", []) or [])
    ]
    if "sqrt_s_gev" in gen:
        out.append(("generation.sqrt_s_gev", "every process", f"Beams:eCM = {float(gen['sqrt_s_gev'])!r}"))
    procs = config.get("processes", {}) or {}
    for name in procs if processes is None else processes:
        for i, s in enumerate((procs.get(name) or {}).get("settings", []) or []):
            out.append((f"processes.{name}.settings[{i}]", name, s))
    return out


def check_config(config: dict, source: str = "config", processes: Iterable[str] | None = None) -> int:
    """Check every Pythia line of ``config`` (or of the given processes); returns the lines checked.

    Raises :class:`fast2full.config.ConfigError` on the first bad line.  Without ``pythia8mc`` (a
    Snakemake environment without the package) nothing is checked, with a warning saying so; the
    ``generate`` job checks its own process again.
    """
    from fast2full.config import ConfigError

    lines = config_lines(config, processes)
    if not lines:
        return 0
    try:
        pythia, hook = new_pythia()
    except ImportError as exc:
        log.warning("%s: Pythia settings not checked: pythia8mc is not importable here (%s)", source, exc)
        return 0
    try:
        for key, proc, line in lines:
            cause = check_line(pythia, line)
            if cause is not None:
                where = f"process '{proc}'" if proc != "every process" else "every process"
                raise ConfigError(f"{source}: invalid key '{key}': Pythia setting '{line}' of {where}: {cause}")
    finally:
        del hook, pythia
    return len(lines)


__all__ = ["check_config", "check_line", "config_lines", "new_pythia"]
