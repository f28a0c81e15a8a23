"""The objects contract (fast2full.objects): build, check, select, empty; and the cross-domain schema."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import yaml

from fast2full import objects
from fast2full.objects import ObjectSchemaError

SELECTION = {
    "jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
    "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47, "rel_iso_max": 0.15},
    "muons": {"pt_min": 15.0, "abs_eta_max": 2.5, "rel_iso_max": 0.15},
    "photons": {"pt_min": 20.0, "abs_eta_max": 2.37, "rel_iso_max": 0.15},
}


def _coll(spec: dict, rows: list[list[dict]]) -> dict:
    """Per-field jagged python lists from per-event lists of object dicts (float64/int64 on purpose)."""
    return {f: [[o.get(f, False if dt == "bool" else 0) for o in ev] for ev in rows] for f, dt in spec.items()}


def _events(n_extra_jets: int = 0) -> ak.Array:
    jets = [
        [
            {"pt": 20.0, "eta": 0.1, "phi": 0.0, "flavor": 21, "ntrk": 3},
            {"pt": 80.0, "eta": -1.0, "phi": 1.0, "btag": True, "flavor": 5, "ntrk": 12, "trk_width": 0.1},
            {"pt": 40.0, "eta": 2.6, "phi": -2.0, "flavor": 1},
            {"pt": 30.0, "eta": 2.4, "phi": 3.0, "flavor": 2, "ntrk": 5, "trk_width": 0.2},
        ],
        [],
    ]
    jets[1] = [{"pt": 30.0 + i, "eta": 0.0, "phi": 0.0} for i in range(n_extra_jets)]
    electrons = [
        [
            {"pt": 30.0, "eta": 0.5, "phi": 0.0, "charge": -1, "rel_iso": 0.2},
            {"pt": 16.0, "eta": 0.5, "phi": 0.0, "charge": 1, "rel_iso": 0.01},
        ],
        [],
    ]
    muons = [
        [],
        [
            {"pt": 50.0, "eta": 2.49, "phi": 0.3, "charge": 1, "rel_iso": 0.0},
            {"pt": 14.0, "eta": 0.0, "phi": 0.3, "charge": -1, "rel_iso": 0.0},
        ],
    ]
    photons = [[{"pt": 25.0, "eta": 2.4, "phi": 0.0, "rel_iso": 0.0}], []]
    return objects.build(
        event_id=[1, 2],
        weight=[1.0, 0.5],
        process="ttbar",
        is_signal=True,
        jets=_coll(objects.JET_FIELDS, jets),
        electrons=_coll(objects.LEPTON_FIELDS, electrons),
        muons=_coll(objects.LEPTON_FIELDS, muons),
        photons=_coll(objects.PHOTON_FIELDS, photons),
        met={"met": [10.0, 20.0], "phi": [0.0, 1.0]},
        gen_met={"met": [5.0, 15.0], "phi": [0.1, 1.1]},
    )


def test_build_casts_every_field_to_the_contract_dtype():
    ev = _events()
    objects.check(ev)
    assert str(ev.jets.pt.type) == "2 * var * float32"
    assert str(ev.jets.btag.type) == "2 * var * bool"
    assert str(ev.jets.ntrk.type) == "2 * var * int32"
    assert str(ev.process.type) == "2 * string"
    assert ev.process.tolist() == ["ttbar", "ttbar"] and ev.is_signal.tolist() == [True, True]


def test_build_rejects_missing_field_and_flat_input():
    bad = _coll(objects.JET_FIELDS, [[]])
    del bad["trk_width"]
    e = _coll(objects.LEPTON_FIELDS, [[]])
    p = _coll(objects.PHOTON_FIELDS, [[]])
    m = {"met": [1.0], "phi": [0.0]}
    with pytest.raises(ObjectSchemaError, match=r"objects\.jets: missing fields \['trk_width'\]"):
        objects.build(
            event_id=[1],
            weight=[1.0],
            process="x",
            is_signal=False,
            jets=bad,
            electrons=e,
            muons=e,
            photons=p,
            met=m,
            gen_met=m,
        )
    flat = {**e, "pt": [1.0]}
    with pytest.raises(ObjectSchemaError, match="one list per event"):
        objects.build(
            event_id=[1],
            weight=[1.0],
            process="x",
            is_signal=False,
            jets=_coll(objects.JET_FIELDS, [[]]),
            electrons=flat,
            muons=e,
            photons=p,
            met=m,
            gen_met=m,
        )


def _with(ev: ak.Array, name: str, value) -> ak.Array:
    out = {f: ev[f] for f in ev.fields}
    out[name] = value
    return ak.zip(out, depth_limit=1)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ev: _with(ev, "extra", ev.weight), r"extra \['extra'\]"),
        (lambda ev: ak.zip({f: ev[f] for f in ev.fields if f != "gen_met"}, depth_limit=1), r"missing \['gen_met'\]"),
        (lambda ev: _with(ev, "event_id", ak.values_astype(ev.event_id, np.int32)), r"event_id: dtype int32"),
        (
            lambda ev: _with(ev, "jets", ak.with_field(ev.jets, ak.values_astype(ev.jets.pt, np.float64), "pt")),
            r"jets\.pt: dtype float64, expected float32",
        ),
        (lambda ev: _with(ev, "jets", ak.with_field(ev.jets, ev.jets.pt, "charge")), r"objects\.jets: fields"),
        (
            lambda ev: _with(ev, "muons", ak.with_field(ev.muons, ev.muons.charge == 1, "charge")),
            r"muons\.charge: dtype bool",
        ),
        (lambda ev: _with(ev, "weight", ak.mask(ev.weight, [True, False])), r"option types"),
        (
            lambda ev: _with(ev, "met", ak.Array([[{"met": np.float32(1), "phi": np.float32(0)}]] * 2)),
            r"objects\.met: type",
        ),
        (lambda ev: _with(ev, "photons", ak.to_regular(ev.photons[:, :0], axis=1)), r"objects\.photons: type"),
    ],
)
def test_check_enforces_fields_dtypes_and_layout(mutate, message):
    with pytest.raises(ObjectSchemaError, match=message):
        objects.check(mutate(_events()))


def test_select_applies_the_config_cuts_and_orders_by_pt():
    ev = objects.select(_events(n_extra_jets=3), SELECTION)
    objects.check(ev)
    # jets: 20 GeV fails pT, eta 2.6 fails |eta|; remaining ordered 80, 30
    assert ev.jets.pt.tolist() == [[80.0, 30.0], [32.0, 31.0, 30.0]]
    assert ev.jets.flavor.tolist() == [[5, 2], [0, 0, 0]]
    assert ev.jets.btag.tolist() == [[True, False], [False, False, False]]
    # electrons: the isolated 16 GeV one survives, the non-isolated 30 GeV one does not
    assert ev.electrons.pt.tolist() == [[16.0], []]
    # muons: 14 GeV fails pT
    assert ev.muons.pt.tolist() == [[], [50.0]]
    # photons: |eta| 2.4 > 2.37
    assert ak.num(ev.photons).tolist() == [0, 0]
    # event-level fields untouched
    assert ev.met.met.tolist() == [10.0, 20.0] and ev.event_id.tolist() == [1, 2]


def test_select_is_idempotent_and_skips_unconfigured_collections():
    once = objects.select(_events(), SELECTION)
    assert ak.to_list(objects.select(once, SELECTION)) == ak.to_list(once)
    partial = objects.select(_events(), {"jets": SELECTION["jets"]})
    assert ak.to_list(partial.electrons) == ak.to_list(_events().electrons)


def test_empty_has_the_contract_types():
    e = objects.empty()
    objects.check(e)
    assert len(e) == 0
    assert e.type.content == _events().type.content


def test_empty_and_full_files_share_one_schema(tmp_path):
    from fast2full.readers.common import read_objects, write_objects

    assert write_objects([], tmp_path / "e.parquet") == 0
    assert write_objects([_events()], tmp_path / "f.parquet") == 2
    e, f = read_objects(tmp_path / "e.parquet"), read_objects(tmp_path / "f.parquet")
    assert e.type.content == f.type.content
    both = ak.concatenate([e, f])
    objects.check(both)


def test_read_objects_rejects_non_objects_parquet(tmp_path):
    from fast2full.common import InputError
    from fast2full.readers.common import read_objects

    ak.to_parquet(ak.Array({"x": [1, 2]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match=r"x\.parquet: not an objects file"):
        read_objects(tmp_path / "x.parquet")
    (tmp_path / "y.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(InputError, match=r"y\.parquet: not a readable parquet file"):
        read_objects(tmp_path / "y.parquet")


def test_delphes_and_physlite_skims_have_identical_types(testdata, repo_root, tmp_path):
    """Cross-domain contract: the fast-simulation and full-simulation readers give one schema."""
    from fast2full.readers.common import read_objects
    from fast2full.readers.delphes import skim_delphes
    from fast2full.readers.physlite import skim_physlite

    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    sample = next(iter(config["opendata"]["samples"]))
    n_full = skim_physlite(str(testdata / "PHYSLITE_example.root"), str(tmp_path / "full.parquet"), config, sample)
    n_fast = skim_delphes(
        str(testdata / "delphes_ATLAS_ttbar100.root"), str(tmp_path / "fast.parquet"), config, "ttbar"
    )
    assert n_full > 0 and n_fast > 0
    full, fast = read_objects(tmp_path / "full.parquet"), read_objects(tmp_path / "fast.parquet")
    assert full.type.content == fast.type.content
    assert str(ak.type(full).content) == str(ak.type(fast).content)


def test_overlap_removal_drops_jets_and_photons_near_leptons():
    jets = [
        [
            {"pt": 60.0, "eta": 0.0, "phi": 0.0, "ntrk": 10},  # on the electron: dropped
            {"pt": 50.0, "eta": 1.0, "phi": 1.0, "ntrk": 1},  # on the muon, few tracks: dropped
            {"pt": 45.0, "eta": -1.0, "phi": -1.0, "ntrk": 12},  # on the photon: dropped
            {"pt": 40.0, "eta": 2.0, "phi": 2.05, "ntrk": 10},  # near the second muon but many tracks: kept
            {"pt": 30.0, "eta": -2.0, "phi": 3.0, "ntrk": 5},
        ]
    ]  # alone: kept
    electrons = [[{"pt": 30.0, "eta": 0.05, "phi": 0.05, "charge": 1}]]
    muons = [[{"pt": 30.0, "eta": 1.0, "phi": 1.05, "charge": -1}, {"pt": 25.0, "eta": 2.0, "phi": 2.0, "charge": 1}]]
    photons = [
        [
            {"pt": 30.0, "eta": -1.0, "phi": -1.0},  # isolated from leptons: kept
            {"pt": 25.0, "eta": 1.2, "phi": 1.0},
        ]
    ]  # 0.2 from a muon: dropped
    ev = objects.build(
        event_id=[1],
        weight=[1.0],
        process="x",
        is_signal=False,
        jets=_coll(objects.JET_FIELDS, jets),
        electrons=_coll(objects.LEPTON_FIELDS, electrons),
        muons=_coll(objects.LEPTON_FIELDS, muons),
        photons=_coll(objects.PHOTON_FIELDS, photons),
        met={"met": [1.0], "phi": [0.0]},
        gen_met={"met": [1.0], "phi": [0.0]},
    )
    out = objects.overlap_removal(ev)
    objects.check(out)
    assert out.jets.pt.tolist() == [[40.0, 30.0]]
    assert out.photons.pt.tolist() == [[30.0]]
    assert ak.to_list(out.electrons) == ak.to_list(ev.electrons)
    assert ak.to_list(out.muons) == ak.to_list(ev.muons)


def test_overlap_removal_of_empty_events():
    out = objects.overlap_removal(objects.empty())
    objects.check(out)
    assert len(out) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_delta_r_matches_a_per_event_reference(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(0, 5, size=50), rng.integers(0, 4, size=50)

    def jagged(counts, lo, hi):
        return ak.unflatten(rng.uniform(lo, hi, size=counts.sum()), counts)

    a = ak.zip({"eta": jagged(n_a, -2.5, 2.5), "phi": jagged(n_a, -np.pi, np.pi)})
    b = ak.zip({"eta": jagged(n_b, -2.5, 2.5), "phi": jagged(n_b, -np.pi, np.pi)})
    got = objects._min_delta_r(a, b)
    assert ak.num(got).tolist() == n_a.tolist()
    for i in range(len(n_a)):
        ae, ap = ak.to_numpy(a.eta[i]), ak.to_numpy(a.phi[i])
        be, bp = ak.to_numpy(b.eta[i]), ak.to_numpy(b.phi[i])
        dphi = np.abs(ap[:, None] - bp[None, :])
        dphi = np.minimum(dphi, 2 * np.pi - dphi)
        ref = np.hypot(ae[:, None] - be[None, :], dphi).min(axis=1, initial=np.inf)
        np.testing.assert_allclose(ak.to_numpy(got[i]), ref, rtol=1e-12)
