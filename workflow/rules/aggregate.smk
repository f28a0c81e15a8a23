rule aggregate_results:
    """Metrics table, learning curves, data-reduction factors and figures."""
    input:
        metrics=all_metrics(),
    output:
        table=report(f"{RESULTS}/summary/metrics.csv", category="Tables"),
        parquet=f"{RESULTS}/summary/metrics.parquet",
        factors=report(f"{RESULTS}/summary/reduction_factors.csv", category="Tables"),
        markdown=f"{RESULTS}/summary/summary.md",
        figures=report(
            directory(f"{RESULTS}/figures/curves"),
            patterns=["{name}.png"],
            category="Learning curves",
        ),
    params:
        config=CONFIGFILE,
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{BENCH}/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/train.yaml"
    shell:
        "fast2full --log {log} aggregate --config {params.config} --summary-dir {RESULTS}/summary"
        " --figure-dir {output.figures} --metrics {input.metrics}"


def rules_targets_aggregate():
    out = [
        f"{RESULTS}/summary/metrics.csv",
        f"{RESULTS}/summary/reduction_factors.csv",
        f"{RESULTS}/figures/curves",
    ]
    out += [f"{RESULTS}/figures/features_{t}.pdf" for t in TR["tasks"]]
    out += [f"{RESULTS}/models/{t}_{a}_seed{s}" for t in TR["tasks"] for a in TR["archs"] for s in TR["seeds"]]
    return out
