from fast2full.plan import TASKS

HELP = "compare three representative input features of a task across domains (PDF + PNG)"


def add_arguments(p):
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--out", required=True, help="output PDF; a PNG with the same stem is written beside it")
    p.add_argument("--inputs", nargs="+", required=True, help="train.parquet of each domain (source first)")


def run(args) -> int:
    from fast2full.plotting import plot_features

    plot_features(args.inputs, args.out, args.task)
    return 0
