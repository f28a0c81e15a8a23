from fast2full.cli.options import add_config, get_config

HELP = "generate one chunk of Pythia8 events for a process -> particle-level parquet (contract 1)"


def add_arguments(p):
    add_config(p)
    p.add_argument("--process", required=True, help="process name (a key of processes:)")
    p.add_argument("--chunk", required=True, type=int, help="chunk index, 0-based")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--batch", type=int, default=None, help="events per nextBatch call (memory bound)")


def run(args) -> int:
    from fast2full.generate import DEFAULT_BATCH, run_generate

    config = get_config(args)
    run_generate(config, args.process, args.chunk, args.out, batch=args.batch or DEFAULT_BATCH)
    return 0
