rule aggregate_results:
    """Metrics table, learning curves, data-reduction factors and figures."""
    input:
        metrics=all_metrics(),
    output:
        table=report(f"{RESULTS}/summary/metrics.csv", caption="../report/metrics_table.rst", category="Tables"),
        parquet=f"{RESULTS}/summary/metrics.parquet",
        curves=report(f"{RESULTS}/summary/curves.csv", caption="../report/curves_table.rst", category="Tables"),
        factors=report(
            f"{RESULTS}/summary/reduction_factors.csv",
            caption="../report/reduction_factors.rst",
            category="Tables",
        ),
        markdown=report(f"{RESULTS}/summary/summary.md", caption="../report/summary.rst", category="Tables"),
        figures=report(
            directory(f"{RESULTS}/figures/curves"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Learning curves",
        ),
    params:
        config=stage_config("aggregate"),
        summary_dir=lambda w, output: os.path.dirname(output.table),
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
        "fast2full --log {log} aggregate --config-json {params.config:q} --summary-dir {params.summary_dir}"
        " --figure-dir {output.figures} --metrics {input.metrics}"
