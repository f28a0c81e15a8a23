"""Feature definitions per task: names, units, kinds and the default process choices.

One place lists what goes into ``x`` for each task, in which order, so the tensorizer, the metadata,
the plots and ``docs/tensors.md`` all agree.  ``kind`` is ``continuous`` (standardised with the source
domain's masked train-split mean/std) or ``categorical`` (flags and one-hot codes: left as 0/1, stored
with mean 0 and std 1 so that :func:`fast2full.tensorio.load` leaves them unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    kind: str  # "continuous" | "categorical"
    description: str
    #: the feature applies only to slots whose categorical flag ``slot_flag`` is 1 (``!flag``: is 0);
    #: its normalisation statistics use only those slots and it stays 0 elsewhere after normalising
    slot_flag: str | None = None


def _c(name: str, unit: str, description: str, slot_flag: str | None = None) -> Feature:
    return Feature(name, unit, "continuous", description, slot_flag)


def _k(name: str, description: str) -> Feature:
    return Feature(name, "", "categorical", description)


#: kinematics shared by every object type (leptons and photons have mass 0, MET has eta 0 and mass 0)
KINEMATICS = (
    _c("pt", "GeV", "transverse momentum (MET object: missing transverse momentum magnitude)"),
    _c("eta", "", "pseudorapidity (MET object: 0)"),
    _c("phi", "rad", "azimuth in [-pi, pi)"),
    _c("mass", "GeV", "invariant mass (jets; 0 for leptons, photons and MET)"),
    _c("px", "GeV", "pt * cos(phi)"),
    _c("py", "GeV", "pt * sin(phi)"),
)
OBJECT_EXTRAS = (
    _k("btag", "b-tag decision of a jet at the domain's working point (0 for non-jets)"),
    Feature("charge", "e", "categorical", "lepton charge -1/+1 (0 for jets, photons, MET)"),
)

#: object type codes, in one-hot order; ``met`` only for the sigbkg task
OBJECT_TYPES = ("jet", "electron", "muon", "photon", "met")


def _onehot(types: tuple[str, ...]) -> tuple[Feature, ...]:
    return tuple(_k(f"is_{t}", f"one-hot object type: {t}") for t in types)


SIGBKG_FEATURES = KINEMATICS + OBJECT_EXTRAS + _onehot(OBJECT_TYPES)

#: met: reconstructed objects, the MET and its soft term (and the soft term split by candidate kind),
#: then the particle-flow candidates of the soft term.  Slot types, in one-hot order:
MET_OBJECT_TYPES = (
    "met",
    "soft_term",
    "soft_pv_tracks",
    "soft_pu_tracks",
    "soft_neutrals",
    "jet",
    "electron",
    "muon",
    "photon",
    "pf_track",
    "pf_photon",
    "pf_neutral_hadron",
)
MET_FEATURES = (
    KINEMATICS
    + OBJECT_EXTRAS
    + (_k("is_pu", "particle-flow track from a pile-up vertex (Delphes IsPU; 0 for every other slot)"),)
    + _onehot(MET_OBJECT_TYPES)
)

#: qg: slot 0 is the tagged jet (jet observables only), slots 1.. its constituents (constituent
#: features only); the other block is 0.  No other jet of the event enters.
QG_CONSTITUENT_TYPES = ("track", "photon", "neutral_hadron")
QG_FEATURES = (
    _c("c_rel_pt", "", "constituent pT / jet pT (0 in the jet slot)", "!is_jet"),
    _c("c_log_pt", "log(GeV)", "log of the constituent pT in GeV (0 in the jet slot)", "!is_jet"),
    _c("c_deta", "", "constituent eta - jet eta, times the sign of the jet eta (0 in the jet slot)", "!is_jet"),
    _c("c_dphi", "rad", "constituent phi - jet phi in [-pi, pi) (0 in the jet slot)", "!is_jet"),
    _c("c_dr", "", "DeltaR(constituent, jet axis) (0 in the jet slot)", "!is_jet"),
    Feature("c_charge", "e", "categorical", "constituent charge (0 for neutrals and the jet slot)"),
    *(_k(f"is_{t}", f"one-hot slot type: {t} constituent") for t in QG_CONSTITUENT_TYPES),
    _k("is_jet", "one-hot slot type: the tagged jet's own observables (slot 0)"),
    _c("jet_pt", "GeV", "jet transverse momentum (jet slot only)", "is_jet"),
    _c("jet_abs_eta", "", "jet |eta| (jet slot only)", "is_jet"),
    _c("jet_mass", "GeV", "jet mass (jet slot only)", "is_jet"),
    _c("jet_ntrk", "", "tracks with pT > 0.5 GeV in the jet, xAOD NumTrkPt500 (jet slot only)", "is_jet"),
    _c(
        "jet_trk_width",
        "",
        "pT-weighted mean DeltaR of the jet's tracks with pT > 1 GeV, xAOD TrackWidthPt1000 (jet slot only)",
        "is_jet",
    ),
    _c(
        "jet_trk_pt_frac",
        "",
        "scalar pT sum of the jet's pT > 0.5 GeV tracks / jet pT, xAOD SumPtTrkPt500 / pT (jet slot only)",
        "is_jet",
    ),
)

FEATURES: dict[str, tuple[Feature, ...]] = {"sigbkg": SIGBKG_FEATURES, "qg": QG_FEATURES, "met": MET_FEATURES}

#: names of the components of y and of the baseline, per task
TARGETS = {"sigbkg": ["is_ttbar"], "qg": ["is_quark"], "met": ["true_met_x", "true_met_y"]}
TARGET_UNITS = {"sigbkg": [""], "qg": [""], "met": ["GeV", "GeV"]}
BASELINES = {
    "sigbkg": "HT: scalar sum of the selected jets' pT in GeV (higher = more ttbar-like)",
    "qg": "-ntrk of the tagged jet (fewer tracks = more quark-like)",
    "met": "reconstructed MET (x, y) in GeV of the domain's detector",
}
LABELS = {"sigbkg": {"1": "ttbar", "0": "W/Z+jets"}, "qg": {"1": "light quark (|flavor| 1-3)", "0": "gluon"}}

#: processes left out of each task unless ``tensors.tasks.<task>.exclude_processes`` says otherwise;
#: processes with role ``pileup`` in the config are always left out.  qg also leaves out signal (ttbar)
DEFAULT_EXCLUDE = {"sigbkg": ["dijet", "minbias"], "qg": ["minbias"], "met": ["minbias"]}

#: parton labels (|pdgId|) kept by the quark/gluon task
LIGHT_QUARK_FLAVORS = (1, 2, 3)
GLUON_FLAVOR = 21

#: default sizes (config tensors.tasks.<task>.max_objects / max_jets override them)
DEFAULT_MAX_OBJECTS = {"sigbkg": 12, "qg": 33, "met": 16}
#: met: particle-flow candidates of the soft term appended after the objects (config max_candidates)
DEFAULT_MAX_CANDIDATES = 48
#: qg: constituents kept per jet (config max_constituents; x then has 1 + this many slots)
DEFAULT_MAX_CONSTITUENTS = 32
#: qg: a constituent belongs to the jet within this DeltaR of its axis (the anti-kt radius; the same
#: association as the jet track variables, fast2full.readers.common.JET_TRACK_DELTA_R)
QG_CONSTITUENT_DELTA_R = 0.4
#: met: a particle-flow candidate is part of a selected object (not of the soft term) within this
#: DeltaR of a selected jet (JET) or lepton/photon (EM)
MET_CANDIDATE_JET_DELTA_R = 0.4
MET_CANDIDATE_EM_DELTA_R = 0.1

#: qg: (pT, |eta|) binning of the quark/gluon reweighting to a common spectrum (config
#: tensors.tasks.qg.reweight overrides it)
QG_REWEIGHT_PT_EDGES_GEV = (25.0, 30.0, 35.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1.0e5)
QG_REWEIGHT_ABS_ETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0)
DEFAULT_REGION = {"n_leptons": 1, "min_jets": 4, "min_btags": 1}


def input_slots(task: str, task_cfg: dict | None = None) -> int:
    """Padded slots per row of ``task``'s tensors for its config slice ``tensors.tasks.<task>``:
    ``sigbkg`` max_objects; ``qg`` 1 + max_constituents (the jet, then its constituents); ``met``
    max_objects + max_candidates (terms and objects, then the soft term's candidates).  The shape the
    tensorize stage writes for a domain with particle-flow candidates (PHYSLITE qg rows have 1 slot)."""
    cfg = task_cfg or {}
    if task == "sigbkg":
        return int(cfg.get("max_objects", DEFAULT_MAX_OBJECTS["sigbkg"]))
    if task == "qg":
        return 1 + int(cfg.get("max_constituents", DEFAULT_MAX_CONSTITUENTS))
    if task == "met":
        return int(cfg.get("max_objects", DEFAULT_MAX_OBJECTS["met"])) + int(
            cfg.get("max_candidates", DEFAULT_MAX_CANDIDATES)
        )
    raise ValueError(f"unknown task {task!r}; choose one of {tuple(FEATURES)}")


def names(task: str) -> list[str]:
    return [f.name for f in FEATURES[task]]


def units(task: str) -> list[str]:
    return [f.unit for f in FEATURES[task]]


def kinds(task: str) -> list[str]:
    return [f.kind for f in FEATURES[task]]


def slot_flags(task: str) -> list[str | None]:
    return [f.slot_flag for f in FEATURES[task]]
