"""``summary.md``: provenance, the factor table with intervals, the definitions, every curve point,
what was skipped and why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fast2full import definitions, plan
from fast2full.aggregate import binned as binned_eval
from fast2full.aggregate.curves import Tables, _fmt
from fast2full.aggregate.metrics import AggregateSettings, size_tokens
from fast2full.provenance import markdown as provenance_line


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def summary_markdown(
    tables: Tables,
    table: pd.DataFrame,
    config: dict,
    settings: AggregateSettings,
    provenance: dict,
    skipped_panels: Sequence[tuple[str, str]] = (),
    binned: pd.DataFrame | None = None,
) -> str:
    factors, points = tables.factors, tables.points
    tokens = size_tokens(config)
    out = [
        "# fast2full results summary",
        "",
        f"Provenance: {provenance_line(provenance)}.",
        "",
        f"{len(table)} training results (metrics.json) aggregated; "
        f"{len(factors)} configured task × arch × target × mode combinations; "
        f"seeds {', '.join(str(s) for s in config['training']['seeds'])}.",
        "",
    ]
    commits = sorted(set(c for c in table.get("git_commit", pd.Series(dtype=str)) if c))
    if commits:
        out += [f"Training results made at commit(s): {', '.join('`' + c + '`' for c in commits)}.", ""]
    out += [
        "## Uncertainty",
        "",
        f"Intervals: central {settings.confidence:.1%} of {settings.bootstrap} bootstrap replicates.",
        "",
    ]
    out += [f"- `{t}/{g}`: {b.how}" for (t, g), b in tables.boots.items()] + [""]
    out += ["## Data-reduction factors", ""]
    header = (
        ["task", "arch", "target", "mode", "source model", "zero-shot", "paper factor", "n₉₉"]
        + [f"factor @ n={s}" for s in tokens]
        + ["baseline match"]
    )
    rows = []
    for _, r in factors.iterrows():
        rows.append(
            [
                r["task"],
                r["arch"],
                r["target"],
                r["mode"],
                r["source"],
                _fmt(r["zeroshot"], r["zeroshot_low"], r["zeroshot_high"]),
                r["paper_factor_display"],
                r["paper_n99_display"],
            ]
            + [r[f"factor_n{s}_display"] for s in tokens]
            + [r["baseline_match_display"]]
        )
    out += [md_table(header, rows), ""]
    reduced = sorted(
        {(r.task, r.target, r.source) for r in factors.itertuples() if plan.has_reduced_inputs(r.task, r.target)}
    )
    if reduced:
        out += [
            "Source model: the pretraining the transfer modes start from (scratch: the source of the same "
            "comparison).  Reduced inputs: "
            + "; ".join(
                f"{t}/{g} starts from `{s}`, the source pretrained on the inputs {g} has "
                f"({plan.REDUCED_INPUTS[t]['why']}; its scratch reference uses the same reduced tensors)"
                for t, g, s in reduced
            )
            + ".",
            "",
        ]
    if len(factors):
        bl = factors.drop_duplicates(["task", "target"])[["task", "target", "baseline_name", "baseline_value"]]
        out += [
            "Rule-based baselines: "
            + "; ".join(
                f"{b.task}/{b.target}: {b.baseline_name or 'none'}"
                + (f" = {b.baseline_value:.4g}" if np.isfinite(b.baseline_value) else "")
                for b in bl.itertuples()
            )
            + ".",
            "",
        ]
    out += binned_eval.markdown(binned if binned is not None else binned_eval.summarise(pd.DataFrame()), md_table)
    out += ["## Definitions", "", definitions.summary_section(), ""]
    if len(points):
        out += ["## Learning-curve points (seed mean [bootstrap interval])", ""]

        def _ess(v) -> str:  # effective sample size (sum w)^2 / sum w^2; "-" for metrics without it
            return f"{v:.0f}" if np.isfinite(v) else "-"

        prow = [
            [
                p.task,
                p.arch,
                p.target,
                p.mode,
                p.size,
                f"{p.n_train:.0f}" + (" (full split)" if p.full else " (capped)" if p.capped else ""),
                f"{p.n_unlabelled_mean:.0f}" if p.mode == "dann" and np.isfinite(p.n_unlabelled_mean) else "-",
                _ess(p.ess_train_mean),
                _ess(p.ess_test_mean),
                p.n_seeds,
                _fmt(p.mean, p.band_low, p.band_high),
            ]
            for p in points.itertuples()
        ]
        out += [
            md_table(
                [
                    "task",
                    "arch",
                    "target",
                    "mode",
                    "size",
                    "n_train",
                    "n_unlabelled (DANN)",
                    "ESS train",
                    "ESS test",
                    "seeds",
                    "metric",
                ],
                prow,
            ),
            "",
        ]
    skip = config["training"].get("skip", {}) or {}
    out += ["## Skipped combinations", ""]
    out += [f"- `{k}`: {v}" for k, v in skip.items()] if skip else ["None."]
    out += ["", "## Skipped figure panels", ""]
    out += [f"- `{where}`: {why}" for where, why in skipped_panels] if skipped_panels else ["None."]
    missing = factors[factors["status"] == "missing"] if len(factors) else factors
    out += ["", "## Missing results", ""]
    out += (
        [
            f"- `{r.task}/{r.arch}/{r.target}/{r.mode}`: no metrics.json with a usable metric"
            for r in missing.itertuples()
        ]
        if len(missing)
        else ["None."]
    )
    out.append("")
    return "\n".join(out)
