# Report layout: one category per task, one subcategory per figure kind, one caption per kind
# (workflow/report/figures.rst switches on the kind); PNGs only (the PDFs stay in results/).
REPORT_TASKS = {"sigbkg": "ttbar vs. background (sigbkg)", "qg": "quark vs. gluon (qg)", "met": "MET regression (met)"}
REPORT_KINDS = {
    "curve": "Learning curves (figs. 4-7)",
    "curves": "Learning curves (figs. 4-7)",
    "modes": "Mode comparison (fig. 8)",
    "roc": "ROC curves",
    "compute": "Compute-matched curves",
    "loss": "Training losses",
}


rule aggregate_results:
    """Metrics table, learning curves, data-reduction factors and figures."""
    input:
        metrics=all_metrics(),
        loss_logs=all_loss_logs(),
    output:
        table=report(
            PATHS.summary("metrics.csv"),
            caption="../report/metrics_table.rst",
            category="Summary",
            subcategory="Tables",
        ),
        parquet=PATHS.summary("metrics.parquet"),
        curves=report(
            PATHS.summary("curves.csv"), caption="../report/curves_table.rst", category="Summary", subcategory="Tables"
        ),
        factors=report(
            PATHS.summary("reduction_factors.csv"),
            caption="../report/reduction_factors.rst",
            category="Summary",
            subcategory="Data-reduction factors",
        ),
        binned=PATHS.summary("binned.csv"),
        binned_json=PATHS.summary("binned.json"),
        markdown=report(
            PATHS.summary("summary.md"),
            caption="../report/summary.rst",
            category="Summary",
            subcategory="Data-reduction factors",
        ),
        figures=report(
            directory(PATHS.figure("curves")),
            patterns=["{kind,curve|curves|modes|roc|compute|loss}_{task,sigbkg|qg|met}{rest,(_[A-Za-z0-9_]+)?}.png"],
            caption="../report/figures.rst",
            category=lambda w: REPORT_TASKS[w.task],
            subcategory=lambda w: REPORT_KINDS[w.kind],
        ),
    log:
        PATHS.log("aggregate"),
    benchmark:
        PATHS.bench("aggregate")
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=stage_config("aggregate"),
        summary_dir=lambda w, output: os.path.dirname(output.table),
    shell:
        "python -m fast2full --log {log} aggregate --config-json {params.config:q} --summary-dir {params.summary_dir}"
        " --figure-dir {output.figures} --metrics {input.metrics}"
