HELP = "export a generation parquet file (contract 1) to HepMC3 ASCII for real Delphes"


def add_arguments(p):
    p.add_argument("--in", dest="inp", required=True, help="generation parquet file")
    p.add_argument("--out", required=True, help="output .hepmc file (HepMC3 ASCII)")


def run(args) -> int:
    from fast2full.hepmc import export_hepmc

    export_hepmc(args.inp, args.out)
    return 0
