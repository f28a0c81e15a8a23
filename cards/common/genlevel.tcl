# fast2full: generator-level objects shared by both detector cards (no detector response).
# Sourced by cards/atlas_like.tcl and cards/cms_like.tcl; Delphes resolves `source` paths relative
# to the folder of the top-level card (it changes into that folder), whatever the working directory.

# Visible stable particles of the hard-scatter event: everything but neutrinos (Invert false:
# listed codes are removed) and pile-up particles (where pile-up is merged into the input).
module PdgCodeFilter NeutrinoFilter {
  set InputArray Delphes/stableParticles
  set OutputArray filteredParticles
  set PTMin 0.0
  set RequireNotPileup true
  add PdgCode 12 -12 14 -14 16 -16
}

# Truth jets: anti-kt R = 0.4 on visible stable particles, as ATLAS and CMS truth jets
# (ATLAS: Eur. Phys. J. C 81 (2021) 689; CMS: JINST 12 (2017) P02014).
module FastJetFinder GenJetFinder {
  set InputArray NeutrinoFilter/filteredParticles
  set OutputArray jets
  set JetAlgorithm 6
  set ParameterR 0.4
  set JetPTMin 20.0
}

# True missing transverse momentum: minus the vector sum of all visible stable particles
# (TreeWriter writes MET = |sum| at the opposite azimuth), i.e. the neutrinos' pT sum.
module Merger GenMissingET {
  add InputArray NeutrinoFilter/filteredParticles
  set MomentumOutputArray momentum
}
