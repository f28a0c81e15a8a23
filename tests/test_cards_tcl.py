"""Cards evaluated by a safe Tcl interpreter: Tcl as Delphes runs it, nothing beyond `source`."""

import json
import sys
from pathlib import Path

import pytest

from fast2full.delphes.card import CardError, card_dependencies, parse_card
from fast2full.delphes.engine import Simulation

HEAD = "set ExecutionPath {A TreeWriter}\nmodule TreeWriter TreeWriter {\n  add Branch A/out X Jet\n}\n"


def _card(tmp_path, text, name="c.tcl"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tcl_features_as_delphes_evaluates_them(tmp_path):
    (tmp_path / "eff.tcl").write_text("# sourced inside a module body\nset EfficiencyFormula {0.5}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.tcl").write_text("\nmodule Merger M {\n  add InputArray x/y\n}\n")
    card = _card(
        tmp_path,
        """set R 0.4
set ExecutionPath [list A X]
set ExecutionPath [lreplace $ExecutionPath end end]
add ExecutionPath M
module Efficiency A {
  set InputArray Delphes/stableParticles
  set pi [expr {acos(-1)}]
  set PhiBins {}
  for {set i -2} {$i <= 2} {incr i} {
    add PhiBins [expr {$i * $pi/2.0}]
  }
  foreach eta {-1 0 1} {
    add EtaPhiBins $eta $PhiBins
  }
  set Cut [expr {2 * $::R}]
  source eff.tcl
}
source sub/m.tcl
""",
    )
    c = parse_card(card)
    assert c.execution_path == ["A", "M"]
    a = c.modules["A"]
    assert a.params["Cut"].as_float() == pytest.approx(0.8)
    assert a.params["Cut"].line == 15
    # `source` inside a module body sets that module's parameters; the path is relative to the
    # top-level card's folder whichever file holds the line
    assert a.params["EfficiencyFormula"].as_str() == "0.5"
    assert a.params["EfficiencyFormula"].path == str(tmp_path / "eff.tcl")
    assert a.params["EfficiencyFormula"].line == 2
    bins = a.params["EtaPhiBins"]
    assert bins.is_add and bins.line == 13
    assert [w.text for w in bins.values[::2]] == ["-1", "0", "1"]
    phis = [float(w.text) for w in bins.values[1].words()]
    assert phis == pytest.approx([-3.141592653589793, -1.5707963267948966, 0, 1.5707963267948966, 3.141592653589793])
    # variables the card reads itself are helpers, not parameters (the engine would refuse them)
    assert set(a.helpers) == {"pi", "PhiBins", "i", "eta"}
    assert "pi" not in a.params
    m = c.modules["M"]
    assert (m.path, m.line) == (str(tmp_path / "sub" / "m.tcl"), 2)
    assert [w.text for w in m.params["InputArray"].values] == ["x/y"]
    assert c.globals["R"].as_float() == 0.4
    assert card_dependencies(card) == [str(card), str(tmp_path / "eff.tcl"), str(tmp_path / "sub" / "m.tcl")]


def test_a_read_parameter_stays_a_parameter(tmp_path):
    """A variable the module type knows is a parameter even when the card also reads it."""
    card = _card(
        tmp_path,
        "set ExecutionPath {J}\nmodule FastJetFinder J {\n  set ParameterR 0.4\n"
        "  set JetPTMin [expr {50 * $ParameterR}]\n  set Typo [expr {$ParameterR}]\n}\n",
    )
    c = parse_card(card)
    assert c.modules["J"].params["ParameterR"].as_float() == 0.4
    assert c.modules["J"].params["JetPTMin"].as_float() == 20.0
    assert "Typo" in c.modules["J"].params  # not read by the card: a (misspelt) parameter


@pytest.mark.parametrize(
    "line, message",
    [
        ("exec touch {OUT}", 'invalid command name "exec"'),
        ("set f [open {OUT} w]", 'invalid command name "open"'),
        ("file delete {VICTIM}", 'invalid command name "file"'),
        ("socket localhost 80", 'invalid command name "socket"'),
        ("load libc.so", 'invalid command name "load"'),
        ("cd /", 'invalid command name "cd"'),
        ("interp invokehidden {} exec touch {OUT}", "not allowed to invoke hidden commands"),
        ("after 100000", 'invalid command name "after"'),
        ("exit 3", 'invalid command name "exit"'),
    ],
)
def test_card_cannot_run_commands_or_touch_files(tmp_path, line, message):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "created.txt"
    text = line.replace("{OUT}", "{%s}" % out).replace("{VICTIM}", "{%s}" % victim)
    card = _card(tmp_path, f"set ExecutionPath {{A}}\nmodule Efficiency A {{\n  {text}\n}}\n")
    with pytest.raises(CardError) as err:
        parse_card(card)
    assert message in str(err.value)
    assert err.value.path == str(card) and err.value.line == 3
    assert victim.read_text() == "keep me" and not out.exists()


def test_catch_does_not_hide_a_project_error(tmp_path):
    card = _card(tmp_path, "catch {source nowhere.tcl}\nset ExecutionPath {A}\n")
    with pytest.raises(CardError, match=r"c.tcl:1: sourced file not found"):
        parse_card(card)


def test_python_text_in_a_formula_is_not_run(tmp_path):
    out = tmp_path / "pwned.txt"
    card = _card(
        tmp_path,
        HEAD + "module Efficiency A {\n  set InputArray Delphes/stableParticles\n"
        "  set OutputArray out\n"
        f"  set EfficiencyFormula {{__import__('os').system('touch {out}')}}\n}}\n",
    )
    with pytest.raises(CardError) as err:
        Simulation.from_card(card)
    assert "parameter 'EfficiencyFormula'" in str(err.value) and err.value.line == 8
    assert not out.exists()


def test_endless_loop_is_stopped(tmp_path, monkeypatch):
    import fast2full.delphes.card as card_mod

    monkeypatch.setattr(card_mod, "EVAL_TIME_LIMIT_S", 0.5)
    card = _card(tmp_path, "set ExecutionPath {A}\nwhile 1 {}\n")
    with pytest.raises(CardError, match="stopped after .* endless loop"):
        parse_card(card)


def test_source_loop_and_missing_source_name_the_line(tmp_path):
    _card(tmp_path, "set X 1\nsource a.tcl\n", "b.tcl")
    a = _card(tmp_path, "\nsource b.tcl\n", "a.tcl")
    with pytest.raises(CardError, match=r"b.tcl:2: recursive 'source'"):
        parse_card(a)
    with pytest.raises(CardError, match=r"b.tcl:2: recursive 'source'"):
        card_dependencies(a)
    m = _card(tmp_path, "set ExecutionPath {A}\nmodule Efficiency A {\n  source gone.tcl\n}\n", "m.tcl")
    with pytest.raises(CardError, match=r"m.tcl:3: sourced file not found: .*gone.tcl"):
        card_dependencies(m)
    assert card_dependencies(tmp_path / "absent.tcl") == [str(tmp_path / "absent.tcl")]


def test_fragment_and_errors_in_sourced_files(tmp_path):
    frag = _card(tmp_path, "add EnergyFraction {11} {1.0}\n", "frag.tcl")
    with pytest.raises(CardError, match="no 'set ExecutionPath.*fragment"):
        parse_card(frag)
    _card(tmp_path, "# x\n\nset a [expr {1 +}]\n", "bad.tcl")
    top = _card(tmp_path, "set ExecutionPath {A}\nmodule Efficiency A {\n  source bad.tcl\n}\n")
    with pytest.raises(CardError) as err:
        parse_card(top)
    assert (err.value.path, err.value.line) == (str(tmp_path / "bad.tcl"), 3)
    assert "missing operand" in str(err.value)


def test_module_configured_twice_keeps_the_first_type(tmp_path, caplog):
    """Delphes: 'module X is already configured. Only first entry will be used.' -- the body still
    runs in the module's namespace, so its parameters override (validation_card.tcl relies on it)."""
    card = _card(
        tmp_path,
        "set ExecutionPath {A}\nmodule Efficiency A {\n  set InputArray x\n"
        "  set OutputArray y\n}\nmodule Merger A {\n  set InputArray z\n}\n",
    )
    c = parse_card(card)
    a = c.modules["A"]
    assert (a.type, a.line) == ("Efficiency", 2)
    assert a.params["InputArray"].as_str() == "z" and a.params["InputArray"].line == 7
    assert a.params["OutputArray"].as_str() == "y"
    assert "already configured" in caplog.text


def test_missing_tkinter_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tkinter", None)  # `import tkinter` raises ImportError
    card = _card(tmp_path, "set ExecutionPath {A}\n")
    with pytest.raises(CardError, match="python3-tk"):
        parse_card(card)


# --- the project's own cards read exactly as the subset parser read them ---------------------------
def _dump(path):
    c = parse_card(path)
    return {
        "path": c.path,
        "execution_path": c.execution_path,
        "globals": {
            k: {"line": p.line, "path": p.path, "values": [v.text for v in p.values]} for k, p in c.globals.items()
        },
        "modules": {
            name: {
                "type": m.type,
                "path": m.path,
                "line": m.line,
                "params": {
                    pn: {
                        "line": p.line,
                        "path": p.path,
                        "is_add": p.is_add,
                        "values": [v.text for v in p.values],
                        "words": [[x.text for x in v.words()] for v in p.values],
                    }
                    for pn, p in m.params.items()
                },
            }
            for name, m in c.modules.items()
        },
    }


@pytest.mark.parametrize("card", ["cards/atlas_like.tcl", "cards/cms_like.tcl"])
def test_project_cards_read_as_before(repo_root, monkeypatch, card):
    """Every module, parameter, value, list element, file and line of the project's cards is what
    the subset parser (before the Tcl reader) produced: ``tests/data/project_cards_parsed.json``
    was written by it, so the engine gets the same input and writes the same trees."""
    monkeypatch.chdir(repo_root)
    before = json.loads((Path(__file__).parent / "data" / "project_cards_parsed.json").read_text())
    now = json.loads(json.dumps(_dump(card)))
    assert now["execution_path"] == before[card]["execution_path"]
    assert now["globals"] == before[card]["globals"]
    assert now["modules"].keys() == before[card]["modules"].keys()
    for name, mod in before[card]["modules"].items():
        assert now["modules"][name] == mod, name
    assert not any(m.helpers for m in parse_card(card).modules.values())
