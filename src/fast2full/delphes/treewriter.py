"""Writing the ``Delphes`` tree with uproot, with Delphes' branch names, types and units.

A real Delphes file stores each branch as a ``TClonesArray`` split into leaves ``Jet.PT``,
``Jet.Eta``... with a counter ``Jet_size``; uproot reads those as jagged arrays named ``Jet.PT`` (a
``Jet/Jet.PT`` path).  The builtin engine writes the same leaf names as top-level jagged branches
with the counter ``Jet_size``, so ``tree["Jet.PT"]``, ``tree.arrays(["Jet.PT"])`` and
``tree["Jet_size"]`` give the same names, dtypes (float32, int32, uint32 for Jet.Flavor/BTag, int64
for Event.Number) and units (GeV, radians, mm) for both.  Only the leaves listed here are written
(``classes/DelphesClasses.h`` defines the full set); TRef links are not written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from fast2full.delphes.candidates import Coll

F4, I4, U4, I8 = np.float32, np.int32, np.uint32, np.int64


def _common(c: Coll) -> dict[str, np.ndarray]:
    return {"PT": c.pt, "Eta": c.eta, "Phi": c.phi}


def _jet(c: Coll) -> dict:
    return {
        **_common(c),
        "Mass": c.mass,
        "DeltaEta": c["delta_eta"],
        "DeltaPhi": c["delta_phi"],
        "Flavor": c["flavor"].astype(U4),
        "FlavorAlgo": c["flavor_algo"].astype(U4),
        "BTag": c["btag"].astype(U4),
        "BTagAlgo": c["btag_algo"].astype(U4),
        "TauTag": (c["tau_tag"] if "tau_tag" in c else np.zeros(len(c))).astype(U4),
        "Charge": c["charge"].astype(I4),
        "EhadOverEem": c["ehad_over_eem"],
        "NCharged": c["ncharged"].astype(I4),
        "NNeutrals": c["nneutrals"].astype(I4),
        "NeutralEnergyFraction": c["neutral_energy_fraction"],
        "ChargedEnergyFraction": c["charged_energy_fraction"],
        "MeanSqDeltaR": c["mean_sq_dr"],
        "PTD": c["ptd"],
    }


def _iso(c: Coll) -> dict:
    def g(k):
        return c.cols[k] if k in c.cols else np.zeros(len(c))

    return {
        "IsolationVar": g("iso_var"),
        "IsolationVarRhoCorr": g("iso_var_rho"),
        "SumPtCharged": g("sum_pt_charged"),
        "SumPtNeutral": g("sum_pt_neutral"),
        "SumPtChargedPU": g("sum_pt_charged_pu"),
        "SumPt": g("sum_pt"),
    }


def _ehad_over_eem(c: Coll) -> np.ndarray:
    eem, ehad = c["eem"], c["ehad"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(eem > 0, ehad / eem, 999.9)


def _electron(c: Coll) -> dict:
    return {
        **_common(c),
        "Charge": c["charge"].astype(I4),
        "EhadOverEem": _ehad_over_eem(c),
        **_iso(c),
        "D0": c["d0"],
        "DZ": c["dz"],
    }


def _muon(c: Coll) -> dict:
    return {**_common(c), "Charge": c["charge"].astype(I4), **_iso(c), "D0": c["d0"], "DZ": c["dz"]}


def _photon(c: Coll) -> dict:
    return {**_common(c), "E": c["e"], "EhadOverEem": _ehad_over_eem(c), **_iso(c)}


def _met(c: Coll) -> dict:
    # TreeWriter::ProcessMissingET: MET = |sum|, direction of -sum
    return {"MET": c.pt, "Eta": -c.eta, "Phi": np.arctan2(-c["py"], -c["px"])}


def _scalar_ht(c: Coll) -> dict:
    return {"HT": c["px"]}  # Merger's EnergyOutputArray keeps the scalar pT sum in px


def _track(c: Coll) -> dict:
    eta_o, phi_o = c.pos_eta_phi()
    with np.errstate(divide="ignore", invalid="ignore"):
        ctg = c["pz"] / c.pt
    return {
        "PID": c["pid"].astype(I4),
        "Charge": c["charge"].astype(I4),
        "IsPU": c["is_pu"].astype(I4),
        "P": c.p,
        **_common(c),
        "CtgTheta": ctg,
        "EtaOuter": eta_o,
        "PhiOuter": phi_o,
        "D0": c["d0"],
        "DZ": c["dz"],
    }


def _tower(c: Coll) -> dict:
    return {"ET": c.pt, "Eta": c.eta, "Phi": c.phi, "E": c["e"], "Eem": c["eem"], "Ehad": c["ehad"]}


def _gen_particle(c: Coll) -> dict:
    return {
        "PID": c["pid"].astype(I4),
        "Status": c["status"].astype(I4),
        "IsPU": c["is_pu"].astype(I4),
        "Charge": c["charge"].astype(I4),
        "Mass": np.maximum(c.mass, 0.0),
        "E": c["e"],
        "Px": c["px"],
        "Py": c["py"],
        "Pz": c["pz"],
        "P": c.p,
        **_common(c),
    }


#: Delphes branch class -> leaves written (name -> array; floats are stored as float32)
BRANCH_CLASSES: dict[str, Callable[[Coll], dict]] = {
    "Jet": _jet,
    "Electron": _electron,
    "Muon": _muon,
    "Photon": _photon,
    "MissingET": _met,
    "ScalarHT": _scalar_ht,
    "Track": _track,
    "Tower": _tower,
    "GenParticle": _gen_particle,
}


def _jagged(values: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """One list of records per event, all leaves sharing one offsets array; floats as float32."""
    offsets = ak.index.Index64(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    contents, names = [], []
    for k, v in values.items():
        v = np.asarray(v)
        if v.dtype.kind == "f":
            v = v.astype(F4)
        contents.append(ak.contents.NumpyArray(np.ascontiguousarray(v)))
        names.append(k)
    n = int(offsets[-1])
    return ak.Array(ak.contents.ListOffsetArray(offsets, ak.contents.RecordArray(contents, names, length=n)))


def build_tree(
    branches: dict[str, tuple[str, Coll]],
    event_number: np.ndarray,
    weight: np.ndarray,
    cross_section: np.ndarray | None = None,
) -> dict[str, ak.Array]:
    """Event, Weight and the TreeWriter branches as awkward arrays of records (one list per event)."""
    n = len(event_number)
    one = np.ones(n, np.int64)
    xs = np.zeros(n) if cross_section is None else np.asarray(cross_section)
    data = {
        "Event": _jagged(
            {
                "Number": np.asarray(event_number, I8),
                "Weight": np.asarray(weight),
                "CrossSection": xs,
                "ProcessID": np.zeros(n, I4),
            },
            one,
        ),
        "Weight": _jagged({"Weight": np.asarray(weight)}, one),
    }
    for bname, (bclass, coll) in branches.items():
        data[bname] = _jagged(BRANCH_CLASSES[bclass](coll), coll.counts)
    return data


def compression():
    """LZ4 (fast; the lz4 module comes with coffea), else ROOT's default ZLIB."""
    try:
        import lz4  # noqa: F401
    except ImportError:  # pragma: no cover - lz4 is a coffea dependency
        return uproot.ZLIB(1)
    return uproot.LZ4(1)


def make_tree(f, data: dict[str, ak.Array]):
    """Create tree ``Delphes`` in the open file ``f`` with leaves ``Branch.Leaf`` and counters
    ``Branch_size`` for the branches of ``data``."""
    return f.mktree(
        "Delphes",
        {k: v.type for k, v in data.items()},
        counter_name=lambda counted: f"{counted}_size",
        field_name=lambda outer, inner: f"{outer}.{inner}",
    )


def write_tree(path: str | Path, data: dict[str, ak.Array]) -> None:
    """Write ``data`` as the ``Delphes`` tree of a new file ``path``."""
    with uproot.recreate(path, compression=compression()) as f:
        make_tree(f, data).extend(data)
