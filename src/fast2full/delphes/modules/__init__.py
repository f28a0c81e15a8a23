"""Delphes modules, re-implemented column-wise over a whole chunk of events.

Every class here mirrors the Delphes module of the same name (``modules/<Type>.cc`` in
github.com/delphes/delphes, read for semantics): the same parameter names, defaults and meanings.
The docstrings say where the builtin engine simplifies.  A card parameter a class does not list is
an error naming the card line, so a card that runs here means the same thing in real Delphes.

One file per module family:

==================  =====================================================================
``base``            :class:`Context`, the :class:`Module` base class, kinematic helpers
``tracking``        ParticlePropagator, MomentumSmearing, TrackSmearing
``response``        Efficiency, EnergySmearing, EnergyScale
``calorimetry``     Calorimeter, SimpleCalorimeter (and the tower / energy-flow code they share)
``isolation``       Isolation, UniqueObjectFinder
``jets``            FastJetFinder (with or without substructure switches), :func:`cluster`
``flavour``         JetFlavorAssociation, BTagging
``tau``             TauTagging, TrackCountingTauTagging
``pileup``          PileUpMerger, :func:`merge_pileup`
``utility``         Merger (MET, scalar HT), PdgCodeFilter, TreeWriter
==================  =====================================================================

:data:`MODULES` maps a card's module type to its class; :func:`build_module` builds one.
"""

from __future__ import annotations

from fast2full.delphes.card import Module as CardModule
from fast2full.delphes.modules.base import C_LIGHT_GEV, Context, Module
from fast2full.delphes.modules.calorimetry import Calorimeter, SimpleCalorimeter
from fast2full.delphes.modules.flavour import BTagging, JetFlavorAssociation
from fast2full.delphes.modules.isolation import Isolation, UniqueObjectFinder
from fast2full.delphes.modules.jets import (
    JET_FLOAT_COLS,
    JET_INT_COLS,
    SUBSTRUCTURE,
    FastJetFinder,
    FastJetFinderWithSubstructure,
    cluster,
)
from fast2full.delphes.modules.pileup import PileUpMerger, merge_pileup
from fast2full.delphes.modules.response import Efficiency, EnergyScale, EnergySmearing
from fast2full.delphes.modules.tau import TauTagging, TrackCountingTauTagging
from fast2full.delphes.modules.tracking import MomentumSmearing, ParticlePropagator, TrackSmearing
from fast2full.delphes.modules.utility import Merger, PdgCodeFilter, TreeWriter

#: card module type -> builtin class (FastJetFinderWithSubstructure registers as FastJetFinder)
MODULES: dict[str, type[Module]] = {
    cls.TYPE: cls
    for cls in (
        ParticlePropagator,
        Efficiency,
        MomentumSmearing,
        TrackSmearing,
        EnergySmearing,
        EnergyScale,
        Merger,
        PdgCodeFilter,
        Calorimeter,
        SimpleCalorimeter,
        Isolation,
        FastJetFinder,
        FastJetFinderWithSubstructure,
        JetFlavorAssociation,
        BTagging,
        TauTagging,
        TrackCountingTauTagging,
        UniqueObjectFinder,
        PileUpMerger,
        TreeWriter,
    )
}


def build_module(spec: CardModule) -> Module:
    cls = MODULES.get(spec.type)
    if cls is None:
        raise spec.error(
            f"module type '{spec.type}' is not supported by the builtin engine "
            f"(supported: {', '.join(sorted(MODULES))})"
        )
    return cls(spec)


__all__ = [
    "C_LIGHT_GEV",
    "JET_FLOAT_COLS",
    "JET_INT_COLS",
    "MODULES",
    "SUBSTRUCTURE",
    "BTagging",
    "Calorimeter",
    "Context",
    "Efficiency",
    "EnergyScale",
    "EnergySmearing",
    "FastJetFinder",
    "FastJetFinderWithSubstructure",
    "Isolation",
    "JetFlavorAssociation",
    "Merger",
    "Module",
    "MomentumSmearing",
    "ParticlePropagator",
    "PdgCodeFilter",
    "PileUpMerger",
    "SimpleCalorimeter",
    "TauTagging",
    "TrackCountingTauTagging",
    "TrackSmearing",
    "TreeWriter",
    "UniqueObjectFinder",
    "build_module",
    "cluster",
    "merge_pileup",
]
