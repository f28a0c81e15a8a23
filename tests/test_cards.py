"""The two detector cards and the card parser: syntax, supported modules, physics differences."""

import re
from pathlib import Path

import pytest

from fast2full.delphes.card import CardError, card_dependencies, parse_card
from fast2full.delphes.engine import Simulation
from fast2full.delphes.modules import MODULES

CARDS = ["cards/atlas_like.tcl", "cards/cms_like.tcl"]


@pytest.fixture(autouse=True)
def _at_repo_root(repo_root, monkeypatch):
    # `source` in the cards is relative to the repository root, where Snakemake runs
    monkeypatch.chdir(repo_root)


@pytest.mark.parametrize("card", CARDS)
def test_card_builds_every_module(card):
    sim = Simulation.from_card(card)
    assert [m.name for m in sim.modules] == sim.card.execution_path
    assert {m.spec.type for m in sim.modules} <= set(MODULES)
    assert sim.modules[-1].spec.type == "TreeWriter"


@pytest.mark.parametrize("card", CARDS)
def test_card_dependencies_include_sourced_files(card):
    deps = card_dependencies(card)
    assert deps[0] == card
    assert any(d.endswith("common/genlevel.tcl") for d in deps)
    assert all(Path(d).is_file() for d in deps)


def _param(card, module, name):
    return card.modules[module].params[name]


def test_cards_differ_like_the_detectors():
    atlas, cms = (parse_card(c) for c in CARDS)

    def num(card, module, name):
        return _param(card, module, name).as_float()

    # solenoid field and tracker volume
    assert num(atlas, "ParticlePropagator", "Bz") == 2.0
    assert num(cms, "ParticlePropagator", "Bz") == 3.8
    assert num(atlas, "ParticlePropagator", "Radius") != num(cms, "ParticlePropagator", "Radius")
    # calorimeter (tower) jets for ATLAS, particle-flow jets for CMS; anti-kt R = 0.4 for both
    assert _param(atlas, "FastJetFinder", "InputArray").as_str() == "Calorimeter/towers"
    assert _param(cms, "FastJetFinder", "InputArray").as_str() == "EFlowMerger/eflow"
    for card in (atlas, cms):
        assert _param(card, "FastJetFinder", "JetAlgorithm").as_int() == 6
        assert num(card, "FastJetFinder", "ParameterR") == 0.4
    # resolutions, efficiencies and granularity differ
    for module, name in [
        ("Calorimeter", "ECalResolutionFormula"),
        ("Calorimeter", "HCalResolutionFormula"),
        ("ChargedHadronMomentumSmearing", "ResolutionFormula"),
        ("MuonMomentumSmearing", "ResolutionFormula"),
        ("ElectronEfficiency", "EfficiencyFormula"),
        ("MuonEfficiency", "EfficiencyFormula"),
    ]:
        assert _param(atlas, module, name).as_str() != _param(cms, module, name).as_str()
    a_cal, c_cal = (Simulation.from_card(c).modules for c in CARDS)
    a_cal = next(m for m in a_cal if m.name == "Calorimeter")
    c_cal = next(m for m in c_cal if m.name == "Calorimeter")
    assert len(a_cal.comb) != len(c_cal.comb)
    btag = [[w.text for w in _param(c, "BTagging", "EfficiencyFormula").values] for c in (atlas, cms)]
    assert btag[0] != btag[1]


@pytest.mark.parametrize("card", CARDS)
def test_every_number_module_cites_a_source(repo_root, card):
    """Each module with detector numbers is preceded by a comment citing a source tag like [DET]."""
    text = (repo_root / card).read_text()
    tags = set(re.findall(r"^#\s+\[([A-Z]+)\]", text, flags=re.M))
    assert tags, "the card header lists its sources"
    blocks = re.split(r"\n(?=module )", text)
    for prev, block in zip(blocks, blocks[1:]):
        mtype = block.split()[1]
        if mtype in ("Efficiency", "MomentumSmearing", "Calorimeter", "BTagging", "ParticlePropagator"):
            comment = "\n".join(line for line in prev.splitlines()[-8:] if line.startswith("#"))
            assert re.search(r"\[(%s)" % "|".join(tags), comment), f"{card}: {block.splitlines()[0]}"


GOOD = """set ExecutionPath {A}
module Efficiency A {
  set InputArray Delphes/stableParticles
  set EfficiencyFormula {(pt > 1.0) * 0.9}
}
"""


@pytest.mark.parametrize(
    "text, line, message",
    [
        (GOOD.replace("module Efficiency A {", "module Efficiency A {{"), 2, "missing close-brace"),
        (GOOD + "}\n", 6, 'invalid command name "}"'),
        (GOOD.replace("Efficiency A", "Efficency A"), 2, "module type 'Efficency' is not supported"),
        (GOOD.replace("set InputArray", "set InputArrray"), 3, "unknown parameter 'InputArrray'"),
        (GOOD.replace("Delphes/stableParticles", "$input"), 3, 'can\'t read "input": no such variable'),
        (GOOD.replace("(pt > 1.0)", "(pt > $cut)"), 4, "unexpected character '$'"),  # braces: no substitution
        (GOOD.replace("(pt > 1.0)", "(pt >> 1.0)"), 4, "parameter 'EfficiencyFormula'"),
        (GOOD.replace("set ExecutionPath {A}", "set ExecutionPath {A B}"), 1, "module 'B' that is not defined"),
        (GOOD + "for {set i 0} {$i < 3} {incr i} {\n  exec ls\n}\n", 7, 'invalid command name "exec"'),
        (GOOD + 'set Title "unterminated\n', 6, 'missing "'),
        (GOOD + "source missing_file.tcl\n", 6, "sourced file not found"),
        (GOOD.replace("set InputArray Delphes/stableParticles", "set InputArray a b"), 3, "wrong # args"),
    ],
)
def test_malformed_card_names_file_and_line(tmp_path, text, line, message):
    card = tmp_path / "bad.tcl"
    card.write_text(text)
    with pytest.raises(CardError) as err:
        Simulation.from_card(card)
    assert message in str(err.value)
    if line is not None:
        assert err.value.line == line
        assert str(err.value).startswith(f"{card}:{line}:")


def test_unknown_module_lists_supported(tmp_path):
    card = tmp_path / "bad.tcl"
    card.write_text(GOOD.replace("Efficiency A", "TrackCountingBTagging A"))
    with pytest.raises(CardError, match="supported: .*Calorimeter.*FastJetFinder"):
        Simulation.from_card(card)


def test_parser_syntax(tmp_path):
    (tmp_path / "inc.tcl").write_text("module Merger M {\n  add InputArray a/b c/d\n  add InputArray e/f\n}\n")
    card = tmp_path / "c.tcl"
    card.write_text('# comment\nset ExecutionPath {\n  M\n}\nsource inc.tcl ; set Other "x y"\nset Long \\\n   value\n')
    c = parse_card(card)
    assert c.execution_path == ["M"]
    assert [w.text for w in c.modules["M"].params["InputArray"].values] == ["a/b", "c/d", "e/f"]
    assert c.globals["Other"].as_str() == "x y"
    assert c.globals["Long"].as_str() == "value" and c.globals["Long"].line == 6
    assert c.modules["M"].line == 1 and c.modules["M"].path.endswith("inc.tcl")
    assert card_dependencies(card) == [str(card), str(tmp_path / "inc.tcl")]


def test_card_without_treewriter_is_refused(tmp_path):
    card = tmp_path / "c.tcl"
    card.write_text(GOOD)
    with pytest.raises(CardError, match="no TreeWriter"):
        Simulation.from_card(card)


@pytest.mark.parametrize("card", CARDS)
def test_calorimeter_resolution_covers_every_tower(card):
    import numpy as np

    cal = next(m for m in Simulation.from_card(card).modules if m.spec.type == "Calorimeter")
    centres = 0.5 * (cal.eta_edges[1:] + cal.eta_edges[:-1])
    e = np.full(len(centres), 10.0)
    for f in (cal.ecal_res, cal.hcal_res):
        sigma = f(len(e), eta=centres, energy=e)
        assert np.all(sigma > 0.01 * 10.0), centres[sigma <= 0.1]
