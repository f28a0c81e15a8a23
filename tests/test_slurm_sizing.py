"""Paper-scale sizing (bench/paper_scale.py): dry-run parsing, benchmark cost models, the table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fast2full.common import InputError
from fast2full.hpc import sizing

ROOT = Path(__file__).resolve().parents[1]
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _config(events: int, chunks: int) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for name, proc in cfg["processes"].items():
        proc["events_per_chunk"] = events
        proc["chunks"] = chunks if name in ("ttbar", "wjets") else 1
    for det in cfg["detectors"].values():  # the dry run works in another --directory: cards by absolute path
        det["card"] = str(ROOT / det["card"])
    return cfg


@pytest.fixture(scope="module")
def dry_listing(tmp_path_factory) -> str:
    """A real dry-run listing through the slurm profile: 2 ttbar + 2 wjets generation chunks."""
    work = tmp_path_factory.mktemp("dry")
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(_config(events=300, chunks=2)))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-p",
            "--profile",
            "slurm",
            "--directory",
            str(work),
            "--configfile",
            str(cfg),
            "--",
            *[f"results/gen/{p}/{c}.parquet" for p in ("ttbar", "wjets") for c in (0, 1)],
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res.stdout + res.stderr


def test_parse_dry_run(dry_listing):
    jobs = sizing.parse_dry_run(dry_listing)
    assert sorted((j.rule, j.wildcards["process"], j.wildcards["chunk"]) for j in jobs) == [
        ("pythia_generate", p, c) for p in ("ttbar", "wjets") for c in ("0", "1")
    ]
    assert {j.group for j in jobs} == {"generate"}
    assert len({j.submission for j in jobs}) == 1  # 4 chunks <= group-components generate
    assert all(j.resources["mem_mb"] == "2000" and j.benchmark.startswith("results/benchmarks/generate/") for j in jobs)


def test_parse_counts_ungrouped_and_local_jobs():
    listing = """
[Wed Nov 25 18:00:00 2026]
rule tensorize_source:
    wildcards: task=qg
    resources: tmpdir=/tmp, mem_mb=16000, runtime=60
Shell command: fast2full tensorize

[Wed Nov 25 18:00:00 2026]
localrule publish_model:
    wildcards: task=qg, arch=dnn
Shell command: fast2full export-model

[Wed Nov 25 18:00:00 2026]
rule all:
    input: a
Shell command: None
"""
    jobs = sizing.parse_dry_run(listing)
    assert [(j.rule, j.submission, j.local) for j in jobs] == [
        ("tensorize_source", 0, False),
        ("publish_model", -1, True),
        ("all", -1, False),
    ]
    assert sizing.count_submissions(jobs) == 1


def test_shared_group_job_counts_once(dry_listing):
    """Two rules in one group job: each rule lists that submission, the total counts it once."""
    jobs = sizing.parse_dry_run(dry_listing)
    for j in jobs[:2]:
        j.rule = "delphes_skim"  # pretend half of the group job is another rule
    est = sizing.estimate(jobs, _config(events=300, chunks=2), {})
    assert sorted(e.submissions for e in est) == [1, 1]
    table = sizing.markdown_table(est, "t", sizing.count_submissions(jobs))
    assert "| **total** | 4 | 1 |" in table


@pytest.mark.parametrize(("paper_events", "expected_factor"), [(300, 1.0), (3000, 10.0), (30000, 100.0)])
def test_cost_model_scales_per_event(dry_listing, tmp_path, paper_events, expected_factor):
    """A measured 3 s per 300-event chunk costs factor x 3 s per chunk of the bigger config."""
    jobs = sizing.parse_dry_run(dry_listing)
    for job in jobs:
        path = tmp_path / job.benchmark
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BENCH_HEADER + "4.0\t0:00:04\t150.5\t900\t80\t90\t0\t0.1\t75\t3.0\n")
    models = sizing.fit_models(jobs, _config(events=300, chunks=2), tmp_path)
    assert models[("pythia_generate", "ttbar")].n == 2
    paper = _config(events=paper_events, chunks=2)
    (est,) = sizing.estimate(jobs, paper, models)
    assert est.jobs == 4 and est.submissions == 1 and est.measured_jobs == 2
    assert est.cpu_h == pytest.approx(4 * 3.0 * expected_factor / 3600)
    assert est.peak_rss_mb == pytest.approx(150.5)
    table = sizing.markdown_table([est], "t")
    assert "| pythia_generate | 4 | 1 |" in table and "**total**" in table


def test_linear_fit_separates_fixed_cost(tmp_path):
    jobs = [
        sizing.DryJob(
            rule="train_point", wildcards={"arch": "dnn", "mode": "scratch", "size": str(n)}, benchmark=f"b{n}.tsv"
        )
        for n in (8, 16, 32)
    ]
    cfg = {
        "processes": {},
        "training": {"max_steps": 10, "min_steps": 2, "seeds": [0], "learning_rates": [1e-3], "batch_size": 64},
    }
    for n in (8, 16, 32):  # cpu = 5 s start-up + 0.1 s per member-sample (10 steps x n rows, no metrics.json)
        (tmp_path / f"b{n}.tsv").write_text(BENCH_HEADER + f"1\t0\t100\t0\t0\t0\t0\t0\t0\t{5 + 0.1 * 10 * n}\n")
    m = sizing.fit_models(jobs, cfg, tmp_path)[("train_target", "dnn")]
    assert m.intercept == pytest.approx(5.0) and m.slope == pytest.approx(0.1)
    # the paper-scale job: bounds at min_steps and at max_steps; zeroshot costs the start-up only
    paper = {
        "processes": {},
        "training": {
            "max_steps": 100,
            "min_steps": 20,
            "seeds": [0, 1],
            "learning_rates": [1e-3],
            "batch_size": 64,
            "modes": ["dann"],
            "sizes": [1000],
        },
    }
    big = [
        sizing.DryJob(rule="train_point", wildcards={"arch": "dnn", "mode": "dann", "size": "1000"}, submission=0),
        sizing.DryJob(rule="train_zeroshot", wildcards={"arch": "dnn"}, submission=1),
    ]
    est = {e.rule: e for e in sizing.estimate(big, paper, {("train_target", "dnn"): m})}
    assert est["train_point"].cpu_h * 3600 == pytest.approx(5 + 0.1 * 2 * 100 * 64 * sizing.DANN_STEP_FACTOR)
    assert est["train_point"].cpu_h_min * 3600 == pytest.approx(5 + 0.1 * 2 * 20 * 64 * sizing.DANN_STEP_FACTOR)
    assert est["train_zeroshot"].cpu_h * 3600 == pytest.approx(5.0)
    assert " – " in sizing.markdown_table(list(est.values()), "t")


def test_wall_time_schedules_jobs_on_the_cores():
    assert sizing.makespan_s([3, 3, 2, 2, 2], 2) == pytest.approx(7)  # LPT: 3+2+2 | 3+2
    assert sizing.makespan_s([10] + [1] * 20, 32) == pytest.approx(10)
    e = sizing.RuleEstimate("train_point", 3, 3, False, 1, 0, 0, 0, 0, 0, 0, 0, "", True, job_cpu_s=[3600] * 64)
    g = sizing.RuleEstimate("pythia_generate", 1, 1, False, 1, 0, 0, 0, 0, 0, 0, 0, "", False, job_cpu_s=[1800])
    assert sizing.wall_time_h([e, g], 32) == pytest.approx(2.5)


@pytest.mark.parametrize("content", ["", "a\tb\n1\t2\n", "s\tmax_rss\n"])
def test_bad_benchmark_file_is_named(tmp_path, content):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    with pytest.raises(InputError, match="bad.tsv"):
        sizing.read_benchmark(bad)


def test_estimate_without_benchmarks_says_so():
    job = sizing.DryJob(rule="physlite_skim", resources={"mem_mb": "4000", "runtime": "60"}, submission=0)
    (est,) = sizing.estimate([job], {"processes": {}}, {})
    assert math.isnan(est.cpu_h) and "no benchmark" in sizing.markdown_table([est], "t")


def test_replace_marked_is_idempotent():
    doc = "# HPC\n\nintro\n"
    once = sizing.replace_marked(doc, "<!-- b -->", "<!-- e -->", "table 1\n")
    twice = sizing.replace_marked(once, "<!-- b -->", "<!-- e -->", "table 2\n")
    assert once.startswith(doc.rstrip()) and "table 1" in once
    assert twice == once.replace("table 1", "table 2")


def test_step_model_fits_the_measured_steps_and_scales_the_pool(tmp_path):
    """best_step = 3 n^0.5 in the measured metrics is recovered; the expected steps add the target
    config's patience x check interval (which grows with the validation subset) within
    [min_steps, max_steps]; the full split scales with the events that feed the task."""
    measured = {"processes": {"ttbar": {"events_per_chunk": 100, "chunks": 2}, "minbias": {"role": "pileup"}}}
    for n in (20, 200, 2000):
        size = "all" if n == 2000 else n
        d = tmp_path / "results" / "train" / "met" / "dnn" / "cms_like" / "scratch" / f"n{size}" / "seed0"
        d.mkdir(parents=True)
        grid = [{"lr": 1e-3, "best_step": 3 * n**0.5, "steps": 99}]
        (d / "metrics.json").write_text(
            json.dumps(
                {"task": "met", "mode": "scratch", "target": "cms_like", "size": size, "n_train": n, "grid": grid}
            )
        )
    model = sizing.fit_step_model(tmp_path, measured)
    a, b, k = model.coef["scratch"]
    assert (a, b, k) == (pytest.approx(3, rel=0.02), pytest.approx(0.5, abs=0.01), 3)
    tr = sizing.train_settings(
        {"training": {"min_steps": 100, "max_steps": 5000, "val_every_steps": 10, "patience": 5, "batch_size": 64}}
    )
    assert model.steps("scratch", 100, 50, tr) == 100  # 30 + 5 x 10 < min_steps
    assert model.steps("scratch", 40_000, 6_400, tr) == pytest.approx(600 + 5 * 100)  # interval 6400 / 64
    assert model.steps("scratch", 1e8, 1e6, tr) == 5000  # the cap
    paper = {"processes": {"ttbar": {"events_per_chunk": 1000, "chunks": 4}}, "training": {"sizes": [100, 300]}}
    assert sizing.pool_rows(model, paper, "met", "cms_like") == pytest.approx(2000 * 4000 / 200)
    assert sizing.pool_rows(model, paper, "met", "atlas_fullsim") == 300  # no scaling: the largest size
    assert sizing.fit_step_model(tmp_path / "empty", measured) is None


def _shape_row(arch: str, size: str, task: str, shape: tuple[int, int], rate: float) -> dict:
    return {
        "device": "cpu",
        "arch": arch,
        "model_size": size,
        "task": task,
        "max_objects": shape[0],
        "n_features": shape[1],
        "member_samples_per_s": rate,
    }


def test_model_size_scale_uses_each_tasks_input_shape():
    """The factor a training job is costed with: per arch and task, the rate at the measured run's model
    size and input shape over the rate at the target's (bench_train.py --shapes-from rows); an arch or
    task without such rows falls back to the fixed-shape model-size ratio, then to 1."""
    default = {"training": {"model_size": "tiny", "tasks": ["qg", "met"]}, "tensors": {"tasks": {}}}
    default["tensors"]["tasks"] = {"qg": {"max_constituents": 12}, "met": {"max_objects": 12, "max_candidates": 12}}
    target = {"training": {"model_size": "base", "tasks": ["qg", "met"]}, "tensors": {"tasks": {}}}
    target["tensors"]["tasks"] = {"qg": {"max_constituents": 32}, "met": {"max_objects": 16, "max_candidates": 48}}
    assert sizing.input_shape(default, "qg")[0] == 13 and sizing.input_shape(target, "met")[0] == 64
    n_qg, n_met = sizing.input_shape(target, "qg")[1], sizing.input_shape(target, "met")[1]
    bench = {
        "by_shape": [
            _shape_row("gnn", "tiny", "qg", (13, n_qg), 30_000.0),
            _shape_row("gnn", "base", "qg", (33, n_qg), 200.0),
            _shape_row("gnn", "tiny", "met", (24, n_met), 18_000.0),
            _shape_row("gnn", "base", "met", (64, n_met), 72.0),
            _shape_row("gnn", "base", "met", (24, n_met), 900.0),  # another shape: not used
        ],
        "throughput": [
            {"device": "cpu", "arch": a, "model_size": s, "ensemble10_member_samples_per_s": r}
            for a, s, r in (
                ("gnn", "tiny", 20_000.0),
                ("gnn", "base", 2_000.0),
                ("dnn", "tiny", 1e5),
                ("dnn", "base", 5e4),
            )
        ],
    }
    scale, gpu, note = sizing.model_size_scale(bench, default, target)
    assert scale["gnn/qg"] == pytest.approx(150.0) and scale["gnn/met"] == pytest.approx(250.0)
    assert scale["gnn"] == pytest.approx(10.0) and scale["dnn"] == pytest.approx(2.0) and "dnn/qg" not in scale
    assert gpu is None and "gnn/met 2.5e+02x" in note and "No shape rows for dnn/met, dnn/qg" in note
    job = {
        (t, a): sizing.DryJob(rule="train_point", wildcards={"task": t, "arch": a})
        for t in ("qg", "met")
        for a in ("gnn", "dnn", "transformer")
    }
    assert sizing._train_scale(scale, job[("met", "gnn")]) == pytest.approx(250.0)
    assert sizing._train_scale(scale, job[("qg", "dnn")]) == pytest.approx(2.0)  # no shape rows: fixed-shape ratio
    assert sizing._train_scale(scale, job[("qg", "transformer")]) == 1.0  # nothing measured
    # a measured run made with glibc's allocator as it is: the A/B rows' default rate at its shapes
    ab = dict(_shape_row("gnn", "tiny", "met", (24, n_met), 0.0), tuned_over_default=2.0)
    ab |= {"default_member_samples_per_cpu_s": 9_000.0, "tuned_member_samples_per_cpu_s": 18_000.0}
    bench_ab = {"by_shape": [ab, *bench["by_shape"]]}
    assert sizing.model_size_scale(bench_ab, default, target)[0]["gnn/met"] == pytest.approx(250.0)
    scale_d, _, note_d = sizing.model_size_scale(bench_ab, default, target, measured_allocator="default")
    assert scale_d["gnn/met"] == pytest.approx(125.0) and "measured run's allocator: default" in note_d
    assert "gnn/qg" not in scale_d  # no default-allocator row at the measured qg shape
    # without shape rows the note says the fixed-shape factor ignores the tasks' shapes
    _, _, note = sizing.model_size_scale({"throughput": bench["throughput"], "max_objects": 16}, default, target)
    assert "synthetic 16-slot inputs, not the tasks' own shapes" in note
