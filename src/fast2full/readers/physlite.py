"""ATLAS PHYSLITE (full simulation) -> the objects contract.

One PHYSLITE file is read in entry ranges of ``opendata.chunk_size`` events with
``uproot`` ``TTree.arrays`` of exactly the branches in :data:`BRANCHES` (48 of the ~1500 a
PHYSLITE file holds; only one chunk is in memory at a time).  Per chunk:

1. object definitions (:func:`physlite_objects`): calibrated kinematics converted from MeV to GeV,
   object identification (electron LH Tight, muon Medium, photon IsEM Tight, jet NNJvt), b-tagging
   (DL1dv01 at the 77 % fixed-cut working point), track-based jet variables for the primary vertex,
   relative isolation, truth labels -- computed on the flat (per-object) numpy arrays of the chunk,
   the jagged structure rebuilt once per collection;
2. the one shared selection :func:`fast2full.objects.select` (config ``selection``);
3. the shared overlap removal (:func:`fast2full.objects.overlap_removal`) on the selected objects;
4. MET rebuilt as close to ATLAS' METMaker as PHYSLITE allows (:func:`rebuild_met`): its own
   baseline objects (jets above 20 GeV to |eta| 4.5), the core track soft term, and the tracks of the
   jets not in the hard term from the MET association map; true MET from ``MET_Truth`` ``NonInt``;
5. :func:`fast2full.objects.check`, then the chunk becomes one row group of the output parquet.

The branch names and object definitions follow coffea's ``PHYSLITESchema`` view of the same file (the
reader used coffea NanoEvents until the skim was profiled: building NanoEvents cost ~0.9 s per chunk
for the type names of every branch, more than the object definitions; ``tests/test_physlite.py``
keeps the coffea-based definitions as the reference the output is compared with, field by field).

Every constant below names its source; see docs/opendata.md for the physics choices and limitations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full import objects
from fast2full.common import Fast2FullError, InputError, Progress
from fast2full.readers.common import is_signal, write_objects

log = logging.getLogger("fast2full.physlite")

#: xAOD stores energies and momenta in MeV; the objects contract is in GeV
MEV_PER_GEV = 1000.0
#: the PHYSLITE event tree
TREE_NAME = "CollectionTree"
#: events per entry range read at once (config ``opendata.chunk_size`` overrides)
DEFAULT_CHUNK_SIZE = 20_000

# --- b-tagging: DL1dv01 on EMPFlow jets, 77 % b-efficiency fixed cut -------------------------------
#: DL1dv01 discriminant D = ln(p_b / (f_c p_c + (1 - f_c) p_u)) with the charm fraction f_c = 0.018
#: (ATLAS flavour-tagging recommendations for release 22, EMPFlow jets, CDI 2022-22-13TeV-MC20)
DL1D_CHARM_FRACTION = 0.018
#: DL1dv01 FixedCutBEff_77 cut on D (same source)
DL1D_CUT_77 = 2.456
#: the b-tagging container linked from AnalysisJets.btaggingLink
BTAG_COLLECTION = "BTagging_AntiKt4EMPFlow"

# --- jet vertex tagger (pile-up jet suppression) -------------------------------------------------
#: NNJvt is applied to jets with pT below this and |eta| below JVT_ABS_ETA_MAX (ATLAS recommendation)
JVT_PT_MAX_GEV = 60.0
JVT_ABS_ETA_MAX = 2.4

# --- lepton / photon identification --------------------------------------------------------------
#: derivation-framework decisions written into PHYSLITE
ELECTRON_ID_FLAG = "DFCommonElectronsLHTight"
PHOTON_ID_FLAG = "DFCommonPhotonsIsEMTight"
#: xAOD::Muon quality byte: bits 0-1 the Quality enum (Tight 0, Medium 1, Loose 2, VeryLoose 3),
#: bit 3 (value 8) passesIDCuts (xAODMuon/Root/Muon_v1.cxx)
MUON_QUALITY_MASK = 0b11
MUON_QUALITY_MEDIUM = 1
MUON_PASSES_ID_CUTS_BIT = 0b1000

#: isolation variables, first one present wins (names differ between PHYSLITE production tags)
ELECTRON_ISO_VARS = (
    "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000",
    "ptvarcone30",
    "ptvarcone20",
    "topoetcone20",
)
MUON_ISO_VARS = ("ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt1000", "ptvarcone30", "ptcone30", "topoetcone20")
PHOTON_ISO_VARS = ("topoetcone20", "topoetcone20_CloseByCorr", "ptcone20")

#: parton-label values kept as they are (quarks d..b and the gluon); anything else -> 0 (unmatched)
PARTON_LABELS = (1, 2, 3, 4, 5, 21)

#: MET soft term (track-based, the PHYSLITE "core" term) and the true-MET term
MET_CORE = "MET_Core_AnalysisMET"
MET_SOFT_TERM = "PVSoftTrkCore"
MET_TRUTH_TERM = "NonInt"
#: the MET association map PHYSLITE stores: one association per AnalysisJets jet (same order) and a
#: last "misc" one; ``jettrkpx/py`` = the jet's PV tracks not already assigned to an e/gamma/tau/mu
MET_ASSOC = "METAssoc_AnalysisMETAux"

# --- the MET rebuild: ATLAS METMaker's hard objects (its own baseline, not the config selection) ----
#: jets: the "Loose" MET working point, pT > 20 GeV to |eta| < 4.5, NNJvt as above
MET_JET_PT_MIN_GEV = 20.0
MET_JET_ABS_ETA_MAX = 4.5
#: electrons LH Medium, pT > 10 GeV, |eta| < 2.47 (the LH Tight flag where a file lacks Medium)
MET_ELECTRON_ID_FLAG = "DFCommonElectronsLHMedium"
MET_ELECTRON_PT_MIN_GEV = 10.0
MET_ELECTRON_ABS_ETA_MAX = 2.47
#: muons Medium (muon_id), pT > 10 GeV, |eta| < 2.7
MET_MUON_PT_MIN_GEV = 10.0
MET_MUON_ABS_ETA_MAX = 2.7
#: photons IsEM Tight, pT > 25 GeV, |eta| < 2.37
MET_PHOTON_PT_MIN_GEV = 25.0
MET_PHOTON_ABS_ETA_MAX = 2.37

#: branches read (exact names); entries under OPTIONAL may be absent (data files, older tags)
_REQUIRED = {
    "AnalysisJetsAuxDyn": (
        "pt",
        "eta",
        "phi",
        "m",
        "NumTrkPt500",
        "TrackWidthPt1000",
        "SumPtTrkPt500",
        "btaggingLink.m_persIndex",
    ),
    "AnalysisElectronsAuxDyn": ("pt", "eta", "phi", "m", "charge", ELECTRON_ID_FLAG),
    "AnalysisMuonsAuxDyn": ("pt", "eta", "phi", "charge", "quality"),
    "AnalysisPhotonsAuxDyn": ("pt", "eta", "phi", "m", PHOTON_ID_FLAG),
    f"{BTAG_COLLECTION}AuxDyn": ("DL1dv01_pb", "DL1dv01_pc", "DL1dv01_pu"),
    f"{MET_CORE}AuxDyn": ("name", "mpx", "mpy"),
    "EventInfoAuxDyn": ("eventNumber",),
}
_OPTIONAL = {
    "AnalysisJetsAuxDyn": ("PartonTruthLabelID", "NNJvtPass"),
    "AnalysisElectronsAuxDyn": ELECTRON_ISO_VARS + (MET_ELECTRON_ID_FLAG,),
    "AnalysisMuonsAuxDyn": MUON_ISO_VARS,
    "AnalysisPhotonsAuxDyn": PHOTON_ISO_VARS,
    "MET_TruthAuxDyn": ("name", "mpx", "mpy"),
    "EventInfoAuxDyn": ("mcEventWeights",),
    MET_ASSOC: ("jettrkpx", "jettrkpy"),
}


def _names(spec: dict[str, tuple[str, ...]]) -> set[str]:
    return {f"{coll}.{field}" for coll, fields in spec.items() for field in fields}


REQUIRED_BRANCHES = _names(_REQUIRED)
OPTIONAL_BRANCHES = _names(_OPTIONAL)
BRANCHES = REQUIRED_BRANCHES | OPTIONAL_BRANCHES


# --------------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------------


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def open_tree(in_path: str, timeout_s: float = 60.0):
    """Open ``in_path`` (local file or a URL uproot can stream) and return ``(file, tree, branch names)``.

    Raises InputError naming the file for a missing, unreadable or non-PHYSLITE file.
    """
    import uproot

    if not _is_remote(in_path) and not Path(in_path).is_file():
        raise InputError(in_path, "file not found")
    try:
        # no array cache: every chunk is read once, and a cache would only hold memory beyond the chunk
        opts = {"array_cache": None, **({"timeout": timeout_s} if _is_remote(in_path) else {})}
        f = uproot.open(in_path, **opts)
    except Exception as exc:  # uproot raises many types for a corrupt or truncated file
        raise InputError(in_path, f"not a readable ROOT file ({type(exc).__name__}: {exc})") from exc
    try:
        tree = f[TREE_NAME]
    except Exception as exc:
        f.close()
        raise InputError(in_path, f"no '{TREE_NAME}' tree: not a PHYSLITE file ({exc})") from exc
    try:
        names = set(tree.keys(recursive=True, full_paths=False))
    except Exception as exc:
        f.close()
        raise InputError(in_path, f"cannot list the branches of '{TREE_NAME}' ({exc})") from exc
    missing = sorted(REQUIRED_BRANCHES - names)
    if missing:
        f.close()
        raise InputError(
            in_path,
            f"not a PHYSLITE file: missing branches {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}",
        )
    return f, tree, names


def read_chunk(tree, names: set[str], entry_start: int, entry_stop: int) -> Chunk:
    """The branches the skim needs (:data:`BRANCHES` present in the file) for one entry range."""
    wanted = sorted(BRANCHES & names)
    arrays = tree.arrays(wanted, entry_start=entry_start, entry_stop=entry_stop, library="ak", how=dict)
    return Chunk(arrays, entry_stop - entry_start)


# --------------------------------------------------------------------------------------------------
# flat views of one chunk
# --------------------------------------------------------------------------------------------------


class Chunk:
    """One entry range of PHYSLITE branches: ``chunk["AnalysisJetsAuxDyn.pt"]`` is the jagged array,
    :meth:`flat` its per-object numpy values and :meth:`counts` the objects per event."""

    def __init__(self, arrays: dict[str, ak.Array], n_events: int):
        self.arrays = arrays
        self.n = n_events

    def __contains__(self, branch: str) -> bool:
        return branch in self.arrays

    def __getitem__(self, branch: str) -> ak.Array:
        return self.arrays[branch]

    def first(self, candidates: tuple[str, ...]) -> str | None:
        """The first of ``candidates`` (full branch names) present in the chunk."""
        return next((c for c in candidates if c in self.arrays), None)

    def flat(self, branch: str) -> np.ndarray:
        return ak.to_numpy(ak.flatten(self.arrays[branch], axis=1))

    def counts(self, branch: str) -> np.ndarray:
        return ak.to_numpy(ak.num(self.arrays[branch], axis=1))


def _list_bounds(lists: ak.Array) -> tuple[np.ndarray, np.ndarray, ak.contents.Content]:
    """(starts, stops, content) of a one-level jagged array's layout (ListOffsetArray or ListArray)."""
    layout = ak.to_layout(lists)
    return np.asarray(layout.starts), np.asarray(layout.stops), layout.content


def first_of_each(lists: ak.Array, fill) -> np.ndarray:
    """The first element of every list of a one-level jagged numeric array, ``fill`` for empty lists."""
    starts, stops, content = _list_bounds(lists)
    values = np.asarray(content.data)
    out = np.full(len(starts), fill, dtype=values.dtype)
    has = stops > starts
    out[has] = values[starts[has]]
    return out


def _pv_value(per_vertex: ak.Array, fill) -> np.ndarray:
    """Per jet (flat): the primary-vertex entry (index 0) of a jet moment stored per vertex."""
    return first_of_each(ak.flatten(per_vertex, axis=1), fill)


def _string_equals(strings: ak.Array, value: str) -> np.ndarray:
    """Flat strings (one level of lists of characters) -> bool mask of those equal to ``value``."""
    starts, stops, content = _list_bounds(strings)
    chars = np.asarray(content.data)
    key = np.frombuffer(value.encode(), dtype=np.uint8)
    match = (stops - starts) == len(key)
    idx = np.nonzero(match)[0]
    if len(idx) and len(key):
        match[idx] = (chars[starts[idx, np.newaxis] + np.arange(len(key))] == key).all(axis=1)
    return match


def _event_index(counts: np.ndarray) -> np.ndarray:
    """Per object (flat): the index of its event in the chunk."""
    return np.repeat(np.arange(len(counts)), counts)


def _jagged(flat: dict[str, np.ndarray], counts: np.ndarray, keep: np.ndarray | None = None) -> dict[str, ak.Array]:
    """Flat per-object columns -> jagged arrays (one list per event), keeping the objects ``keep``."""
    if keep is not None:
        counts = np.bincount(_event_index(counts)[keep], minlength=len(counts))
        flat = {k: v[keep] for k, v in flat.items()}
    return {k: ak.unflatten(v, counts) for k, v in flat.items()}


# --------------------------------------------------------------------------------------------------
# object definitions
# --------------------------------------------------------------------------------------------------


def dl1d_discriminant(pb, pc, pu, charm_fraction: float = DL1D_CHARM_FRACTION):
    """DL1dv01 b-tagging discriminant ln(p_b / (f_c p_c + (1 - f_c) p_u))."""
    denom = charm_fraction * pc + (1.0 - charm_fraction) * pu
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(pb / denom)


def muon_id(quality):
    """Medium-or-tighter muons that pass the ID cuts, from the xAOD muon quality byte."""
    q = ak.values_astype(quality, np.int32) if isinstance(quality, ak.Array) else np.asarray(quality, np.int32)
    return ((q & MUON_QUALITY_MASK) <= MUON_QUALITY_MEDIUM) & ((q & MUON_PASSES_ID_CUTS_BIT) != 0)


def _rel_iso(ch: Chunk, coll: str, candidates: tuple[str, ...], pt_mev: np.ndarray) -> np.ndarray:
    """Isolation (first available variable) divided by pT (both MeV); 0 where no variable exists."""
    var = ch.first(tuple(f"{coll}.{c}" for c in candidates))
    if var is None:
        return np.zeros_like(pt_mev)
    return ch.flat(var) / np.where(pt_mev > 0, pt_mev, 1.0)


def _jet_btag(ch: Chunk, jet_counts: np.ndarray) -> np.ndarray:
    """b-tag decision per jet (flat), following AnalysisJets.btaggingLink into the b-tagging container."""
    coll = f"{BTAG_COLLECTION}AuxDyn"
    disc = dl1d_discriminant(
        ch.flat(f"{coll}.DL1dv01_pb"), ch.flat(f"{coll}.DL1dv01_pc"), ch.flat(f"{coll}.DL1dv01_pu")
    )
    n_btag = ch.counts(f"{coll}.DL1dv01_pb")
    first_btag = np.repeat(np.cumsum(n_btag) - n_btag, jet_counts)  # per jet: its event's first b-tag entry
    idx = ch.flat("AnalysisJetsAuxDyn.btaggingLink.m_persIndex").astype(np.int64)
    valid = idx < np.repeat(n_btag, jet_counts)  # ElementLink index in range
    tagged = np.zeros(len(idx), dtype=bool)
    tagged[valid] = disc[first_btag[valid] + idx[valid]] > DL1D_CUT_77  # NaN discriminant: not tagged
    return tagged


def _met_term(ch: Chunk, coll: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """(mpx, mpy) in GeV of the MissingET term called ``term`` (0 if an event lacks it)."""
    names = ch[f"{coll}.name"]
    match = _string_equals(ak.flatten(names, axis=1), term)
    event = _event_index(ch.counts(f"{coll}.name"))[match]
    out = []
    for comp in ("mpx", "mpy"):
        total = np.bincount(event, weights=ch.flat(f"{coll}.{comp}")[match], minlength=ch.n)
        out.append((total.astype(np.float32) / MEV_PER_GEV).astype(np.float64))
    return out[0], out[1]


def physlite_objects(ch: Chunk, *, process: str, signal: bool) -> tuple[ak.Array, np.ndarray, np.ndarray]:
    """One chunk of PHYSLITE branches -> (objects before selection, soft-term mpx, mpy in GeV).

    Object identification is applied here (it is PHYSLITE-specific); the kinematic selection is not
    (that is :func:`fast2full.objects.select`, shared by every domain).  ``met`` is left at zero and is
    rebuilt after selection and overlap removal by :func:`skim_chunk`.
    """
    n = ch.n
    # jets: calibrated 4-momenta, NNJvt for low-pT central jets
    J = "AnalysisJetsAuxDyn"
    n_jets = ch.counts(f"{J}.pt")
    jpt_mev, jeta = ch.flat(f"{J}.pt"), ch.flat(f"{J}.eta")
    jpt = jpt_mev / MEV_PER_GEV
    if f"{J}.NNJvtPass" in ch:
        needs_jvt = (jpt < JVT_PT_MAX_GEV) & (np.abs(jeta) < JVT_ABS_ETA_MAX)
        jet_ok = ~needs_jvt | (ch.flat(f"{J}.NNJvtPass") != 0)
    else:
        jet_ok = np.ones(len(jpt), dtype=bool)
    if f"{J}.PartonTruthLabelID" in ch:
        lab = np.abs(ch.flat(f"{J}.PartonTruthLabelID"))
        flavor = np.where(np.isin(lab, PARTON_LABELS), lab, 0)
    else:
        flavor = np.zeros(len(jpt), dtype=np.int32)
    trk_width = _pv_value(ch[f"{J}.TrackWidthPt1000"], 0.0)
    jet_cols = {
        "pt": jpt,
        "eta": jeta,
        "phi": ch.flat(f"{J}.phi"),
        "mass": ch.flat(f"{J}.m") / MEV_PER_GEV,
        "btag": _jet_btag(ch, n_jets),
        "flavor": flavor,
        "ntrk": _pv_value(ch[f"{J}.NumTrkPt500"], 0),
        # xAOD writes -1 for a jet without tracks above 1 GeV; the contract uses 0 (as the Delphes reader)
        "trk_width": np.where(trk_width < 0, np.float32(0.0), trk_width),
        # qg task input (docs/tensors.md): primary-vertex track pT sum; PHYSLITE keeps no jet constituents
        # (InDetTrackParticles are thinned, GhostTrack links mostly dangle), so ``pflow`` stays empty
        "sum_trk_pt": _pv_value(ch[f"{J}.SumPtTrkPt500"], 0.0) / MEV_PER_GEV,
    }
    jets = _jagged(jet_cols, n_jets, jet_ok)

    def leptons(coll: str, ok: np.ndarray, iso_vars: tuple[str, ...], charge: bool) -> dict[str, ak.Array]:
        pt_mev = ch.flat(f"{coll}.pt")
        cols = {"pt": pt_mev / MEV_PER_GEV, "eta": ch.flat(f"{coll}.eta"), "phi": ch.flat(f"{coll}.phi")}
        if charge:
            cols["charge"] = ch.flat(f"{coll}.charge")
        cols["rel_iso"] = _rel_iso(ch, coll, iso_vars, pt_mev)
        return _jagged(cols, ch.counts(f"{coll}.pt"), ok)

    E, M, G = "AnalysisElectronsAuxDyn", "AnalysisMuonsAuxDyn", "AnalysisPhotonsAuxDyn"
    electrons = leptons(E, ch.flat(f"{E}.{ELECTRON_ID_FLAG}") != 0, ELECTRON_ISO_VARS, True)
    muons = leptons(M, muon_id(ch.flat(f"{M}.quality")), MUON_ISO_VARS, True)
    photons = leptons(G, ch.flat(f"{G}.{PHOTON_ID_FLAG}") != 0, PHOTON_ISO_VARS, False)

    if "EventInfoAuxDyn.mcEventWeights" in ch:
        weight = first_of_each(ch["EventInfoAuxDyn.mcEventWeights"], 1.0)
    else:  # collision data
        weight = np.ones(n)
    if "MET_TruthAuxDyn.name" in ch:
        tx, ty = _met_term(ch, "MET_TruthAuxDyn", MET_TRUTH_TERM)
    else:
        tx = ty = np.zeros(n)
    soft_x, soft_y = _met_term(ch, f"{MET_CORE}AuxDyn", MET_SOFT_TERM)
    met_x, met_y = rebuild_met(ch, jet_cols, n_jets, jet_ok, soft_x, soft_y)

    arr = objects.build(
        event_id=ak.to_numpy(ch["EventInfoAuxDyn.eventNumber"]).astype(np.int64),
        weight=weight,
        process=process,
        is_signal=signal,
        jets=jets,
        electrons=electrons,
        muons=muons,
        photons=photons,
        met={"met": np.hypot(met_x, met_y), "phi": np.arctan2(met_y, met_x)},
        gen_met={"met": np.hypot(tx, ty), "phi": np.arctan2(ty, tx)},
    )
    return arr, soft_x, soft_y


def _sum_xy(coll: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per event: (sum px, sum py) of a jagged collection with pt and phi (GeV)."""
    counts = ak.to_numpy(ak.num(coll.pt, axis=1))
    event = _event_index(counts)
    pt, phi = ak.to_numpy(ak.flatten(coll.pt)).astype(np.float64), ak.to_numpy(ak.flatten(coll.phi))
    return (
        np.bincount(event, weights=pt * np.cos(phi), minlength=len(counts)),
        np.bincount(event, weights=pt * np.sin(phi), minlength=len(counts)),
    )


def rebuild_met(
    ch: Chunk,
    jet_cols: dict[str, np.ndarray],
    n_jets: np.ndarray,
    jet_ok: np.ndarray,
    core_x: np.ndarray,
    core_y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """MET (mpx, mpy in GeV) rebuilt as close to ATLAS' METMaker as PHYSLITE allows.

    * hard term: minus the vector sum of METMaker-style baseline objects, independent of the config
      selection -- jets pT > 20 GeV, |eta| < 4.5 passing NNJvt (``MET_JET_*``), LH Medium electrons
      above 10 GeV, Medium muons above 10 GeV, Tight photons above 25 GeV (``MET_*``) -- after the
      shared overlap removal among them (:func:`fast2full.objects.overlap_removal`);
    * soft term: the track soft term of the core container (``PVSoftTrkCore``: PV tracks associated
      with no object of the MET association map), plus, from the association map PHYSLITE stores
      (``METAssoc_AnalysisMET``), the tracks of every jet that is not in the hard term (below 20 GeV,
      failing NNJvt, or removed by the overlap removal), as METMaker does for rejected jets.
      ``jettrkpx/py`` already exclude the tracks of the e/gamma/tau/mu overlapping the jet.
      Without the association branches (or when their count does not match the jets) the soft term
      is the core term alone.
    """
    E, M, G = "AnalysisElectronsAuxDyn", "AnalysisMuonsAuxDyn", "AnalysisPhotonsAuxDyn"
    flat_index = np.arange(len(jet_cols["pt"]))
    jkeep = jet_ok & (jet_cols["pt"] > MET_JET_PT_MIN_GEV) & (np.abs(jet_cols["eta"]) < MET_JET_ABS_ETA_MAX)
    met_jets = _jagged(
        {
            "pt": jet_cols["pt"],
            "eta": jet_cols["eta"],
            "phi": jet_cols["phi"],
            "ntrk": jet_cols["ntrk"],
            "index": flat_index,
        },
        n_jets,
        jkeep,
    )

    def baseline(coll: str, ok: np.ndarray, pt_min: float, abs_eta_max: float) -> dict[str, ak.Array]:
        pt, eta = ch.flat(f"{coll}.pt") / MEV_PER_GEV, ch.flat(f"{coll}.eta")
        keep = ok & (pt > pt_min) & (np.abs(eta) < abs_eta_max)
        return ak.zip(_jagged({"pt": pt, "eta": eta, "phi": ch.flat(f"{coll}.phi")}, ch.counts(f"{coll}.pt"), keep))

    e_flag = f"{E}.{MET_ELECTRON_ID_FLAG}" if f"{E}.{MET_ELECTRON_ID_FLAG}" in ch else f"{E}.{ELECTRON_ID_FLAG}"
    hard = objects.overlap_removal(
        ak.zip(
            {
                "jets": ak.zip(met_jets),
                "electrons": baseline(E, ch.flat(e_flag) != 0, MET_ELECTRON_PT_MIN_GEV, MET_ELECTRON_ABS_ETA_MAX),
                "muons": baseline(M, muon_id(ch.flat(f"{M}.quality")), MET_MUON_PT_MIN_GEV, MET_MUON_ABS_ETA_MAX),
                "photons": baseline(
                    G, ch.flat(f"{G}.{PHOTON_ID_FLAG}") != 0, MET_PHOTON_PT_MIN_GEV, MET_PHOTON_ABS_ETA_MAX
                ),
            },
            depth_limit=1,
        )
    )
    mpx, mpy = core_x.copy(), core_y.copy()
    for name in ("jets", "electrons", "muons", "photons"):
        px, py = _sum_xy(hard[name])
        mpx -= px
        mpy -= py
    tx, ty = f"{MET_ASSOC}.jettrkpx", f"{MET_ASSOC}.jettrkpy"
    if tx in ch and ty in ch:
        n_assoc = ch.counts(tx)
        if np.array_equal(n_assoc, n_jets + 1):  # one association per jet, then the misc one
            per_jet = np.ones(int(n_assoc.sum()), dtype=bool)
            per_jet[np.cumsum(n_assoc) - 1] = False  # drop each event's misc association
            unused = np.ones(len(flat_index), dtype=bool)
            unused[ak.to_numpy(ak.flatten(hard.jets.index))] = False
            event = _event_index(n_jets)[unused]
            for out, branch in ((mpx, tx), (mpy, ty)):
                trk = ch.flat(branch)[per_jet].astype(np.float64) / MEV_PER_GEV
                out -= np.bincount(event, weights=trk[unused], minlength=ch.n)
        else:
            log.warning(
                "MET association map: %d associations for %d jets; soft term = core term only",
                int(n_assoc.sum()),
                int(n_jets.sum()),
            )
    return mpx, mpy


#: the overlap removal is the shared one (one selection for every domain)
overlap_removal = objects.overlap_removal


def skim_chunk(ch: Chunk, config: dict, sample: str) -> ak.Array:
    """One chunk of PHYSLITE branches -> selected objects (the contract) with the rebuilt MET."""
    arr, _, _ = physlite_objects(ch, process=sample, signal=is_signal(config, sample))
    out = overlap_removal(objects.select(arr, config["selection"]))
    objects.check(out)
    return out


def iter_chunks(in_path: str, config: dict, sample: str, chunk_size: int | None = None) -> Iterator[ak.Array]:
    """Yield the skimmed objects of ``in_path`` one entry range at a time."""
    od = config.get("opendata", {})
    step = int(chunk_size or od.get("chunk_size", DEFAULT_CHUNK_SIZE))
    if step < 1:
        raise Fast2FullError(f"config: invalid key 'opendata.chunk_size': {step} (must be >= 1)")
    f, tree, names = open_tree(in_path, timeout_s=float(od.get("timeout_s", 60.0)))
    try:
        n = tree.num_entries
        prog = Progress(total=n, what="events", logger=log)
        for start in range(0, n, step):
            stop = min(start + step, n)
            try:
                out = skim_chunk(read_chunk(tree, names, start, stop), config, sample)
            except (Fast2FullError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:  # decompression / deserialisation errors from a damaged file
                raise InputError(in_path, f"cannot read entries {start}-{stop} ({type(exc).__name__}: {exc})") from exc
            prog.update(stop - start)
            yield out
        prog.done()
    finally:
        f.close()


def skim_physlite(in_path: str, out_path: str, config: dict, sample: str) -> int:
    """Skim one PHYSLITE file to an objects parquet file (atomically); returns the events written.

    ``in_path`` may be a local file or, with ``opendata.stream``, a URL uproot can read.
    """
    in_path = str(in_path)
    log.info("skimming %s (sample %s) -> %s", in_path, sample, out_path)
    return write_objects(iter_chunks(in_path, config, sample), out_path)
