"""Training jobs on synthetic separable tensors: learning, modes, fairness rules, determinism, CLI."""

import dataclasses
import json
from pathlib import Path

import lightning  # noqa: E402, F401  (a hard dependency: a broken import fails the run)
import numpy as np
import pytest

from fast2full import tensorio  # noqa: E402
from fast2full.cli import main  # noqa: E402
from fast2full.common import Fast2FullError, InputError  # noqa: E402
from fast2full.models import load_pretrained  # noqa: E402
from fast2full.models.synthetic import write_synthetic_tensors  # noqa: E402
from fast2full.records import ModelCard, PointMetrics  # noqa: E402
from fast2full.train import JobSpec, TrainSettings, run_job, val_subset_size  # noqa: E402

SOURCE, TARGET = "atlas_like", "cms_like"
REQUIRED_KEYS = {
    "task",
    "arch",
    "target",
    "mode",
    "size",
    "n_train",
    "seed",
    "metric",
    "test_auc",
    "roc",
    "test_loss",
    "val_loss",
    "met_resolution",
    "baseline",
    "lr",
    "epochs",
    "steps",
    "steps_total",
    "n_params",
    "wall_time_s",
    "device",
    "pretrained_from",
    "model_size",
}
TIMING_KEYS = {"wall_time_s", "startup_s"}


def settings(**kw) -> TrainSettings:
    base = dict(
        learning_rates=[3e-3],
        min_steps=10,
        max_steps=40,
        pretrain_min_steps=20,
        pretrain_max_steps=60,
        val_every_steps=5,
        patience=2,
        batch_size=64,
        model_size="tiny",
        source=SOURCE,
    )
    return TrainSettings(**(base | kw))


@pytest.fixture(scope="module")
def tensors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tensors")
    for task in ("sigbkg", "met"):
        write_synthetic_tensors(
            root, task, {SOURCE: 0.0, TARGET: 0.2}, sizes={"train": 300, "val": 100, "test": 200}, max_objects=6
        )
    return root


def _job(tensors, outdir, task="sigbkg", arch="dnn", mode="pretrain", size="all", pretrained=None, seeds=(0,)):
    return JobSpec(
        task=task,
        arch=arch,
        target=SOURCE if mode == "pretrain" else TARGET,
        mode=mode,
        size=size,
        seeds=list(seeds),
        tensors=tensors,
        outdir=Path(outdir),
        pretrained_dir=pretrained,
    )


@pytest.fixture(scope="module")
def pretrained(tensors, tmp_path_factory) -> dict[str, Path]:
    out = {}
    for task in ("sigbkg", "met"):
        d = tmp_path_factory.mktemp(f"pre_{task}")
        run_job(_job(tensors, d, task=task), settings())
        out[task] = d
    return out


def _untrained_val_loss(tensors, task, arch):
    import lightning.pytorch as pl

    from fast2full.models import TaskModule, build_backbone
    from fast2full.train import val_loss

    val = tensorio.load(tensors / task / SOURCE / "val.parquet")
    pl.seed_everything(0, verbose=False)
    m = TaskModule(build_backbone(arch, val.meta["n_features"], val.meta["max_objects"], "tiny"), task)
    return val_loss(m, val)


@pytest.mark.parametrize("task,arch", [("sigbkg", "dnn"), ("sigbkg", "gnn"), ("sigbkg", "transformer"), ("met", "dnn")])
def test_pretrain_lowers_loss_and_beats_chance(tensors, tmp_path, task, arch):
    (m,) = run_job(_job(tensors, tmp_path, task=task, arch=arch), settings())
    assert REQUIRED_KEYS <= set(m)
    assert m["val_loss"] < _untrained_val_loss(tensors, task, arch)
    assert (tmp_path / "seed0" / "model.ckpt").is_file()
    on_disk = json.loads((tmp_path / "seed0" / "metrics.json").read_text())
    assert on_disk["n_train"] == 300 and on_disk["size"] == "all" and on_disk["mode"] == "pretrain"
    # the file is the typed record, every field in its declared order, and reads back to the same object
    assert list(on_disk) == [f.name for f in dataclasses.fields(PointMetrics)]
    assert PointMetrics.from_json(tmp_path / "seed0" / "metrics.json").to_dict() == on_disk == m
    card = load_pretrained(tmp_path / "seed0" / "model.ckpt").model_card
    assert isinstance(card, ModelCard) and (card.task, card.arch, card.seed, card.n_train) == (task, arch, 0, 300)
    assert (tmp_path / "seed0" / "grid.csv").is_file()
    assert list((tmp_path / "seed0" / "logs").glob("*/metrics.csv"))
    if task == "sigbkg":
        assert m["metric"] == "auc" and m["test_auc"] > 0.75 and m["met_resolution"] is None
        assert 2 <= len(m["roc"]["fpr"]) <= 200 and m["roc"]["fpr"][0] == 0.0 and m["roc"]["tpr"][-1] == 1.0
        assert m["baseline"]["test_auc"] is not None
    else:
        test = tensorio.load(tensors / "met" / SOURCE / "test.parquet")
        zero_pred = float(np.sqrt(np.mean(test.y**2, axis=0)).mean())
        assert m["metric"] == "met_resolution" and m["test_auc"] is None and m["roc"] is None
        assert m["met_resolution"] < 0.8 * zero_pred
        assert m["baseline"]["met_resolution"] > 0


@pytest.mark.parametrize("mode", ["finetune", "freeze", "dann"])
def test_finetune_modes_start_from_pretrained_weights(tensors, pretrained, tmp_path, mode):
    """With a vanishing learning rate every fine-tune mode reproduces the zero-shot model; scratch does not."""
    tiny_lr = settings(learning_rates=[1e-12], max_steps=12)
    (zs,) = run_job(_job(tensors, tmp_path / "zs", mode="zeroshot", size=0, pretrained=pretrained["sigbkg"]), tiny_lr)
    assert zs["n_train"] == 0 and zs["lr"] is None and zs["steps"] == 0 and zs["size"] == 0
    (ft,) = run_job(_job(tensors, tmp_path / mode, mode=mode, size=50, pretrained=pretrained["sigbkg"]), tiny_lr)
    assert ft["pretrained_from"].endswith("seed0/model.ckpt") and ft["steps"] > 0
    assert ft["test_auc"] == pytest.approx(zs["test_auc"], abs=1e-6)
    (sc,) = run_job(_job(tensors, tmp_path / "sc", mode="scratch", size=50), tiny_lr)
    assert sc["pretrained_from"] is None
    assert abs(sc["test_auc"] - zs["test_auc"]) > 1e-3


def test_freeze_job_leaves_backbone_unchanged(tensors, pretrained):
    import torch

    from fast2full.models.ensemble import Budget, Data, Member, train_members

    ckpt = pretrained["sigbkg"] / "seed0" / "model.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    train = tensorio.load(tensors / "sigbkg" / TARGET / "train.parquet")
    val = tensorio.load(tensors / "sigbkg" / TARGET / "val.parquet")
    (res,) = train_members(
        [Member(seed=0, lr=1e-2, state=state, train_rows=np.arange(100), val_rows=np.arange(50))],
        Data.from_set(train),
        Data.from_set(val),
        arch="dnn",
        task="sigbkg",
        n_features=train.x.shape[-1],
        max_objects=train.x.shape[-2],
        model_size="tiny",
        budget=Budget(min_steps=10, max_steps=20, val_every=2, patience=20),
        batch_size=32,
        freeze_backbone=True,
    )
    assert res.steps == 20 and res.best_step >= 2
    for k, v in state.items():
        if k.startswith("backbone."):
            torch.testing.assert_close(res.state[k], v, rtol=0, atol=0)
    assert any(not torch.equal(res.state[k], v) for k, v in state.items() if k.startswith("head."))


def test_metrics_report_the_step_budget_and_predictions(tensors, pretrained, tmp_path):
    """Per point: steps, how it stopped, the budget; DANN: the unlabelled target events it saw;
    per seed a predictions.parquet with the test events."""
    from fast2full import predictions as P

    (m,) = run_job(
        _job(tensors, tmp_path / "dann", mode="dann", size=40, pretrained=pretrained["sigbkg"]),
        settings(min_steps=10, max_steps=400),
    )
    assert m["stopped"] == "early_stopping" and not m["hit_cap"] and 10 <= m["steps"] < 400
    assert m["budget"] == {"min_steps": 10, "max_steps": 400, "val_every": 5, "patience": 2}
    assert m["n_unlabelled_pool"] == 300 and m["n_unlabelled"] == min(300, 64 * m["steps"])
    assert m["n_source"] == min(300, 64 * m["steps"]) and m["ensemble_members"] == 1
    assert [g["stopped"] for g in m["grid"]] == ["early_stopping"]
    pred = P.read(tmp_path / "dann" / "seed0" / "predictions.parquet")
    test = tensorio.load(tensors / "sigbkg" / TARGET / "test.parquet")
    assert np.array_equal(pred.event_id, test.event_id) and np.array_equal(pred.truth, test.y)
    from fast2full import weights as W

    assert W.auc(pred.pred, pred.truth, pred.weight) == pytest.approx(m["test_auc"], abs=1e-6)
    assert W.auc(pred.baseline, pred.truth, pred.weight) == pytest.approx(m["baseline"]["test_auc"], abs=1e-6)
    (c,) = run_job(_job(tensors, tmp_path / "cap", mode="scratch", size=40), settings(min_steps=3, max_steps=3))
    assert c["stopped"] == "max_steps" and c["hit_cap"] and c["steps"] == 3 and c["n_unlabelled"] == 0


@pytest.mark.parametrize("task,arch,mode", [("sigbkg", "gnn", "scratch"), ("met", "transformer", "dann")])
def test_same_seed_same_metrics(tensors, pretrained, tmp_path, task, arch, mode):
    pre = None if mode == "scratch" else pretrained[task]
    if pre is not None and arch != "dnn":  # the pretrained fixture is a dnn: pretrain this arch here
        pre = tmp_path / "pre"
        run_job(
            _job(tensors, pre, task=task, arch=arch, seeds=(1,)), settings(pretrain_min_steps=6, pretrain_max_steps=12)
        )
    runs = [
        run_job(
            _job(tensors, tmp_path / f"run{i}", task=task, arch=arch, mode=mode, size=40, pretrained=pre, seeds=(1,)),
            settings(max_steps=15),
        )[0]
        for i in range(2)
    ]
    a, b = ({k: v for k, v in r.items() if k not in TIMING_KEYS} for r in runs)
    assert a == b


def test_size_above_pool_is_capped(tensors, tmp_path):
    (m,) = run_job(_job(tensors, tmp_path, mode="scratch", size=10_000), settings(min_steps=5, max_steps=5))
    assert m["capped"] is True and m["n_train"] == 300 and m["size"] == 10_000
    assert m["n_val"] == 100


def test_two_seeds_use_different_subsets(tensors, tmp_path):
    ms = run_job(_job(tensors, tmp_path, mode="scratch", size=30, seeds=(0, 1)), settings(max_steps=10))
    assert [m["seed"] for m in ms] == [0, 1] and ms[0]["test_auc"] != ms[1]["test_auc"]
    assert all((tmp_path / f"seed{s}" / "metrics.json").is_file() for s in (0, 1))


@pytest.mark.parametrize(
    "n_train,n_val,expected", [(30, 100, 20), (100, 100, 50), (300, 100, 100), (None, 77, 77), (0, 5, 5)]
)
def test_val_subset_size(n_train, n_val, expected):
    assert val_subset_size(n_train, n_val) == expected


def test_bad_job_specs(tensors, tmp_path):
    with pytest.raises(Fast2FullError, match="--pretrained-dir"):
        _job(tensors, tmp_path, mode="finetune", size=10)
    with pytest.raises(Fast2FullError, match="--size"):
        _job(tensors, tmp_path, mode="scratch", size="lots")
    with pytest.raises(Fast2FullError, match="source domain"):
        run_job(JobSpec("sigbkg", "dnn", TARGET, "pretrain", "all", [0], tensors, tmp_path), settings())
    with pytest.raises(InputError, match="model.ckpt"):
        run_job(_job(tensors, tmp_path / "x", mode="finetune", size=10, pretrained=tmp_path / "nothing"), settings())
    assert not list(tmp_path.rglob("metrics.json"))


def _cli(config, tensors, outdir, mode="scratch", size="20", extra=()):
    return main(
        [
            "train",
            "--config",
            str(config),
            "--task",
            "sigbkg",
            "--arch",
            "dnn",
            "--target",
            TARGET,
            "--mode",
            mode,
            "--size",
            size,
            "--seeds",
            "0",
            "--tensors",
            str(tensors),
            "--outdir",
            str(outdir),
            "--model-size",
            "tiny",
            *extra,
        ]
    )


@pytest.fixture
def tiny_config(tmp_path, repo_root):
    import yaml

    cfg = yaml.safe_load((repo_root / "config.yaml").read_text())
    for det in cfg["detectors"].values():
        det["card"] = str(repo_root / det["card"])
    cfg["training"] |= {
        "min_steps": 4,
        "max_steps": 8,
        "learning_rates": [0.003],
        "pretrain_min_steps": 4,
        "pretrain_max_steps": 8,
    }
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_cli_train_and_export(tiny_config, tensors, pretrained, tmp_path):
    assert _cli(tiny_config, tensors, tmp_path / "sc") == 0
    m = json.loads((tmp_path / "sc" / "seed0" / "metrics.json").read_text())
    assert m["model_size"] == "tiny" and m["n_train"] == 20 and m["lr"] == 0.003
    assert (
        main(
            [
                "export-model",
                "--ckpt",
                str(pretrained["sigbkg"] / "seed0" / "model.ckpt"),
                "--out",
                str(tmp_path / "pub"),
            ]
        )
        == 0
    )
    card = json.loads((tmp_path / "pub" / "model_card.json").read_text())
    assert card["task"] == "sigbkg" and card["source_domain"] == SOURCE and card["n_train"] == 300
    # several seeds in one call (the workflow's publish job per task and arch), paired in order
    ckpts = [str(pretrained[t] / "seed0" / "model.ckpt") for t in ("sigbkg", "met")]
    outs = [str(tmp_path / f"pub_{t}") for t in ("sigbkg", "met")]
    assert main(["export-model", "--ckpt", *ckpts, "--out", *outs]) == 0
    for t in ("sigbkg", "met"):
        assert json.loads((tmp_path / f"pub_{t}" / "model_card.json").read_text())["task"] == t
    assert main(["export-model", "--ckpt", *ckpts, "--out", outs[0]]) == 2
    assert card["inputs"]["features"] == tensorio.read_meta(tensors / "sigbkg" / SOURCE / "test.parquet")["features"]


def test_cli_corrupt_tensor_file_fails_cleanly(tiny_config, tensors, tmp_path):
    bad = tmp_path / "tensors"
    for split in ("train", "val", "test"):
        (bad / "sigbkg" / TARGET).mkdir(parents=True, exist_ok=True)
        src = (tensors / "sigbkg" / TARGET / f"{split}.parquet").read_bytes()
        (bad / "sigbkg" / TARGET / f"{split}.parquet").write_bytes(src[: len(src) // 2] if split == "val" else src)
    assert _cli(tiny_config, bad, tmp_path / "out") == 1
    assert not list((tmp_path / "out").rglob("metrics.json"))


def test_cli_several_points_in_one_process(tiny_config, tensors, pretrained, tmp_path):
    args = [
        "train",
        "--config",
        str(tiny_config),
        "--task",
        "sigbkg",
        "--arch",
        "dnn",
        "--target",
        TARGET,
        "--mode",
        "zeroshot",
        "scratch",
        "finetune",
        "--size",
        "20",
        "40",
        "--seeds",
        "0",
        "--tensors",
        str(tensors),
        "--pretrained-dir",
        str(pretrained["sigbkg"]),
        "--model-size",
        "tiny",
    ]
    assert main([*args, "--outdir", str(tmp_path / "bad")]) == 1  # no {mode}/{size} placeholders
    assert main([*args, "--outdir", str(tmp_path / "{mode}" / "n{size}")]) == 0
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("metrics.json"))
    assert found == [
        "finetune/n20/seed0/metrics.json",
        "finetune/n40/seed0/metrics.json",
        "scratch/n20/seed0/metrics.json",
        "scratch/n40/seed0/metrics.json",
        "zeroshot/n0/seed0/metrics.json",
    ]
    m = json.loads((tmp_path / "finetune" / "n40" / "seed0" / "metrics.json").read_text())
    assert m["mode"] == "finetune" and m["size"] == 40 and m["n_train"] == 40 and m["n_val"] == 20


def test_progress_lines_hold_step_losses_points_and_time_left(tensors, tmp_path, monkeypatch, caplog):
    """Every PROGRESS_EVERY_S a training point logs its step, the latest check's train/val loss,
    the points of the job done and the time left (here every check: PROGRESS_EVERY_S = 0)."""
    import logging

    from fast2full import train as T
    from fast2full.train import job

    monkeypatch.setattr(job, "PROGRESS_EVERY_S", 0.0)
    jobs = [_job(tensors, tmp_path / f"p{n}", mode="scratch", size=n) for n in (40, 80)]
    with caplog.at_level(logging.INFO, logger="fast2full.train"):
        T.run_jobs(jobs, settings(learning_rates=[3e-3, 1e-3], min_steps=10, max_steps=10))
    lines = [r.getMessage() for r in caplog.records if "check at step" in r.getMessage()]
    pattern = (
        r"^(\d+)/10 steps \(\d+%\), [\d.]+ steps/s, [\d.]+ s left; sigbkg/dnn/cms_like/scratch/n(\d+) "
        r"check at step (\d+): train loss [\d.e+-]+, val loss [\d.e+-]+ \(lowest val of 2 members, \d still "
        r"training\); ([01])/2 points of the job done, at most [\d.]+ s left in the job$"
    )
    import re

    parsed = [re.match(pattern, line) for line in lines]
    assert lines and all(parsed), lines
    # two checks (steps 5 and 10) per point, the second point after the first
    assert [(int(m[2]), int(m[3]), int(m[4])) for m in parsed] == [(40, 5, 0), (40, 10, 0), (80, 5, 1), (80, 10, 1)]
