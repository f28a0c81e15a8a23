"""The PHYSLITE object definitions against the coffea NanoEvents code they replaced, on the real file.

The skim reads its branches with ``uproot`` and computes the object definitions on flat numpy arrays
(docs/opendata.md, "Skim speed").  Before that it used coffea's ``PHYSLITESchema`` NanoEvents and
high-level awkward operations; that code is kept below, unchanged in substance, as the reference: both
must give the same objects, value for value, on the shared real PHYSLITE file (every event, every
field of every collection before the selection, the soft term and the true MET).
"""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np
import pytest

from fast2full.readers import physlite as P

# --- the coffea NanoEvents reference (the skim's object definitions before the uproot rewrite) -----


def _nanoevents(file, names, start, stop):
    from coffea.nanoevents import NanoEventsFactory, PHYSLITESchema

    wanted = {b.replace(".m_persIndex", "") for b in P.BRANCHES} & {n.replace(".m_persIndex", "") for n in names}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping .*", category=UserWarning)
        return NanoEventsFactory.from_root(
            file,
            treepath=P.TREE_NAME,
            schemaclass=PHYSLITESchema,
            mode="virtual",
            entry_start=start,
            entry_stop=stop,
            iteritems_options={"filter_name": lambda n: n in wanted},
        ).events()


def _ref_rel_iso(coll, candidates):
    var = next((c for c in candidates if c in coll.fields), None)
    if var is None:
        return ak.zeros_like(coll.pt)
    return coll[var] / ak.where(coll.pt > 0, coll.pt, 1.0)


def _ref_met_term(met_coll, term):
    sel = met_coll[met_coll.name == term]
    return tuple((ak.to_numpy(ak.sum(sel[c], axis=1)) / P.MEV_PER_GEV).astype(np.float64) for c in ("mpx", "mpy"))


def reference_objects(events) -> dict:
    """collection -> field -> jagged array (identification applied, no selection), plus the scalars."""
    j = events.Jets
    jpt = j.pt / P.MEV_PER_GEV
    needs_jvt = (jpt < P.JVT_PT_MAX_GEV) & (abs(j.eta) < P.JVT_ABS_ETA_MAX)
    jet_ok = ~needs_jvt | (j.NNJvtPass != 0)
    lab = abs(j.PartonTruthLabelID)
    known = ak.zeros_like(lab, dtype=bool)
    for v in P.PARTON_LABELS:
        known = known | (lab == v)
    btag = events[P.BTAG_COLLECTION]
    idx = j.btaggingLink.m_persIndex
    valid = idx < ak.num(btag, axis=1)
    disc = P.dl1d_discriminant(btag.DL1dv01_pb, btag.DL1dv01_pc, btag.DL1dv01_pu)
    disc = ak.fill_none(ak.pad_none(disc, 1, axis=1), -np.inf)
    tagged = ak.fill_none(valid & ak.nan_to_num(disc[ak.where(valid, idx, 0)] > P.DL1D_CUT_77, nan=False), False)
    width = ak.fill_none(ak.firsts(j.TrackWidthPt1000, axis=2), 0.0)
    jets = {
        "pt": jpt,
        "eta": j.eta,
        "phi": j.phi,
        "mass": j.m / P.MEV_PER_GEV,
        "btag": tagged,
        "flavor": ak.where(known, lab, 0),
        "ntrk": ak.fill_none(ak.firsts(j.NumTrkPt500, axis=2), 0),
        "trk_width": ak.where(width < 0, 0.0, width),
    }
    e = events.Electrons
    e = e[e[P.ELECTRON_ID_FLAG] != 0]
    m = events.Muons
    m = m[P.muon_id(m.quality)]
    g = events.Photons
    g = g[g[P.PHOTON_ID_FLAG] != 0]
    tx, ty = _ref_met_term(events.MET_Truth, P.MET_TRUTH_TERM)
    sx, sy = _ref_met_term(events["MET_Core_AnalysisMET".replace("Analysis", "")], P.MET_SOFT_TERM)
    return {
        "jets": {k: v[jet_ok] for k, v in jets.items()},
        "electrons": {
            "pt": e.pt / P.MEV_PER_GEV,
            "eta": e.eta,
            "phi": e.phi,
            "charge": e.charge,
            "rel_iso": _ref_rel_iso(e, P.ELECTRON_ISO_VARS),
        },
        "muons": {
            "pt": m.pt / P.MEV_PER_GEV,
            "eta": m.eta,
            "phi": m.phi,
            "charge": m.charge,
            "rel_iso": _ref_rel_iso(m, P.MUON_ISO_VARS),
        },
        "photons": {
            "pt": g.pt / P.MEV_PER_GEV,
            "eta": g.eta,
            "phi": g.phi,
            "rel_iso": _ref_rel_iso(g, P.PHOTON_ISO_VARS),
        },
        "weight": ak.to_numpy(ak.fill_none(ak.firsts(events.EventInfo.mcEventWeights), 1.0)),
        "event_id": ak.to_numpy(events.EventInfo.eventNumber).astype(np.int64),
        "gen_met": {"met": np.hypot(tx, ty), "phi": np.arctan2(ty, tx)},
        "soft": (sx, sy),
    }


# --- the comparison ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def both(testdata):
    path = str(testdata / "PHYSLITE_example.root")
    f, tree, names = P.open_tree(path)
    try:
        new, sx, sy = P.physlite_objects(P.read_chunk(tree, names, 0, tree.num_entries), process="z", signal=False)
        ref = reference_objects(_nanoevents(f, names, 0, tree.num_entries))
        for c in ("jets", "electrons", "muons", "photons"):  # read now (virtual arrays), before closing
            ref[c] = {k: ak.materialize(v) for k, v in ref[c].items()}
    finally:
        f.close()
    return new, (sx, sy), ref


@pytest.mark.parametrize("collection", ["jets", "electrons", "muons", "photons"])
def test_collections_equal_the_coffea_reference(both, collection):
    new, _, ref = both
    for field, values in ref[collection].items():
        want = ak.values_astype(values, new[collection][field].type.content.content.primitive)
        assert ak.to_list(new[collection][field]) == ak.to_list(want), f"{collection}.{field}"
    assert set(ref[collection]) <= set(new[collection].fields)


def test_event_fields_equal_the_coffea_reference(both):
    new, (sx, sy), ref = both
    assert len(new) == 100
    np.testing.assert_array_equal(new.event_id.to_numpy(), ref["event_id"])
    np.testing.assert_array_equal(new.weight.to_numpy(), ref["weight"].astype(np.float64))
    for k in ("met", "phi"):
        np.testing.assert_array_equal(new.gen_met[k].to_numpy(), ref["gen_met"][k].astype(np.float32))
    np.testing.assert_array_equal(sx, ref["soft"][0])
    np.testing.assert_array_equal(sy, ref["soft"][1])
    assert np.count_nonzero(sx) > 90 and ak.sum(ak.num(new.jets)) > 300  # not a comparison of empties
    assert ak.sum(new.jets.btag) > 0 and ak.any(new.jets.flavor == 21)


def test_flat_helpers():
    lists = ak.Array([[3, 1], [], [7]])[[2, 0, 1]]  # a ListArray (non-contiguous) after the shuffle
    np.testing.assert_array_equal(P.first_of_each(lists, -1), [7, 3, -1])
    names = ak.Array(["NonInt", "Int", "", "NonIntX", "NonInt"])
    np.testing.assert_array_equal(P._string_equals(names, "NonInt"), [True, False, False, False, True])
