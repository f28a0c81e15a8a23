"""Paper-scale sizing: jobs, SLURM submissions, CPU hours and peak memory per rule.

    python bench/paper_scale.py [--config config.paper.yaml] [--default-config config.yaml]

Dry-runs both configs through the slurm profile (every job, --forceall), fits a cost model per rule
to the benchmark TSVs a default run left in results/benchmarks/ (see fast2full.hpc.sizing), and
evaluates it on every job of the paper-scale config.  Prints a markdown table, writes it into
docs/hpc.md (between the paper-scale markers) and the numbers to results/bench/paper_scale.json.
The ratio reported is paper-scale CPU hours over the default run's, both from the same models.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- paper-scale:begin -->", "<!-- paper-scale:end -->"


def main(argv: list[str] | None = None) -> int:
    import yaml

    from fast2full.common import atomic_output, setup_logging
    from fast2full.hpc import sizing

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paper = ROOT / "config.paper.yaml"
    p.add_argument("--config", default=str(paper if paper.is_file() else ROOT / "config.yaml"),
                   help="the config to size (default: config.paper.yaml)")
    p.add_argument("--default-config", default=str(ROOT / "config.yaml"),
                   help="the config of the run whose benchmarks are measured")
    p.add_argument("--bench-root", default=str(ROOT), help="where that run's results/benchmarks/ lie")
    p.add_argument("--profile", default="slurm", help="profile for the dry runs (submissions, groups)")
    p.add_argument("--doc", default=str(ROOT / "docs" / "hpc.md"), help="markdown file to update ('' : none)")
    p.add_argument("--json", default=str(ROOT / "results" / "bench" / "paper_scale.json"))
    args = p.parse_args(argv)
    setup_logging()

    configs = {"default": Path(args.default_config), "target": Path(args.config)}
    cfg = {k: yaml.safe_load(v.read_text()) for k, v in configs.items()}
    jobs = {k: sizing.parse_dry_run(sizing.dry_run(ROOT, v, profile=args.profile)) for k, v in configs.items()}
    models = sizing.fit_models(jobs["default"], cfg["default"], args.bench_root)
    est = {k: sizing.estimate(jobs[k], cfg[k], models) for k in configs}

    def total(rows: list[sizing.RuleEstimate]) -> float:
        return sum(e.cpu_h for e in rows if not math.isnan(e.cpu_h))

    measured = sum(m.n for m in {id(m): m for m in models.values()}.values())  # fallbacks are aliases
    ratio = total(est["target"]) / total(est["default"]) if total(est["default"]) > 0 else math.nan
    title = (f"{configs['target'].name}: {sum(e.jobs for e in est['target'])} jobs; costs from "
             f"{measured} benchmarked jobs of {configs['default'].name}")
    table = sizing.markdown_table(est["target"], title, sizing.count_submissions(jobs["target"]))
    summary = (f"\nEstimated CPU hours, {configs['target'].name} / {configs['default'].name} "
               f"(same cost models): **{ratio:,.1f}x** ({total(est['target']):,.2f} h vs "
               f"{total(est['default']):,.3f} h).\n")
    print(table + summary)

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps({
            "config": str(configs["target"]), "default_config": str(configs["default"]),
            "cpu_h_ratio_target_over_default": ratio,
            "rules": {k: [dataclasses.asdict(e) for e in v] for k, v in est.items()},
            "models": {f"{r}/{p}" if p else r: dataclasses.asdict(m) for (r, p), m in models.items()},
        }, indent=2, default=str))
    if args.doc:
        doc = Path(args.doc)
        text = doc.read_text() if doc.is_file() else "# HPC\n"
        with atomic_output(doc) as tmp:
            tmp.write_text(sizing.replace_marked(text, BEGIN, END, table + summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
