from fast2full.cli.options import add_config, get_config

HELP = "aggregate metrics.json files: metrics table, learning curves, data-reduction factors, figures"


def add_arguments(p):
    add_config(p, "training grid, aggregate section")
    p.add_argument(
        "--summary-dir",
        required=True,
        help="output folder for metrics.parquet/.csv, curves.csv, reduction_factors.csv, summary.md",
    )
    p.add_argument("--figure-dir", required=True, help="output folder for the figures (PDF + PNG)")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json files written by fast2full train")


def run(args) -> int:
    from fast2full.aggregate import aggregate

    config = get_config(args)
    aggregate(args.metrics, config, args.summary_dir, args.figure_dir)
    return 0
