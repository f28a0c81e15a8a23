"""fast2full: transfer learning from fast to full detector simulation.

Stages (one module each, one ``fast2full <stage>`` subcommand each): generate, export-hepmc,
simulate, opendata (manifest/fetch), skim, tensorize, train, aggregate.
"""

__version__ = "0.2.0"
