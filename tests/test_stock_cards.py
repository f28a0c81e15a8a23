"""Delphes' own 153 stock cards (``../shared/delphes/cards``) through the card reader and the engine.

Every card either builds its whole module chain in the builtin engine or stops with one
``CardError`` naming the file (and, for a module or parameter, its line) and the unsupported
module type, parameter or missing piece -- never another exception.  The values the reader hands
the engine are checked against an independent evaluation of the same card by a second Tcl
interpreter set up as Delphes' ``ExRootConfReader`` does (``module`` = ``namespace eval``,
``add`` = ``lappend``), without any of the project's bookkeeping.
"""

from __future__ import annotations

import functools
import os
import re
import tkinter
from collections import Counter
from pathlib import Path

import pytest

from fast2full.delphes.card import CardError, evaluate_card, split_list
from fast2full.delphes.engine import Simulation

CARDS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "delphes" / "cards"
CARDS = sorted(CARDS_DIR.rglob("*.tcl")) if CARDS_DIR.is_dir() else []
needs_cards = pytest.mark.skipif(not CARDS, reason=f"Delphes' stock cards not found at {CARDS_DIR}")

#: what a stop may say (each names the unsupported thing)
STOP_KINDS = {
    "fragment": r"no 'set ExecutionPath \{\.\.\.\}' \(a fragment",
    "module": r"module type '(\w+)' is not supported by the builtin engine",
    "parameter": r"module (\w+) \w+: unknown parameter '(\w+)'",
    "source": r"sourced file not found",
    "value": r"parameter '\w+': ",
    "no TreeWriter": r"no TreeWriter module in the ExecutionPath",
    "unsupported value": r"module (\w+) \w+: (\w+ \S+) is not supported",
}


def delphes_eval(card: Path) -> dict[str, dict[str, str]]:
    """The card's module variables as ExRootConfReader's Tcl holds them: {module: {var: value}}."""
    m = tkinter.Tcl()
    m.tk.wantobjects(False)
    m.eval("interp create -safe p")

    def source(name):
        m.call("interp", "invokehidden", "p", "source", "-encoding", "utf-8", os.path.abspath(card.parent / name))
        return ""

    m.createcommand("plain_source", source)
    m.eval("interp alias p ::__src {} plain_source")
    m.call(
        "p",
        "eval",
        r"""
        proc ::module {type name args} {lappend ::__modules $name; namespace eval ::$name {*}$args}
        proc ::add {name args} {uplevel 1 [list lappend $name {*}$args]}
        proc ::source {f} {uplevel 1 [list ::__src $f]}
        set ::__modules {}
    """,
    )
    m.call("interp", "invokehidden", "p", "source", "-encoding", "utf-8", os.path.abspath(card))
    out: dict[str, dict[str, str]] = {}
    for name in m.splitlist(m.call("p", "eval", "set ::__modules")):
        out[name] = {
            str(q).rsplit("::", 1)[1]: m.call("p", "eval", f"set {{{q}}}")
            for q in m.splitlist(m.call("p", "eval", f"info vars ::{name}::*"))
        }
    return out


@functools.cache  # the tally reuses the per-card runs of the same session
def outcome(card: Path) -> tuple[str, str]:
    """('builds', '') or ('stops', kind + detail); anything but a CardError propagates."""
    try:
        Simulation.from_card(card)
        return "builds", ""
    except CardError as err:
        assert str(err).startswith(str(err.path)), err
        assert Path(err.path).is_file(), f"the error names an existing file: {err}"
        for kind, pattern in STOP_KINDS.items():
            m = re.search(pattern, err.cause)
            if m:
                if kind not in ("fragment", "no TreeWriter"):  # about the whole card
                    assert err.line, f"a {kind} stop names the line: {err}"
                return "stops", f"{kind}: {' '.join(m.groups()) if m.groups() else ''}".strip()
        raise AssertionError(f"unexpected kind of stop for {card}: {err}") from None


@needs_cards
def test_corpus_is_complete():
    assert len(CARDS) == 153, len(CARDS)


@needs_cards
@pytest.mark.slow
@pytest.mark.parametrize("card", CARDS, ids=[str(c.relative_to(CARDS_DIR)) for c in CARDS])
def test_stock_card_builds_or_stops_clearly(card):
    status, why = outcome(card)
    assert status in ("builds", "stops")
    try:
        ours = evaluate_card(card)
    except CardError as err:
        # only a card whose own `source` fails (as it does in Delphes) cannot be evaluated
        assert "sourced file not found" in err.cause, err
        with pytest.raises(tkinter.TclError):
            delphes_eval(card)
        return
    theirs = delphes_eval(card)
    assert list(ours.modules) == list(dict.fromkeys(theirs))
    for name, mod in ours.modules.items():
        variables = {**mod.params, **mod.helpers}
        assert variables.keys() == theirs[name].keys(), name
        for pname, p in variables.items():
            tcl = theirs[name][pname]
            if p.is_add:
                assert [w.text for w in p.values] == list(split_list(tcl)), (name, pname)
            else:
                assert p.as_str() == tcl, (name, pname)
            assert Path(p.path).is_file() and p.line > 0, (name, pname, p.path, p.line)


@needs_cards
@pytest.mark.slow
def test_corpus_tally(capsys):
    """The tally quoted in docs/simulation.md (printed with -s)."""
    tally, why = Counter(), Counter()
    for card in CARDS:
        status, detail = outcome(card)
        tally[status] += 1
        if detail:
            why[detail] += 1
    with capsys.disabled():
        print(f"\nstock cards: {dict(tally)}")
        for k, v in why.most_common():
            print(f"  {v:4d}  {k}")
    assert sum(tally.values()) == len(CARDS)
    # the stock ATLAS and CMS cards run in the builtin engine
    for name in ("delphes_card_ATLAS.tcl", "delphes_card_CMS.tcl"):
        assert outcome(CARDS_DIR / name) == ("builds", ""), name
