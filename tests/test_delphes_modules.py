"""Unit tests of the columnar building blocks and single modules of the builtin engine."""

import numpy as np
import pytest

from fast2full.delphes.candidates import Coll, log_normal, pairs, pdg_charge
from fast2full.delphes.card import Module as CardModule
from fast2full.delphes.card import Param, Word
from fast2full.delphes.modules import C_LIGHT_GEV, Calorimeter, Context, Merger, ParticlePropagator, UniqueObjectFinder


@pytest.mark.parametrize(
    "pid, charge",
    [
        (11, -1),
        (-11, 1),
        (13, -1),
        (22, 0),
        (12, 0),
        (211, 1),
        (-211, -1),
        (111, 0),
        (321, 1),
        (-321, -1),
        (311, 0),
        (130, 0),
        (310, 0),
        (411, 1),
        (421, 0),
        (431, 1),
        (511, 0),
        (521, 1),
        (-521, -1),
        (2212, 1),
        (-2212, -1),
        (2112, 0),
        (3122, 0),
        (3222, 1),
        (3112, -1),
        (3312, -1),
        (3334, -1),
        (4122, 1),
        (24, 1),
        (-24, -1),
        (2, 0),
        (21, 0),
        (1000010020, 0),
    ],
)
def test_pdg_charge(pid, charge):
    assert pdg_charge(np.array([pid]))[0] == charge


def _coll(counts, **cols):
    n = sum(counts)
    base = {k: np.zeros(n) for k in ("px", "py", "pz", "e")}
    base.update({k: np.asarray(v) for k, v in cols.items()})
    return Coll(np.asarray(counts), base)


def test_take_merge_and_pairs():
    a = _coll([2, 0, 1], px=[1.0, 2.0, 3.0], uid=[10, 11, 12])
    b = _coll([1, 2, 0], px=[4.0, 5.0, 6.0], uid=[20, 21, 22])
    m = Coll.merge([a, b])
    np.testing.assert_array_equal(m.counts, [3, 2, 1])
    np.testing.assert_array_equal(m["px"], [1, 2, 4, 5, 6, 3])
    owner, ids = m.ids()
    np.testing.assert_array_equal(m["uid"][owner], ids)
    t = m.take(m["px"] > 2.5)
    np.testing.assert_array_equal(t.counts, [1, 2, 1])
    ia, jb = pairs(a, b)
    np.testing.assert_array_equal(a.evt[ia], b.evt[jb])
    assert len(ia) == 2 * 1 + 0 * 2 + 1 * 0


def test_log_normal_mean_and_width():
    rng = np.random.default_rng(1)
    x = log_normal(rng, np.full(200_000, 10.0), np.full(200_000, 1.0))
    assert abs(x.mean() - 10.0) < 0.02 and abs(x.std() - 1.0) < 0.02
    assert log_normal(rng, np.array([0.0, -1.0]), np.array([1.0, 1.0])).tolist() == [0.0, 0.0]


def _word(w) -> Word:
    w = str(w)
    if w.startswith("{") and w.endswith("}"):
        return Word(w[1:-1], 1, braced=True)
    return Word(w, 1)


def _module(cls, name, **params):
    spec = CardModule(cls.TYPE, name, "test.tcl", 1)
    for k, v in params.items():
        words = v if isinstance(v, list) else [v]
        spec.params[k] = Param(k, [_word(w) for w in words], 1, "test.tcl", is_add=isinstance(v, list))
    return cls(spec)


@pytest.mark.parametrize(
    "pt, charge, eta", [(2.0, 1, 0.0), (2.0, -1, 0.0), (5.0, 1, 0.8), (0.4, 1, 0.5), (0.4, -1, -0.5), (0.4, 1, 0.0)]
)
def test_propagator_helix(pt, charge, eta):
    bz, radius, half = 3.8, 1.25, 2.9
    prop = _module(ParticlePropagator, "P", Radius=radius, HalfLength=half, Bz=bz)
    phi = 0.3
    c = _coll(
        [1],
        px=[pt * np.cos(phi)],
        py=[pt * np.sin(phi)],
        pz=[pt * np.sinh(eta)],
        e=[pt * np.cosh(eta)],
        pid=np.array([211 * charge], np.int32),
        charge=np.array([charge], np.int32),
        uid=[0],
    )
    ctx = Context(1, np.random.default_rng(0), {"Delphes/stableParticles": c})
    prop.process(ctx)
    out = ctx.arrays["P/stableParticles"]
    r = pt / (C_LIGHT_GEV * bz)
    if 2 * r > radius:
        # a track from the origin reaches radius R after turning by 2 asin(R / 2r): its position
        # is at azimuth phi - q asin(R / 2r) (clockwise for positive charge in +z field)
        expected = phi - charge * np.arcsin(radius / (2 * r))
        assert out["phi_pos"][0] == pytest.approx(expected, abs=1e-9)
        assert out["eta_pos"][0] == pytest.approx(
            np.arcsinh(r * 2 * np.arcsin(radius / (2 * r)) * np.sinh(eta) / radius), abs=1e-9
        )
    elif eta != 0:
        # a looper (2r < R) leaves through the endcap |z| = HalfLength at a radius < 2r
        assert abs(out["eta_pos"][0]) > np.arcsinh(half / (2 * r)) - 1e-9
        assert np.sign(out["eta_pos"][0]) == np.sign(eta)
    else:
        # a looper at pz = 0 never leaves; it is kept half a turn out
        assert out["eta_pos"][0] == 0.0 and np.isfinite(out["phi_pos"][0])
    assert len(ctx.arrays["P/chargedHadrons"]) == 1 and len(ctx.arrays["P/electrons"]) == 0


def test_calorimeter_towers_and_energy_flow():
    phis = "{" + " ".join(f"{x:.6f}" for x in np.linspace(-np.pi, np.pi, 33)) + "}"
    cal = _module(
        Calorimeter,
        "Cal",
        ParticleInputArray="in/p",
        TrackInputArray="in/t",
        EtaPhiBins=[e for eta in np.round(np.arange(-2.5, 2.51, 0.1), 4) for e in (eta, phis)],
        EnergyFraction=["{0}", "{0.0 1.0}", "{22}", "{1.0 0.0}", "{211}", "{0.0 1.0}"],
        SmearTowerCenter="false",
    )
    # one event: a 50 GeV photon and a 20 GeV pi+ (with its track) in different towers,
    # plus a 10 GeV K0L in the pion's tower; no smearing (resolution 0)
    eta = np.array([0.05, 1.05, 1.05])
    phi = np.array([0.05, -1.0, -1.0])
    e = np.array([50.0, 20.0, 10.0])
    pid = np.array([22, 211, 130], np.int32)
    p = _coll(
        [3],
        px=e / np.cosh(eta) * np.cos(phi),
        py=e / np.cosh(eta) * np.sin(phi),
        pz=e * np.tanh(eta),
        e=e,
        pid=pid,
        charge=np.array([0, 1, 0], np.int32),
        uid=[0, 1, 2],
        eta_pos=eta,
        phi_pos=phi,
    )
    t = p.take(np.array([1]))
    ctx = Context(1, np.random.default_rng(0), {"in/p": p, "in/t": t}, next_uid=100)
    cal.process(ctx)
    towers = ctx.arrays["Cal/towers"]
    assert sorted(np.round(towers["e"], 6)) == [30.0, 50.0]
    assert len(ctx.arrays["Cal/photons"]) == 1  # the photon tower has no track
    # energy flow: the track, an eflow photon (50) and a neutral hadron for the K0L excess (10)
    assert len(ctx.arrays["Cal/eflowTracks"]) == 1
    assert ctx.arrays["Cal/eflowPhotons"]["e"].tolist() == pytest.approx([50.0])
    assert ctx.arrays["Cal/eflowNeutralHadrons"]["e"].tolist() == pytest.approx([10.0])
    # tower centres: eta bin (1.0, 1.1), phi bin of width 2 pi / 32
    tw = towers.take(towers["e"] < 40)
    assert tw.eta[0] == pytest.approx(1.05, abs=1e-9)
    # the tower's id table lists both particles that hit it (for UniqueObjectFinder overlaps)
    owner, ids = tw.ids()
    assert set(ids.tolist()) >= {1, 2}


def test_unique_object_finder_removes_overlapping_jet():
    electrons = _coll([1], px=[30.0], e=[30.0], uid=[7])
    jets = Coll(
        np.array([2]),
        {"px": np.array([40.0, 35.0]), "py": np.zeros(2), "pz": np.zeros(2), "e": np.array([40.0, 35.0])},
        (np.array([0, 0, 1]), np.array([5, 7, 9])),
    )  # jet 0 contains particle 7
    finder = _module(UniqueObjectFinder, "U", InputArray=["in/e", "electrons", "in/j", "jets"])
    ctx = Context(1, np.random.default_rng(0), {"in/e": electrons, "in/j": jets})
    finder.process(ctx)
    assert len(ctx.arrays["U/electrons"]) == 1
    assert ctx.arrays["U/jets"]["px"].tolist() == [35.0]


def test_merger_momentum_is_vector_sum():
    c = _coll([2, 1], px=[1.0, 2.0, -3.0], py=[0.5, 0.5, 0.0], pz=[0, 0, 0], e=[2.0, 3.0, 3.0])
    m = _module(Merger, "M", InputArray=["in/c"])
    ctx = Context(2, np.random.default_rng(0), {"in/c": c})
    m.process(ctx)
    mom = ctx.arrays["M/momentum"]
    assert mom["px"].tolist() == [3.0, -3.0] and mom["py"].tolist() == [1.0, 0.0]
    assert ctx.arrays["M/energy"]["px"].tolist() == pytest.approx([np.hypot(1, 0.5) + np.hypot(2, 0.5), 3.0])


def test_cluster_constituents_sum_to_jets():
    from fast2full.delphes.engine import input_arrays, particles_to_coll
    from fast2full.delphes.modules import cluster
    from fast2full.delphes.samples import toy_events

    parts = input_arrays(particles_to_coll(toy_events(30, seed=2)))["Delphes/stableParticles"]
    jets, const_jet, const_idx = cluster(parts, "antikt_algorithm", 0.4, 10.0)
    assert len(jets) > 60
    for k in ("px", "py", "pz", "e"):
        summed = np.bincount(const_jet, weights=parts[k][const_idx], minlength=len(jets))
        np.testing.assert_allclose(summed, jets[k], rtol=1e-9, atol=1e-9)
    # same event, pT-ordered within each event
    np.testing.assert_array_equal(parts.evt[const_idx], jets.evt[const_jet])
    pt = jets.pt
    for s, e in zip(jets.offsets[:-1], jets.offsets[1:]):
        assert np.all(np.diff(pt[s:e]) <= 0)
    np.testing.assert_array_equal(jets["ncharged"] + jets["nneutrals"], np.bincount(const_jet))


def test_energy_smearing_and_scale():
    from fast2full.delphes.modules import EnergyScale, EnergySmearing

    n = 20000
    c = _coll([n], px=np.full(n, 50.0), e=np.full(n, 50.0), eta_pos=np.zeros(n), phi_pos=np.zeros(n))
    sm = _module(EnergySmearing, "S", InputArray="in/c", ResolutionFormula="{sqrt(energy) * 0.2}")
    ctx = Context(1, np.random.default_rng(3), {"in/c": c})
    sm.process(ctx)
    e = ctx.arrays["S/stableParticles"]["e"]
    assert abs(e.mean() - 50) < 0.03 and abs(e.std() / (0.2 * np.sqrt(50)) - 1) < 0.03
    np.testing.assert_allclose(ctx.arrays["S/stableParticles"].pt, e)  # massless, eta 0
    es = _module(EnergyScale, "J", InputArray="S/stableParticles", ScaleFormula="{1.0 + 10.0 / pt}")
    es.process(ctx)
    np.testing.assert_allclose(ctx.arrays["J/jets"]["e"], e * (1 + 10 / e))


@pytest.mark.parametrize("invert, kept", [(False, [22, 211]), (True, [12, -12])])
def test_pdg_code_filter(invert, kept):
    from fast2full.delphes.modules import PdgCodeFilter

    c = _coll([4], px=[1.0, 2.0, 3.0, 0.1], pid=np.array([12, 22, -12, 211], np.int32))
    f = _module(PdgCodeFilter, "F", InputArray="in/c", PdgCode=["12", "-12"], Invert=str(invert).lower())
    ctx = Context(1, np.random.default_rng(0), {"in/c": c})
    f.process(ctx)
    assert sorted(ctx.arrays["F/filteredParticles"]["pid"].tolist()) == sorted(kept)


def test_isolation_sums_and_cut():
    from fast2full.delphes.modules import Isolation

    # event 0: a 40 GeV candidate with 2 GeV charged + 4 GeV neutral within 0.3 and 10 GeV at dR 1
    # event 1: a 40 GeV candidate alone; the candidate itself (same uid) is never counted
    cand = _coll([1, 1], px=[40.0, 40.0], e=[40.0, 40.0], uid=[1, 2])
    iso = Coll(
        np.array([4, 1]),
        {
            "px": np.array([40.0, 2.0, 4.0, 10.0, 40.0]),
            "py": np.array([0, 0.2, -0.4, 10.0, 0]),
            "pz": np.zeros(5),
            "e": np.array([40.0, 2.01, 4.02, 14.1, 40.0]),
            "charge": np.array([1, 1, 0, 1, 1], np.int32),
            "uid": np.array([1, 10, 11, 12, 2]),
        },
    )
    m = _module(
        Isolation, "I", CandidateInputArray="in/c", IsolationInputArray="in/i", DeltaRMax=0.3, PTMin=0.5, PTRatioMax=0.1
    )
    ctx = Context(2, np.random.default_rng(0), {"in/c": cand, "in/i": iso})
    m.process(ctx)
    out = ctx.arrays["I/electrons"]
    assert out.counts.tolist() == [0, 1]  # event 0: (2.01 + 4.02) / 40 > 0.1
    m2 = _module(
        Isolation, "J", CandidateInputArray="in/c", IsolationInputArray="in/i", DeltaRMax=0.3, PTMin=0.5, PTRatioMax=1.0
    )
    m2.process(ctx)
    out = ctx.arrays["J/electrons"]
    assert out["sum_pt_charged"][0] == pytest.approx(np.hypot(2.0, 0.2))
    assert out["sum_pt_neutral"][0] == pytest.approx(np.hypot(4.0, 0.4))
    assert out["iso_var"].tolist() == pytest.approx([(np.hypot(2, 0.2) + np.hypot(4, 0.4)) / 40, 0.0])


def test_track_smearing():
    from fast2full.delphes.modules import TrackSmearing

    n = 20000
    pt, eta = 10.0, 0.5
    c = _coll(
        [n],
        px=np.full(n, pt),
        pz=np.full(n, pt * np.sinh(eta)),
        e=np.full(n, pt * np.cosh(eta)),
        charge=np.ones(n, np.int32),
        pid=np.full(n, 211, np.int32),
    )
    m = _module(
        TrackSmearing,
        "T",
        InputArray="in/c",
        PResolutionFormula="{0.02}",
        D0ResolutionFormula="{0.01 + 0.1 / pt}",
        PhiResolutionFormula="{0.001}",
    )
    ctx = Context(1, np.random.default_rng(5), {"in/c": c})
    m.process(ctx)
    out = ctx.arrays["T/stableParticles"]
    p = out.p
    assert abs(p.std() / (0.02 * pt * np.cosh(eta)) - 1) < 0.03
    assert abs(out["d0"].std() / 0.02 - 1) < 0.03 and abs(out["d0"].mean()) < 0.001
    assert abs(out.phi.std() / 0.001 - 1) < 0.03
    np.testing.assert_allclose(out.eta, eta, atol=1e-9)  # cot(theta) not smeared
    np.testing.assert_allclose(out["res"], 0.02 * pt * np.cosh(eta) / p)


def test_every_module_class_is_importable_from_the_package():
    """The modules live in family files (tracking, calorimetry, jets...); each registered class
    is still importable as ``fast2full.delphes.modules.<Class>`` and names its card type."""
    import fast2full.delphes.modules as pkg

    assert len(pkg.MODULES) >= 19
    for type_name, cls in pkg.MODULES.items():
        assert cls.TYPE == type_name
        assert getattr(pkg, cls.__name__) is cls, cls.__name__
        assert cls.__module__.startswith("fast2full.delphes.modules."), cls.__module__
    # the two calorimeters share one tower grid / energy-flow implementation
    assert pkg.SimpleCalorimeter._tower_index is pkg.Calorimeter._tower_index
