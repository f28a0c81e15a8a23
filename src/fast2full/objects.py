"""Contract 2 — **objects**: what every domain reduces to before ML.

One event = one record with the fields below (all momenta in GeV, angles in radians).  The Delphes
reader (:mod:`fast2full.readers.delphes`) and the PHYSLITE skim (:mod:`fast2full.readers.physlite`)
both produce exactly this layout; :func:`check` enforces it, and :func:`select` (the config's cuts)
followed by :func:`overlap_removal` is the one object selection, applied identically to every domain.

=============  =====================================  ============================================
field          type                                   meaning
=============  =====================================  ============================================
event_id       int64                                  unique per event within a domain and process
weight         float64                                physical event weight: pb per event in the
                                                      Delphes domains (generator weight x sigma /
                                                      sum of the process's generator weights);
                                                      PHYSLITE mcEventWeights[0]
process        string                                 process / sample name (ttbar, wjets, ...)
is_signal      bool                                   ttbar signal (True) vs background
jets           var * {pt, eta, phi, mass: float32,    anti-kt R=0.4 jets, pT-ordered;
                      btag: bool,                     b-tag decision at the domain's working point;
                      flavor: int32,                  parton label |pdgId| (1-5 quarks, 21 gluon,
                                                      0 unmatched) — Delphes Jet.Flavor /
                                                      xAOD PartonTruthLabelID;
                      ntrk: int32,                    tracks with pT > 0.5 GeV within the jet;
                      trk_width: float32,             pT-weighted mean DeltaR of tracks with
                                                      pT > 1 GeV (xAOD TrackWidthPt1000);
                      sum_trk_pt: float32}            scalar pT sum of those pT > 0.5 GeV tracks
                                                      (xAOD SumPtTrkPt500)
electrons      var * {pt, eta, phi: float32,          reconstructed electrons,
                      charge: int32, rel_iso: float32} relative isolation
muons          var * {pt, eta, phi: float32, charge: int32, rel_iso: float32}
photons        var * {pt, eta, phi: float32, rel_iso: float32}
pflow          var * {pt, eta, phi: float32,          particle-flow candidates (Delphes EFlowTrack,
                      charge: int32,                  EFlowPhoton, EFlowNeutralHadron), pT-ordered;
                      kind: int32,                    PFLOW_TRACK (0), PFLOW_PHOTON (1),
                                                      PFLOW_NEUTRAL_HADRON (2);
                      is_pu: bool}                    track from a pile-up vertex (Delphes IsPU, the
                                                      stand-in for track-vertex association); False
                                                      for neutrals.  Empty where a domain keeps no
                                                      candidates (PHYSLITE: see docs/objects.md)
met            {met, phi: float32}                    reconstructed missing transverse momentum
gen_met        {met, phi: float32}                    true MET (neutrinos; Delphes GenMissingET,
                                                      xAOD MET_Truth NonInt)
=============  =====================================  ============================================
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from fast2full.common import Fast2FullError

SCHEMA_VERSION = 2

#: collection -> {field: numpy dtype}; scalar fields at the top level use the key None
JET_FIELDS = {
    "pt": "float32",
    "eta": "float32",
    "phi": "float32",
    "mass": "float32",
    "btag": "bool",
    "flavor": "int32",
    "ntrk": "int32",
    "trk_width": "float32",
    "sum_trk_pt": "float32",
}
LEPTON_FIELDS = {"pt": "float32", "eta": "float32", "phi": "float32", "charge": "int32", "rel_iso": "float32"}
PHOTON_FIELDS = {"pt": "float32", "eta": "float32", "phi": "float32", "rel_iso": "float32"}
PFLOW_FIELDS = {
    "pt": "float32",
    "eta": "float32",
    "phi": "float32",
    "charge": "int32",
    "kind": "int32",
    "is_pu": "bool",
}
MET_FIELDS = {"met": "float32", "phi": "float32"}

#: ``pflow.kind`` codes
PFLOW_TRACK, PFLOW_PHOTON, PFLOW_NEUTRAL_HADRON = 0, 1, 2
PFLOW_KINDS = {"track": PFLOW_TRACK, "photon": PFLOW_PHOTON, "neutral_hadron": PFLOW_NEUTRAL_HADRON}

COLLECTIONS = {
    "jets": JET_FIELDS,
    "electrons": LEPTON_FIELDS,
    "muons": LEPTON_FIELDS,
    "photons": PHOTON_FIELDS,
    "pflow": PFLOW_FIELDS,
}
RECORDS = {"met": MET_FIELDS, "gen_met": MET_FIELDS}
SCALARS = {"event_id": "int64", "weight": "float64", "process": "string", "is_signal": "bool"}

FIELDS = list(SCALARS) + list(COLLECTIONS) + list(RECORDS)


class ObjectSchemaError(Fast2FullError):
    pass


def _as_jagged(values, dtype: str) -> ak.Array:
    arr = ak.Array(values)
    if ak.to_layout(arr).purelist_depth != 2:
        raise ObjectSchemaError(f"objects: expected one list per event, got type {arr.type}")
    if isinstance(arr.type.content, ak.types.RegularType):  # e.g. from a 2-d numpy array
        arr = ak.from_regular(arr, axis=1)
    if "unknown" in str(arr.type):  # all-empty lists
        return ak.enforce_type(arr, f"var * {dtype}")
    return ak.values_astype(arr, dtype)


def build(
    *,
    event_id,
    weight,
    process,
    is_signal,
    jets: dict,
    electrons: dict,
    muons: dict,
    photons: dict,
    met: dict,
    gen_met: dict,
    pflow: dict | None = None,
) -> ak.Array:
    """Assemble an objects array from per-collection dicts of (jagged) arrays, casting every field
    to the contract's dtype.  Missing fields raise.  ``pflow=None``: a domain without particle-flow
    candidates (every event gets an empty list).  Use this in every reader."""
    n = len(event_id)
    if pflow is None:
        pflow = {
            k: ak.Array(
                ak.contents.ListOffsetArray(
                    ak.index.Index64(np.zeros(n + 1, np.int64)), ak.contents.NumpyArray(np.zeros(0, dtype=dt))
                )
            )
            for k, dt in PFLOW_FIELDS.items()
        }

    def coll(d: dict, spec: dict, name: str):
        missing = set(spec) - set(d)
        if missing:
            raise ObjectSchemaError(f"objects.{name}: missing fields {sorted(missing)}")
        return ak.zip({k: _as_jagged(d[k], spec[k]) for k in spec})

    def rec(d: dict, spec: dict, name: str):
        missing = set(spec) - set(d)
        if missing:
            raise ObjectSchemaError(f"objects.{name}: missing fields {sorted(missing)}")
        return ak.zip({k: np.asarray(d[k], dtype=spec[k]) for k in spec})

    if isinstance(process, str):
        proc = ak.from_numpy(np.full(n, process)) if n else ak.enforce_type(ak.Array([]), "string")
    else:
        proc = ak.enforce_type(ak.Array(list(process)), "string")
    out = ak.zip(
        {
            "event_id": np.asarray(event_id, dtype=np.int64),
            "weight": np.asarray(weight, dtype=np.float64),
            "process": proc,
            "is_signal": np.asarray(is_signal, dtype=bool) if np.ndim(is_signal) else np.full(n, bool(is_signal)),
            "jets": coll(jets, JET_FIELDS, "jets"),
            "electrons": coll(electrons, LEPTON_FIELDS, "electrons"),
            "muons": coll(muons, LEPTON_FIELDS, "muons"),
            "photons": coll(photons, PHOTON_FIELDS, "photons"),
            "pflow": coll(pflow, PFLOW_FIELDS, "pflow"),
            "met": rec(met, MET_FIELDS, "met"),
            "gen_met": rec(gen_met, MET_FIELDS, "gen_met"),
        },
        depth_limit=1,
    )
    check(out)
    return out


def _leaf_dtype(arr: ak.Array) -> str:
    layout = ak.to_layout(arr)
    while isinstance(getattr(layout, "content", None), ak.contents.Content):  # not a union's method
        if layout.parameter("__array__") == "string":
            return "string"
        layout = layout.content
    if isinstance(layout, ak.contents.NumpyArray):
        return str(layout.data.dtype)
    return layout.parameter("__array__") or type(layout).__name__


def check(events: ak.Array) -> None:
    """Raise ObjectSchemaError unless ``events`` follows the objects contract exactly: the fields,
    their dtypes, collections as variable-length lists (``var *``, not regular), ``met``/``gen_met``
    as plain records, and no option types (missing values) anywhere."""
    fields = set(events.fields)
    if fields != set(FIELDS):
        raise ObjectSchemaError(
            f"objects: fields {sorted(fields)} differ from the contract "
            f"{sorted(FIELDS)} (missing {sorted(set(FIELDS) - fields)}, "
            f"extra {sorted(fields - set(FIELDS))})"
        )
    type_str = str(events.type)
    if "?" in type_str or "option[" in type_str:
        raise ObjectSchemaError(f"objects: missing values (option types) are not allowed: {type_str}")
    for name, dt in SCALARS.items():
        got = _leaf_dtype(events[name])
        if got != dt:
            raise ObjectSchemaError(f"objects.{name}: dtype {got}, expected {dt}")
    for name, spec in {**COLLECTIONS, **RECORDS}.items():
        sub = events[name]
        kind = type(sub.type.content)
        want = ak.types.ListType if name in COLLECTIONS else ak.types.RecordType
        if kind is not want:
            raise ObjectSchemaError(
                f"objects.{name}: type {sub.type.content}, expected "
                f"{'var * {...} (one list per event)' if name in COLLECTIONS else '{...}'}"
            )
        if set(sub.fields) != set(spec):
            raise ObjectSchemaError(f"objects.{name}: fields {sorted(sub.fields)}, expected {sorted(spec)}")
        for f, dt in spec.items():
            got = _leaf_dtype(sub[f])
            if got != dt:
                raise ObjectSchemaError(f"objects.{name}.{f}: dtype {got}, expected {dt}")


def select(events: ak.Array, selection: dict) -> ak.Array:
    """Apply the config's object selection (``config['selection']``) to every collection.

    The same function serves every domain.  Cuts: ``pt > pt_min``, ``|eta| < abs_eta_max`` and, where
    configured and the collection carries it, ``rel_iso < rel_iso_max``.  Collections stay pT-ordered.
    """
    out = {f: events[f] for f in events.fields}
    for name in COLLECTIONS:
        cut = selection.get(name)
        if cut is None:
            continue
        c = events[name]
        keep = (c.pt > cut["pt_min"]) & (abs(c.eta) < cut["abs_eta_max"])
        if "rel_iso_max" in cut and "rel_iso" in c.fields:
            keep = keep & (c.rel_iso < cut["rel_iso_max"])
        c = c[keep]
        out[name] = c[ak.argsort(c.pt, ascending=False)]
    return ak.zip(out, depth_limit=1)


#: Overlap removal after the selection (simplified ATLAS Run-2 recommendation, ATL-PHYS-PUB-2015-026;
#: Delphes' UniqueObjectFinder achieves much the same inside the card): photons within
#: OR_PHOTON_LEPTON_DR of a selected lepton are dropped; jets within OR_JET_EM_DR of a selected electron
#: or photon are dropped; jets within OR_JET_MUON_DR of a selected muon with fewer than
#: OR_JET_MUON_MAX_NTRK tracks (a muon's calorimeter deposit, not a real jet) are dropped.
OR_PHOTON_LEPTON_DR = 0.4
OR_JET_EM_DR = 0.2
OR_JET_MUON_DR = 0.2
OR_JET_MUON_MAX_NTRK = 3


def _min_delta_r(a: ak.Array, b: ak.Array) -> ak.Array:
    """Per object of ``a``: the smallest DeltaR to any object of ``b`` in its event (inf if none).

    Computed on flat numpy arrays of all (a, b) pairs of a chunk: for the few objects per event
    here, awkward's nested broadcasting costs ~0.1 s per call whatever the chunk size, this ~1 ms.
    """
    na, nb = ak.to_numpy(ak.num(a, axis=1)), ak.to_numpy(ak.num(b, axis=1))
    a_eta, a_phi = ak.to_numpy(ak.flatten(a.eta)), ak.to_numpy(ak.flatten(a.phi))
    b_eta, b_phi = ak.to_numpy(ak.flatten(b.eta)), ak.to_numpy(ak.flatten(b.phi))
    partners = np.repeat(nb, na)  # b objects in the event of each a object
    first_pair = np.cumsum(partners) - partners  # pairs are grouped by a object
    first_b = np.repeat(np.cumsum(nb) - nb, na)  # index of the first b of that event
    ia = np.repeat(np.arange(len(a_eta)), partners)
    ib = np.arange(len(ia)) - np.repeat(first_pair - first_b, partners)
    dphi = (a_phi[ia] - b_phi[ib] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(a_eta[ia] - b_eta[ib], dphi)
    out = np.full(len(a_eta), np.inf)
    has = partners > 0
    if has.any():
        out[has] = np.minimum.reduceat(dr, first_pair[has])
    return ak.unflatten(out, na)


def overlap_removal(events: ak.Array) -> ak.Array:
    """Remove overlapping objects after :func:`select` (constants ``OR_*`` above), the same in every
    domain: a PHYSLITE electron is also a jet (and often a photon); in Delphes the card's
    UniqueObjectFinder has already resolved most overlaps, so there this is nearly a no-op."""
    e, mu, g, j = events.electrons, events.muons, events.photons, events.jets
    g = g[(_min_delta_r(g, e) > OR_PHOTON_LEPTON_DR) & (_min_delta_r(g, mu) > OR_PHOTON_LEPTON_DR)]
    keep_j = (
        (_min_delta_r(j, e) > OR_JET_EM_DR)
        & (_min_delta_r(j, g) > OR_JET_EM_DR)
        & ~((_min_delta_r(j, mu) < OR_JET_MUON_DR) & (j.ntrk < OR_JET_MUON_MAX_NTRK))
    )
    out = {f: events[f] for f in events.fields}
    out["photons"], out["jets"] = g, j[keep_j]
    return ak.zip(out, depth_limit=1)


def empty() -> ak.Array:
    """An empty objects array with the contract's types (for tests and empty chunks)."""
    z = np.zeros(0)
    jag = {
        k: ak.Array(np.zeros((0, 0), dtype=dt)) if dt != "bool" else ak.Array(np.zeros((0, 0), dtype=bool))
        for k, dt in JET_FIELDS.items()
    }
    lep = {k: ak.Array(np.zeros((0, 0), dtype=dt)) for k, dt in LEPTON_FIELDS.items()}
    pho = {k: ak.Array(np.zeros((0, 0), dtype=dt)) for k, dt in PHOTON_FIELDS.items()}
    m = {k: z.astype("float32") for k in MET_FIELDS}
    return build(
        event_id=z,
        weight=z,
        process=[],
        is_signal=np.zeros(0, dtype=bool),
        jets=jag,
        electrons=lep,
        muons=lep,
        photons=pho,
        met=m,
        gen_met=m,
    )
