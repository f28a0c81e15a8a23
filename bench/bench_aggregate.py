"""Benchmark of the aggregation stage, as ratios against baselines measured in the same run.

1. Bootstrap of one matched-size data-reduction factor (``reduction.matched_size_factor``: isotonic
   fits and curve inversions vectorised over replicates) against the plain way: a Python loop over
   replicates, each fitting scikit-learn's ``IsotonicRegression`` and inverting it.  Both use the same
   resampled means, and the benchmark checks that they give the same factors.  Ratio = loop time /
   vectorised time (speed-up).
2. The table part of ``fast2full aggregate`` (read every metrics.json, build the metrics table, all
   factors with bootstrap intervals) on a synthetic grid of the default config's shape, against only
   parsing the same JSON files (ratio = table time / JSON-read time: the overhead above I/O).
   Figures are timed separately per figure set (matplotlib-bound; no baseline).

Run: ``python bench/bench_aggregate.py [--bootstrap B] [--repeats R]``; prints a table and writes
``results/bench/aggregate.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from _timing import best_of, write_results  # noqa: E402
from sklearn.isotonic import IsotonicRegression

from fast2full.aggregate import AggregateSettings, load_metrics, make_figures, reduction_tables, testboot
from fast2full.reduction import Curve, Resample, first_crossing, isotonic_fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_aggregate import write_metrics  # noqa: E402  (the synthetic grid writer of the tests)


def bootstrap_vectorised(curve: Curve, ft_means: np.ndarray, means: np.ndarray) -> np.ndarray:
    fits = isotonic_fit(means, weights=curve.n_seeds, increasing=True)
    n, _ = first_crossing(np.log(curve.sizes), fits, ft_means, True)
    return n


def bootstrap_loop(curve: Curve, ft_means: np.ndarray, means: np.ndarray) -> np.ndarray:
    log_n = np.log(curve.sizes)
    out = np.empty(len(means))
    for b, m in enumerate(means):  # the plain way: one sklearn fit and one inversion per replicate
        fit = IsotonicRegression().fit(log_n, m, sample_weight=curve.n_seeds).predict(log_n)
        i = np.flatnonzero(fit >= ft_means[b])
        if i.size == 0:
            out[b] = curve.sizes[-1]
        elif i[0] == 0:
            out[b] = curve.sizes[0]
        else:
            k = i[0]
            t = (ft_means[b] - fit[k - 1]) / (fit[k] - fit[k - 1])
            out[b] = np.exp(log_n[k - 1] + t * (log_n[k] - log_n[k - 1]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=2000, help="replicates for part 1")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []

    # 1. one factor's bootstrap
    rng = np.random.default_rng(1)
    sizes = np.geomspace(30, 30000, 8)
    curve = Curve.from_lists(sizes, [0.55 + 0.03 * np.log(n) + 0.004 * rng.normal(size=5) for n in sizes])
    means = curve.boot_means(Resample.draw(rng, args.bootstrap, 5))
    ft_means = 0.55 + 0.03 * np.log(600.0) + 0.002 * rng.normal(size=args.bootstrap)
    vec = bootstrap_vectorised(curve, ft_means, means)
    loop = bootstrap_loop(curve, ft_means, means)
    if not np.allclose(vec, loop, rtol=1e-9):
        raise SystemExit("vectorised and loop bootstrap disagree")
    t_vec = best_of(lambda: bootstrap_vectorised(curve, ft_means, means), args.repeats)
    t_loop = best_of(lambda: bootstrap_loop(curve, ft_means, means), args.repeats)
    rows.append(
        {
            "what": f"factor bootstrap, {args.bootstrap} replicates x {len(sizes)} sizes",
            "time_s": t_vec,
            "baseline": "sklearn loop",
            "baseline_s": t_loop,
            "ratio": t_loop / t_vec,
            "ratio_meaning": "speed-up",
        }
    )

    # 1b. one model's AUC on every test-event replicate: one sort + cumulative sums vs sklearn per replicate
    from sklearn.metrics import roc_auc_score

    n_ev, n_b = 2000, 200
    y = rng.random(n_ev) > 0.5
    score = rng.normal(size=n_ev) + y
    counts = testboot.draw_counts(rng, n_b, n_ev)
    if not np.allclose(
        testboot.auc_replicates(y, score, counts),
        [roc_auc_score(y, score, sample_weight=c) for c in counts],
        rtol=1e-10,
    ):
        raise SystemExit("vectorised and sklearn test-event AUCs disagree")
    t_vec = best_of(lambda: testboot.auc_replicates(y, score, counts), args.repeats)
    t_loop = best_of(lambda: [roc_auc_score(y, score, sample_weight=c) for c in counts], args.repeats)
    rows.append(
        {
            "what": f"test-event AUC bootstrap, {n_b} replicates x {n_ev} events",
            "time_s": t_vec,
            "baseline": "sklearn per replicate",
            "baseline_s": t_loop,
            "ratio": t_loop / t_vec,
            "ratio_meaning": "speed-up",
        }
    )

    # 2. the table part of the stage on the default grid shape
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    settings = AggregateSettings.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_metrics(Path(tmp) / "train", config)
        t_json = best_of(lambda: [json.loads(Path(p).read_text()) for p in paths], args.repeats)

        def tables():
            table, _ = load_metrics(paths)
            return reduction_tables(table, config, settings)

        t_tab = best_of(tables, args.repeats)
        rows.append(
            {
                "what": f"metrics table + factors ({len(paths)} files, bootstrap {settings.bootstrap})",
                "time_s": t_tab,
                "baseline": "json.loads only",
                "baseline_s": t_json,
                "ratio": t_tab / t_json,
                "ratio_meaning": "time / read time",
            }
        )
        table, rocs = load_metrics(paths)
        one = {
            **config,
            "training": {**config["training"], "tasks": ["qg"], "archs": ["dnn"], "targets": {"qg": ["cms_like"]}},
        }
        figdir = Path(tmp) / "figs"
        figdir.mkdir()
        tabs = reduction_tables(table, one, settings)
        t_fig = best_of(lambda: make_figures(tabs, table, rocs, one, settings, figdir), 1)
        rows.append(
            {
                "what": "figures of one (task, arch, target) + its mode comparison",
                "time_s": t_fig,
                "baseline": "",
                "baseline_s": float("nan"),
                "ratio": float("nan"),
                "ratio_meaning": "",
            }
        )

    print(f"{'what':<62} {'time [s]':>9} {'baseline':>16} {'base [s]':>9} {'ratio':>8}")
    for r in rows:
        print(f"{r['what']:<62} {r['time_s']:>9.4f} {r['baseline']:>16} {r['baseline_s']:>9.4f} {r['ratio']:>8.2f}")
    write_results("aggregate", rows, ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
