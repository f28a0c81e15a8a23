"""The particles contract (fields, status codes, event-ID layout) is declared once in
``fast2full.particles`` and used by every stage that writes or reads it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from fast2full import particles
from fast2full.common import Fast2FullError

SRC = Path(particles.__file__).resolve().parent

#: the stages that write or read contract 1
USERS = ("generate.py", "delphes/engine.py", "hepmc.py", "readers/delphes.py", "delphes/modules/tau.py")


@pytest.mark.parametrize("process", ["ttbar", "minbias"])
@pytest.mark.parametrize("chunk", [0, 1, 37, (1 << particles.ID_CHUNK_BITS) - 1])
def test_event_ids_round_trip(process, chunk):
    ids = particles.event_ids(process, chunk, 1000)
    assert ids.dtype == np.int64 and len(set(ids.tolist())) == 1000
    proc, ch, index = particles.split_event_ids(ids)
    assert np.all(proc == particles.process_hash(process))
    assert np.all(ch == chunk)
    assert np.array_equal(index, np.arange(1000))
    # a simulator's event number, bare index (real Delphes from HepMC) or full ID (builtin engine),
    # completes back to the generation ID
    assert np.array_equal(particles.complete_event_ids(index, process, chunk), ids)
    assert np.array_equal(particles.complete_event_ids(ids, process, chunk), ids)


def test_event_id_layout_is_the_documented_one():
    assert (particles.ID_PROCESS_BITS, particles.ID_CHUNK_BITS, particles.ID_INDEX_BITS) == (20, 16, 24)
    assert particles.ID_PROCESS_BITS + particles.ID_PROCESS_SHIFT <= 63  # positive int64
    ids = particles.event_ids("ttbar", 3, 8)
    expected = (particles.process_hash("ttbar") << 40) | (3 << 24) | np.arange(8)
    assert np.array_equal(ids, expected)
    assert not set(particles.event_ids("ttbar", 0, 5)) & set(particles.event_ids("wjets", 0, 5))


def test_event_ids_refuse_what_the_layout_cannot_hold():
    with pytest.raises(Fast2FullError, match="chunk index 65536 out of range"):
        particles.event_ids("ttbar", 1 << 16, 3)
    with pytest.raises(Fast2FullError, match="exceed the event-ID limit"):
        particles.event_ids("ttbar", 0, (1 << 24) + 1)


def _imports_particles(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "fast2full.particles":
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "fast2full":
            names |= {"*module*" for a in node.names if a.name == "particles"}
    return names


@pytest.mark.parametrize("user", USERS)
def test_every_user_imports_the_contract(user):
    assert _imports_particles(SRC / user), f"{user} does not import fast2full.particles"


def test_the_contract_is_declared_nowhere_else():
    """No other module of the package spells the field list, the beam status or the bit shifts."""
    layout = re.compile(
        r"<<\s*(40|24)\b|\b2\s*\*\*\s*(40|24)\b|^\s*(PARTICLE_FIELDS|EVENT_FIELDS|STATUS_BEAM)\s*[:=]", re.M
    )
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "particles.py" and layout.search(p.read_text())
    ]
    assert offenders == []
