"""``FastJetFinder`` with the jet-substructure switches of Delphes' card parameters accepted.

The stock CMS card's ``FatJetFinder`` (anti-kt R = 0.8) asks Delphes for N-subjettiness
(``ComputeNsubjettiness``, ``Beta``, ``AxisMode``), trimming (``ComputeTrimming``, ``RTrim``,
``PtFracTrim``), pruning (``ComputePruning``, ``ZcutPrun``, ``RcutPrun``, ``RPrun``) and soft drop
(``ComputeSoftDrop``, ``BetaSoftDrop``, ``SymmetryCutSoftDrop``, ``R0SoftDrop``).  Those only fill
the Jet leaves ``Tau[5]``, ``TrimmedP4[5]``, ``PrunedP4[5]``, ``SoftDroppedP4[5]``... that the builtin
engine's TreeWriter does not write, so the jets themselves (clustering, pT threshold) are the same
with or without them.  The builtin engine therefore accepts these parameters and, when one of the
``Compute*`` switches is on, says once (a warning naming the module and the card line) that those
leaves are not produced.  Any other FastJetFinder option (areas, pile-up subtraction, exclusive
jets...) stays an unknown parameter.
"""

from __future__ import annotations

import logging

from fast2full.delphes.modules import FastJetFinder

log = logging.getLogger("fast2full.delphes")

SUBSTRUCTURE = (
    "ComputeNsubjettiness",
    "Beta",
    "AxisMode",
    "RcutOff",
    "N",
    "ComputeTrimming",
    "RTrim",
    "PtFracTrim",
    "ComputePruning",
    "ZcutPrun",
    "RcutPrun",
    "RPrun",
    "ComputeSoftDrop",
    "BetaSoftDrop",
    "SymmetryCutSoftDrop",
    "R0SoftDrop",
)


class FastJetFinderWithSubstructure(FastJetFinder):
    PARAMS = {**FastJetFinder.PARAMS, **dict.fromkeys(SUBSTRUCTURE, "")}

    def setup(self):
        super().setup()
        asked = [n for n in SUBSTRUCTURE if n.startswith("Compute") and self.b(n, False)]
        if asked:
            p = self._p(asked[0])
            log.warning(
                "%s:%s: module FastJetFinder %s: %s: the substructure leaves (Tau, TrimmedP4, "
                "PrunedP4, SoftDroppedP4...) are not computed by the builtin engine; the jets "
                "themselves are unaffected",
                p.path,
                p.line,
                self.name,
                ", ".join(asked),
            )


__all__ = ["FastJetFinderWithSubstructure", "SUBSTRUCTURE"]
