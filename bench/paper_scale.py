"""Paper-scale sizing: jobs, SLURM submissions, CPU hours and peak memory per rule.

    python bench/paper_scale.py [--config config.paper.yaml] [--default-config config.yaml]

Dry-runs both configs through the slurm profile (every job, --forceall), fits a cost model per rule
to the benchmark TSVs a default run left in results/benchmarks/ (see fast2full.hpc.sizing), and
evaluates it on every job of the paper-scale config.  Prints a markdown table, writes it into
docs/hpc.md (between the paper-scale markers) and the numbers to results/bench/paper_scale.json.
The ratio reported is paper-scale CPU hours over the default run's, both from the same models.

Training is costed per member-sample (members x optimiser steps x batch rows, fast2full.hpc.sizing):
the default run's steps are read from its metrics.json files; at the target scale every member is
bounded below by min_steps and above by max_steps (the cap), so training CPU hours are a range.
The cost per member-sample of the target config's model size relative to the measured one comes from
bench/bench_train.py's results/bench/train.json (--train-bench) when it holds both sizes.  Wall time is
for one workstation of --cores cores (every stage scheduled on all cores, stages one after another).
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

    from fast2full.common import atomic_output, setup_logging
    from fast2full.hpc import sizing

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paper = ROOT / "config.paper.yaml"
    p.add_argument(
        "--config",
        default=str(paper if paper.is_file() else ROOT / "config.yaml"),
        help="the config to size (default: config.paper.yaml)",
    )
    p.add_argument(
        "--default-config",
        default=str(ROOT / "config.yaml"),
        help="the config of the run whose benchmarks are measured",
    )
    p.add_argument("--bench-root", default=str(ROOT), help="where that run's results/benchmarks/ lie")
    p.add_argument("--profile", default="slurm", help="profile for the dry runs (submissions, groups)")
    p.add_argument("--doc", default=str(ROOT / "docs" / "hpc.md"), help="markdown file to update ('' : none)")
    p.add_argument("--json", default=str(ROOT / "results" / "bench" / "paper_scale.json"))
    p.add_argument(
        "--train-bench",
        nargs="+",
        type=Path,
        default=[ROOT / "results" / "bench" / "train.json", ROOT / "results" / "bench" / "train_allocator.json"],
        help="bench_train.py outputs: cost per member-sample by model size and input shape (and CPU vs GPU)",
    )
    p.add_argument(
        "--measured-allocator",
        choices=("tuned", "default"),
        default="tuned",
        help="the measured run's training allocator: tuned (fast2full.train.keep_freed_memory, this code) or "
        "default (a run made before it; needs bench_train.py --allocator ab rows)",
    )
    p.add_argument("--cores", type=int, default=32, help="cores of the workstation for the wall-time estimate")
    p.add_argument(
        "--model-sizes",
        nargs="*",
        default=["tiny", "small", "base"],
        help="also give the expected training cost of the target config at these training.model_size values",
    )
    args = p.parse_args(argv)
    setup_logging()

    configs = {"default": Path(args.default_config), "target": Path(args.config)}
    # as snakemake --configfile does: every config deep-merged over config.yaml (config.medium.yaml is
    # an overlay), validated, schema defaults filled in
    from fast2full.config import load_config

    base = ROOT / "config.yaml"
    cfg = {
        k: load_config(base, *([v] if v.resolve() != base.resolve() else []), base_dir=ROOT) for k, v in configs.items()
    }
    jobs = {k: sizing.parse_dry_run(sizing.dry_run(ROOT, v, profile=args.profile)) for k, v in configs.items()}
    models = sizing.fit_models(jobs["default"], cfg["default"], args.bench_root)
    steps = sizing.fit_step_model(args.bench_root, cfg["default"])
    scale, gpu_speedup, scale_note = _train_bench(
        args.train_bench, cfg["default"], cfg["target"], args.measured_allocator
    )
    scale_note += _fill_missing_archs(models, args.train_bench[0], cfg["default"])
    est = {
        "default": sizing.estimate(jobs["default"], cfg["default"], models),
        "target": sizing.estimate(jobs["target"], cfg["target"], models, train_scale=scale, step_model=steps),
    }

    def total(rows: list[sizing.RuleEstimate]) -> float:
        return sum(e.cpu_h for e in rows if not math.isnan(e.cpu_h))

    measured = sum(m.n for m in {id(m): m for m in models.values()}.values())  # fallbacks are aliases
    ratio = total(est["target"]) / total(est["default"]) if total(est["default"]) > 0 else math.nan
    title = (
        f"{configs['target'].name}: {sum(e.jobs for e in est['target'])} jobs; costs from "
        f"{measured} benchmarked jobs of {configs['default'].name}"
    )
    table = sizing.markdown_table(est["target"], title, sizing.count_submissions(jobs["target"]))
    summary = (
        f"\nEstimated CPU hours, {configs['target'].name} / {configs['default'].name} "
        f"(same cost models): **{ratio:,.1f}x** ({total(est['target']):,.2f} h vs "
        f"{total(est['default']):,.3f} h).\n"
    )
    tr = [e for e in est["target"] if e.rule in sizing.TRAIN_RULES]
    tr_lo = sum(e.cpu_h_min for e in tr if not math.isnan(e.cpu_h_min))
    tr_hi = sum(e.cpu_h for e in tr if not math.isnan(e.cpu_h))
    tr_exp = sum(e.cpu_h_exp for e in tr if not math.isnan(e.cpu_h_exp)) if steps else math.nan
    rest = total(est["target"]) - tr_hi
    longest = max((max(e.job_cpu_s) for e in tr if e.job_cpu_s), default=math.nan) / 3600
    longest_lo = max((max(e.job_cpu_s_min) for e in tr if e.job_cpu_s_min), default=math.nan) / 3600
    longest_exp = max((max(e.job_cpu_s_exp) for e in tr if e.job_cpu_s_exp), default=math.nan) / 3600
    wall_exp = sizing.wall_time_h(est["target"], args.cores, expected=True) if steps else math.nan
    wall_lo = sizing.wall_time_h(est["target"], args.cores, lower=True)
    wall_hi = sizing.wall_time_h(est["target"], args.cores)
    peak = max((e.peak_rss_mb for e in est["target"] if not math.isnan(e.peak_rss_mb)), default=math.nan)
    gpu = (
        (
            f"{tr_lo / gpu_speedup:,.1f} – {tr_hi / gpu_speedup:,.1f} GPU h, expected "
            f"{tr_exp / gpu_speedup:,.1f} (bench_train.py: GPU "
            f"{gpu_speedup:.1f}x the CPU thread)"
        )
        if gpu_speedup
        else "not measured (no GPU on the machine that ran bench_train.py)"
    )
    summary += (
        f"\n| quantity ({configs['target'].name}) | every member at min_steps | expected (step model) "
        f"| every member at max_steps (cap) |\n"
        f"| --- | ---: | ---: | ---: |\n"
        f"| training CPU h | {tr_lo:,.1f} | {tr_exp:,.1f} | {tr_hi:,.1f} |\n"
        f"| whole study CPU h | {rest + tr_lo:,.1f} | {rest + tr_exp:,.1f} | {rest + tr_hi:,.1f} |\n"
        f"| longest training job, CPU h | {longest_lo:,.2f} | {longest_exp:,.2f} | {longest:,.2f} |\n"
        f"| wall time on {args.cores} cores, h | {wall_lo:,.1f} | {wall_exp:,.1f} | {wall_hi:,.1f} |\n"
        f"\nTraining on GPUs: {gpu}. Largest peak RSS measured per job: {peak / 1000:.2f} GB. {scale_note}\n"
        + _step_note(steps)
    )
    if steps and args.model_sizes:
        summary += _by_model_size(args, jobs["target"], cfg, models, steps)
    print(table + summary)

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        tmp.write_text(
            json.dumps(
                {
                    "config": str(configs["target"]),
                    "default_config": str(configs["default"]),
                    "cpu_h_ratio_target_over_default": ratio,
                    "training_cpu_h": [tr_lo, tr_hi],
                    "training_cpu_h_expected": tr_exp,
                    "study_cpu_h": [rest + tr_lo, rest + tr_hi],
                    "study_cpu_h_expected": rest + tr_exp,
                    "longest_training_job_cpu_h": [longest_lo, longest],
                    "longest_training_job_cpu_h_expected": longest_exp,
                    f"wall_h_{args.cores}_cores": [wall_lo, wall_hi],
                    f"wall_h_{args.cores}_cores_expected": wall_exp,
                    "step_model": {
                        "coef": steps.coef,
                        "pools": {f"{t}/{d}": v for (t, d), v in steps.pools.items()},
                    }
                    if steps
                    else None,
                    "train_scale": scale,
                    "gpu_speedup": gpu_speedup,
                    "rules": {
                        k: [{f: v for f, v in dataclasses.asdict(e).items() if not f.startswith("job_cpu")} for e in v]
                        for k, v in est.items()
                    },
                    "models": {f"{r}/{p}" if p else r: dataclasses.asdict(m) for (r, p), m in models.items()},
                },
                indent=2,
                default=str,
            )
        )
    if args.doc:
        doc = Path(args.doc)
        text = doc.read_text() if doc.is_file() else "# HPC\n"
        with atomic_output(doc) as tmp:
            tmp.write_text(sizing.replace_marked(text, BEGIN, END, table + summary))
    return 0


def _by_model_size(args, jobs, cfg: dict, models: dict, steps) -> str:
    """Expected training CPU hours and wall time of the target config at other model sizes (the same
    jobs, steps and cost models; the cost per member-sample scaled by bench_train.py's ratios)."""
    import copy

    from fast2full.hpc import sizing

    lines = [
        "",
        f"Expected training cost of {Path(args.config).name} by `training.model_size` (same jobs and step "
        "model; cost per member-sample scaled by `bench_train.py`, CPU, one thread):",
        "",
        "| model_size | training CPU h (expected) | longest training job, CPU h "
        f"| study wall time, {args.cores} cores, h |",
        "| --- | ---: | ---: | ---: |",
    ]
    for size in args.model_sizes:
        target = copy.deepcopy(cfg["target"])
        target.setdefault("training", {})["model_size"] = size
        scale, _, note = _train_bench(args.train_bench, cfg["default"], target, args.measured_allocator)
        if not scale and size != cfg["default"].get("training", {}).get("model_size"):
            lines.append(f"| {size} | n/a ({note}) | | |")
            continue
        est = sizing.estimate(jobs, target, models, train_scale=scale, step_model=steps)
        tr = [e for e in est if e.rule in sizing.TRAIN_RULES]
        cpu = sum(e.cpu_h_exp for e in tr if not math.isnan(e.cpu_h_exp))
        longest = max((max(e.job_cpu_s_exp) for e in tr if e.job_cpu_s_exp), default=math.nan) / 3600
        wall = sizing.wall_time_h(est, args.cores, expected=True)
        lines.append(f"| {size} | {cpu:,.1f} | {longest:,.2f} | {wall:,.1f} |")
    return "\n".join(lines) + "\n"


def _step_note(steps) -> str:
    """One sentence on the step model behind the expected column."""
    if steps is None:
        return "\nNo training results in the measured run: no expected steps (min and max only).\n"
    fits = ", ".join(f"{m} {a:.3g} n^{b:.2f} ({k} members)" for m, (a, b, k) in sorted(steps.coef.items()))
    return (
        "\nExpected steps: a member stops `patience` checks after its best, within [min_steps, max_steps]; "
        f"steps to the best check fitted on the measured run as a * n^b per mode: {fits}. The full train "
        "split (`all`) is the measured pool scaled by the events that feed the task (PHYSLITE: the "
        "largest numeric size, a lower bound).\n"
    )


def _fill_missing_archs(models: dict, path: Path, default: dict) -> str:
    """An architecture whose training jobs the default run did not benchmark (yet) gets a measured
    architecture's cost model, its cost per member-sample scaled by the two architectures' engine
    throughput (bench_train.py, the default's model size); says which."""
    from fast2full.hpc import sizing

    if not path.is_file():
        return ""
    size = default.get("training", {}).get("model_size", "small")
    rate = {
        r["arch"]: r.get("ensemble10_member_samples_per_s")
        for r in json.loads(path.read_text()).get("throughput", [])
        if r.get("device") == "cpu" and r.get("model_size") == size
    }
    notes = []
    for rule in ("train_target", "train_pretrain"):
        have = [a for a in ("dnn", "gnn", "transformer") if (rule, a) in models and rate.get(a)]
        for arch in ("dnn", "gnn", "transformer"):
            if (rule, arch) in models or not have or not rate.get(arch):
                continue
            ref = max(have, key=lambda a: models[(rule, a)].n)
            m = models[(rule, ref)]
            models[(rule, arch)] = sizing.CostModel(
                intercept=m.intercept,
                slope=m.slope * rate[ref] / rate[arch],
                n=0,
                unit=m.unit,
                max_rss_mb=m.max_rss_mb,
                max_wall_s=m.max_wall_s,
            )
            notes.append(f"{rule}/{arch} from {ref} x {rate[ref] / rate[arch]:.2f}")
    return (
        (
            " Not benchmarked in the default run, scaled from another architecture by engine throughput: "
            + ", ".join(notes)
            + "."
        )
        if notes
        else ""
    )


def _train_bench(
    paths: list[Path], default: dict, target: dict, allocator: str = "tuned"
) -> tuple[dict[str, float], float | None, str]:
    """(cost factors target / default, GPU speed-up, a sentence): fast2full.hpc.sizing.model_size_scale
    on the rows of every bench_train.py output in ``paths`` (the first file's rows first)."""
    from fast2full.hpc import sizing

    src = default.get("training", {}).get("model_size", "small")
    dst = target.get("training", {}).get("model_size", "small")
    found = [p for p in paths if p.is_file()]
    if not found:
        names = ", ".join(p.name for p in paths)
        return {}, None, f"No {names}: model-size factor {src} -> {dst} not applied (cost of {src} models)."
    bench: dict = {"throughput": [], "by_shape": []}
    for p in found:
        d = json.loads(p.read_text())
        bench["throughput"] += d.get("throughput", [])
        bench["by_shape"] += d.get("by_shape", [])
        bench.setdefault("max_objects", d.get("max_objects"))
    return sizing.model_size_scale(bench, default, target, measured_allocator=allocator)


if __name__ == "__main__":
    sys.exit(main())
