"""The plan: vocabulary declared once, the training points, every output path from one module."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fast2full import plan
from fast2full.config import load_config


@pytest.fixture(scope="module")
def cfg(repo_root):
    return load_config(repo_root / "config.yaml", base_dir=repo_root)


def test_training_points_count_and_order(cfg):
    tr = cfg["training"]
    pts = plan.training_points(cfg)
    n_targets = sum(len(plan.task_targets(cfg, t)) for t in tr["tasks"])
    n_sources = sum(len(plan.sources(cfg, t)) for t in tr["tasks"])  # qg: + the reduced-input source
    n_expected = (
        len(tr["archs"]) * len(tr["seeds"]) * (n_sources + n_targets * (1 + len(tr["modes"]) * len(tr["sizes"])))
    )
    assert len(pts) == len(set(pts)) == n_expected
    assert pts[0] == plan.Point(
        tr["tasks"][0], tr["archs"][0], cfg["domains"]["source"], "pretrain", plan.FULL_SIZE, tr["seeds"][0]
    )
    assert {p.mode for p in pts} <= set(plan.MODES)
    skipped = {tuple(k.split("/")) for k in tr.get("skip", {})}
    assert not any((p.task, p.target) in skipped for p in pts)


def test_reduced_input_source_for_the_fullsim_qg_comparison(cfg):
    """qg on atlas_fullsim (no constituents in PHYSLITE) gets a second source model pretrained on the
    same reduced inputs; every other (task, target) keeps the one source."""
    src = cfg["domains"]["source"]
    red = plan.reduced_source(src, "qg")
    assert red == f"{src}_jet" and plan.reduced_source(src, "met") is None
    assert plan.sources(cfg, "qg") == [src, red] and plan.sources(cfg, "met") == [src]
    assert plan.source_for(src, "qg", plan.FULLSIM) == red
    assert [plan.source_for(src, t, g) for t, g in [("qg", "cms_like"), ("met", plan.FULLSIM)]] == [src, src]
    assert plan.reduced_tensor_domains(cfg, "qg") == [red, plan.FULLSIM]
    assert plan.reduced_tensor_domains(cfg, "met") == [] and plan.object_domain(cfg, red) == src
    pts = plan.training_points(cfg)
    pre = [p for p in pts if p.mode == "pretrain" and p.task == "qg"]
    archs, seeds = cfg["training"]["archs"], cfg["training"]["seeds"]
    assert {(p.arch, p.target) for p in pre} == {(a, d) for a in archs for d in (src, red)}
    assert len(pre) == 2 * len(archs) * len(seeds)
    # without atlas_fullsim among the qg targets there is no reduced source (nothing extra to run)
    other = {**cfg, "training": {**cfg["training"], "targets": {**cfg["training"]["targets"], "qg": ["cms_like"]}}}
    assert plan.sources(other, "qg") == [src] and plan.reduced_tensor_domains(other, "qg") == []
    assert len(plan.training_points(other)) < len(pts)


def test_paths_layout():
    P = plan.PATHS
    assert P.gen("ttbar", 0) == "results/gen/ttbar/0.parquet"
    assert P.sim("{detector}", "{process}", "{chunk}") == "results/sim/{detector}/{process}/{chunk}.root"
    p = plan.Point("qg", "gnn", "cms_like", "finetune", 20, 1)
    assert P.metrics(p) == "results/train/qg/gnn/cms_like/finetune/n20/seed1/metrics.json"
    assert P.log("tensorize", "qg", "cms_like") == "results/logs/tensorize/qg/cms_like.log"
    assert plan.parse_tensor_path(P.tensor("met", "atlas_fullsim", "val")) == ("met", "atlas_fullsim", "val")
    with pytest.raises(ValueError, match="not a tensor file"):
        plan.parse_tensor_path("results/tensors/met/atlas_fullsim/norm.json")


def test_cli_choices_and_aggregate_use_the_plan():
    from fast2full.aggregate import curves, metrics
    from fast2full.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    for cmd, dest, values in [
        ("train", "task", plan.TASKS),
        ("train", "arch", plan.ARCHS),
        ("train", "mode", plan.MODES),
        ("tensorize", "task", plan.TASKS),
        ("plot-features", "task", plan.TASKS),
    ]:
        action = next(a for a in sub[cmd]._actions if a.dest == dest)
        assert tuple(action.choices) == tuple(values), (cmd, dest)
    assert curves.task_targets is plan.task_targets and curves.expected_combinations is plan.expected_combinations
    assert metrics.MODES_ALL == plan.MODES and metrics.FULL == plan.FULL_SIZE


def test_schema_vocabulary_is_the_plan_vocabulary():
    from fast2full.config import load_schema

    tr = load_schema()["properties"]["training"]["properties"]
    assert tuple(tr["tasks"]["items"]["enum"]) == plan.TASKS
    assert tuple(tr["archs"]["items"]["enum"]) == plan.ARCHS
    assert tuple(tr["modes"]["items"]["enum"]) == plan.CONFIG_MODES


def test_snakefile_requests_exactly_the_plan(repo_root, cfg):
    """The aggregate job's inputs (a dry run of the real Snakefile) are the plan's metrics.json files,
    then the loss-history directories of its trained points."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1", "results/summary/metrics.csv"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    block = res.stdout[res.stdout.index("rule aggregate_results:") :]
    inputs = re.search(r"^\s+input: (.*)$", block, flags=re.M).group(1).split(", ")
    points = plan.training_points(cfg)
    logs = [f"{plan.PATHS.point_dir(p)}/logs" for p in points if p.mode != "zeroshot"]
    assert inputs == [plan.PATHS.metrics(p) for p in points] + logs
    assert yaml.safe_load((repo_root / "config.yaml").read_text())["training"]["tasks"] == cfg["training"]["tasks"]


def test_train_writes_exactly_the_declared_files(tmp_path):
    """Every file a training job writes is one of its rule's outputs (plan.seed_files) or lies under
    one of its declared directories (plan.seed_dirs), rewritten whole by a rerun."""
    from fast2full.models.synthetic import write_synthetic_tensors
    from fast2full.train import JobSpec, TrainSettings, run_job

    src, tgt = "atlas_like", "cms_like"
    write_synthetic_tensors(
        tmp_path / "t", "sigbkg", {src: 0.0, tgt: 0.2}, sizes={"train": 120, "val": 60, "test": 60}, max_objects=4
    )
    lrs = [0.001, 0.003]
    st = TrainSettings(
        learning_rates=lrs,
        min_steps=2,
        max_steps=4,
        pretrain_min_steps=2,
        pretrain_max_steps=4,
        val_every_steps=2,
        patience=1,
        batch_size=32,
        model_size="tiny",
        source=src,
    )

    def written(d, dirs):
        """Files written outside the declared directories ``dirs``, and the files inside each."""
        files = [str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()]
        inside = {x: sorted(f for f in files if f.startswith(f"{x}/")) for x in dirs}
        return sorted(f for f in files if not any(f.startswith(f"{x}/") for x in dirs)), inside

    cases = [
        ("pretrain", src, "all", None),
        ("scratch", tgt, 20, None),
        ("zeroshot", tgt, 0, "pretrain"),
        ("finetune", tgt, 20, "pretrain"),
    ]
    for mode, target, size, pre in cases:
        out = tmp_path / mode
        run_job(
            JobSpec(
                "sigbkg",
                "dnn",
                target,
                mode,
                size,
                [0],
                tmp_path / "t",
                out,
                pretrained_dir=tmp_path / pre if pre else None,
            ),
            st,
        )
        expected = sorted(f"seed0/{f}" for f in plan.seed_files(mode, lrs, pretrain=mode == "pretrain"))
        dirs = [f"seed0/{x}" for x in plan.seed_dirs(mode)]
        outside, inside = written(out, dirs)
        assert outside == expected, mode
        # the declared logs/ directory holds one loss history per learning rate of the grid
        assert inside == {x: [f"{x}/lr{lr:g}/metrics.csv" for lr in lrs] for x in dirs}, mode
        assert (mode == "zeroshot") == (dirs == []), mode
    # a rerun with another learning-rate grid leaves no history of the old grid behind
    job = JobSpec("sigbkg", "dnn", tgt, "scratch", 20, [0], tmp_path / "t", tmp_path / "scratch")
    run_job(job, dataclasses.replace(st, learning_rates=[0.01]))
    assert written(tmp_path / "scratch", ["seed0/logs"])[1] == {"seed0/logs": ["seed0/logs/lr0.01/metrics.csv"]}


def test_vocabulary_is_declared_once():
    """Tasks, architectures, modes and splits are spelled out in fast2full.plan only; the stages
    import them (so a new task or mode cannot be forgotten in one of them)."""
    import fast2full
    from fast2full import tensorize, train
    from fast2full.models import backbones

    src = Path(fast2full.__file__).parent
    spelled = re.compile(
        r"""\(\s*["'](sigbkg|dnn|train|pretrain|finetune)["']\s*,\s*["'](qg|gnn|val|zeroshot|freeze)["']"""
    )
    offenders = [
        str(p.relative_to(src)) for p in src.rglob("*.py") if p.name != "plan.py" and spelled.search(p.read_text())
    ]
    assert offenders == []
    assert train.TASKS is plan.TASKS and set(plan.CLASSIFICATION_TASKS + plan.REGRESSION_TASKS) == set(plan.TASKS)
    assert backbones.ARCHS is plan.ARCHS and train.MODES is plan.MODES and tensorize.SPLITS is plan.SPLITS
