"""HepMC3 export of generation chunks: round trip with pyhepmc, vertex structure, bad input."""

from __future__ import annotations

import copy

import awkward as ak
import numpy as np
import pyhepmc
import pytest

from fast2full import generate as gen
from fast2full import hepmc, particles
from fast2full.cli import main as cli_main
from fast2full.common import Fast2FullError, InputError
from fast2full.config import load_config

N_EVENTS = 8


@pytest.fixture(scope="module")
def ttbar_file(repo_root, tmp_path_factory):
    config = load_config(repo_root / "config.yaml", base_dir=repo_root)
    cfg = copy.deepcopy(config)
    cfg["processes"]["ttbar"]["events_per_chunk"] = N_EVENTS
    path = tmp_path_factory.mktemp("gen") / "ttbar" / "0.parquet"
    gen.run_generate(cfg, "ttbar", 0, path)
    return path


@pytest.fixture(scope="module")
def exported(ttbar_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("hepmc") / "0.hepmc"
    assert hepmc.export_hepmc(ttbar_file, out) == N_EVENTS
    with pyhepmc.open(out) as f:
        events = list(f)
    return particles.read_particles(ttbar_file), events


def test_round_trip_particles(exported):
    src, events = exported
    assert len(events) == N_EVENTS
    for i, ev in enumerate(events):
        p = src.particles[i]
        parts = ev.particles
        assert len(parts) == len(p)
        assert np.array_equal([q.pid for q in parts], ak.to_numpy(p.pid))
        mom = np.array([[q.momentum.px, q.momentum.py, q.momentum.pz, q.momentum.e] for q in parts])
        ref = np.stack([ak.to_numpy(p[f]) for f in ("px", "py", "pz", "e")], axis=1)
        np.testing.assert_allclose(mom, ref, rtol=1e-6, atol=1e-6)
        assert np.array_equal([q.status for q in parts], hepmc.hepmc_status(ak.to_numpy(p.status)))
        assert ev.momentum_unit == pyhepmc.Units.GEV and ev.length_unit == pyhepmc.Units.MM
        assert ev.weights[0] == pytest.approx(float(src.weight[i]))
        assert ev.cross_section.xsec() == pytest.approx(float(src.sigma_pb[i]))
        assert ev.attributes["fast2full_event_id"].astype(str) == str(int(src.event_id[i]))
        # the HepMC event number (what real Delphes writes as Event.Number) completes back to the ID
        assert particles.complete_event_ids(np.array([ev.event_number]), "ttbar", 0)[0] == src.event_id[i]


def test_vertex_structure(exported):
    _, events = exported
    for ev in events:
        beams = [q for q in ev.particles if q.status == hepmc.HEPMC_BEAM]
        assert len(beams) == 2
        pv = beams[0].end_vertex
        assert pv is not None and pv.id < 0 and beams[1].end_vertex.id == pv.id
        for q in ev.particles:
            if q.status == hepmc.HEPMC_BEAM:
                continue
            # every non-beam particle is produced at a real (non-root) vertex
            assert q.production_vertex is not None and q.production_vertex.id < 0, q
        finals = [q for q in ev.particles if q.status == hepmc.HEPMC_FINAL]
        assert finals and all(q.end_vertex is None for q in finals)
        # the top pair comes from one hard vertex fed by two incoming partons
        tops = [q for q in ev.particles if abs(q.pid) == gen.PDG_TOP and q.status == 22]
        assert len(tops) == 2 and tops[0].production_vertex.id == tops[1].production_vertex.id
        assert len(tops[0].production_vertex.particles_in) == 2


def test_hepevt_parents_unit():
    status = np.array([-12, -12, -21, -21, -22, -22, 63, 1], dtype=np.int32)
    m1 = np.array([-1, -1, 5, -1, 2, 2, 0, -1])
    m2 = np.array([-1, -1, -1, -1, 3, 3, -1, -1])
    parents = hepmc.hepevt_parents(m1, m2, status)
    assert parents.tolist() == [
        [-1, -1],
        [-1, -1],
        [0, 1],  # mother listed after it: primary vertex
        [0, 1],  # pruned mother
        [2, 3],
        [2, 3],  # range of two mothers
        [0, 1],  # beam remnant: primary vertex
        [0, 1],
    ]
    with pytest.raises(Fast2FullError, match="beam"):
        hepmc.hepevt_parents(m1[2:], m2[2:], status[2:])


def test_bad_input_no_output(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 truncated")
    out = tmp_path / "bad.hepmc"
    with pytest.raises(InputError, match=str(bad)):
        hepmc.export_hepmc(bad, out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.parquet"]


def test_cli(ttbar_file, tmp_path):
    out = tmp_path / "x.hepmc"
    assert cli_main(["export-hepmc", "--in", str(ttbar_file), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    missing = tmp_path / "missing.parquet"
    assert cli_main(["export-hepmc", "--in", str(missing), "--out", str(tmp_path / "y.hepmc")]) == 1
    assert not (tmp_path / "y.hepmc").exists()


def test_head_hepmc(ttbar_file, tmp_path):
    """The first n events of a real export, readable by pyhepmc, the same events as the full file's."""
    full = tmp_path / "all.hepmc"
    hepmc.export_hepmc(ttbar_file, full)
    assert hepmc.head_hepmc(full, tmp_path / "h3.hepmc", 3) == 3
    assert hepmc.head_hepmc(full, tmp_path / "hall.hepmc", 100) == N_EVENTS  # fewer events than asked
    with pyhepmc.open(full) as f:
        ref = [(e.event_number, len(e.particles)) for e in f]
    for name, n in (("h3.hepmc", 3), ("hall.hepmc", N_EVENTS)):
        with pyhepmc.open(tmp_path / name) as f:
            assert [(e.event_number, len(e.particles)) for e in f] == ref[:n]
