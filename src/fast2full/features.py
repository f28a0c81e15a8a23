"""Feature definitions per task: names, units, kinds and the default process choices.

One place lists what goes into ``x`` for each task, in which order, so the tensorizer, the metadata,
the plots and ``docs/tensors.md`` all agree.  ``kind`` is ``continuous`` (standardised with the source
domain's masked train-split mean/std) or ``categorical`` (flags and one-hot codes: left as 0/1, stored
with mean 0 and std 1 so that :func:`fast2full.tensorio.load` leaves them unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("sigbkg", "qg", "met")


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    kind: str  # "continuous" | "categorical"
    description: str


def _c(name: str, unit: str, description: str) -> Feature:
    return Feature(name, unit, "continuous", description)


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
MET_FEATURES = KINEMATICS + OBJECT_EXTRAS + _onehot(OBJECT_TYPES[:-1])
QG_FEATURES = (
    _c("pt", "GeV", "jet transverse momentum"),
    _c("eta", "", "jet pseudorapidity"),
    _c("phi", "rad", "jet azimuth"),
    _c("mass", "GeV", "jet mass"),
    _c("ntrk", "", "number of tracks with pT > 0.5 GeV in the jet"),
    _c("trk_width", "", "pT-weighted mean DeltaR of the jet's tracks with pT > 1 GeV"),
    _k("is_tagged", "1 for the jet whose flavour is the label (always slot 0), 0 for context jets"),
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
DEFAULT_MAX_OBJECTS = {"sigbkg": 12, "qg": 6, "met": 16}
DEFAULT_REGION = {"n_leptons": 1, "min_jets": 4, "min_btags": 1}


def names(task: str) -> list[str]:
    return [f.name for f in FEATURES[task]]


def units(task: str) -> list[str]:
    return [f.unit for f in FEATURES[task]]


def kinds(task: str) -> list[str]:
    return [f.kind for f in FEATURES[task]]
