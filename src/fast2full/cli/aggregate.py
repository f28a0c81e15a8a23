HELP = "aggregate metrics.json files: metrics table, learning curves, data-reduction factors, figures"


def add_arguments(p):
    p.add_argument("--config", required=True, help="workflow config YAML (training grid, aggregate section)")
    p.add_argument("--summary-dir", required=True,
                   help="output folder for metrics.parquet/.csv, curves.csv, reduction_factors.csv, summary.md")
    p.add_argument("--figure-dir", required=True, help="output folder for the figures (PDF + PNG)")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json files written by fast2full train")


def run(args) -> int:
    from fast2full.aggregate import aggregate
    from fast2full.config import load_config

    config = load_config(args.config, base_dir=".")
    aggregate(args.metrics, config, args.summary_dir, args.figure_dir)
    return 0
