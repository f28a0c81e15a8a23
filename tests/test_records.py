"""The typed records of metrics.json and the model card (fast2full.records): round trips, and a
missing or mistyped field is one InputError naming the file and the field."""

import dataclasses
import json

import pytest

from fast2full.common import InputError
from fast2full.records import METRICS_VERSION, ModelCard, PointMetrics


def _metrics(**changes):
    """A complete metrics.json object, as train writes it (every field, in order)."""
    rec = {
        "task": "qg",
        "arch": "gnn",
        "target": "cms_like",
        "mode": "finetune",
        "size": 100,
        "n_train": 100,
        "capped": False,
        "n_val": 50,
        "n_test": 400,
        "seed": 1,
        "metric": "auc",
        "test_auc": 0.71,
        "roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.7, 1.0]},
        "test_loss": 0.6,
        "val_loss": 0.61,
        "met_resolution": None,
        "baseline": {"name": "-ntrk", "test_auc": 0.65, "met_resolution": None, "test_auc_unweighted": 0.64},
        "test_auc_unweighted": 0.7,
        "met_resolution_unweighted": None,
        "binned": {"inclusive": {"n": 400, "auc": 0.71}, "bins": []},
        "ess_train": 95.5,
        "ess_val": 48.0,
        "ess_test": 380.1,
        "sample_sizes": {"train": {"rows": 100}, "val": {"rows": 50}, "test": {"rows": 400}},
        "lr": 0.001,
        "steps": 200,
        "best_step": 150,
        "stopped": "early_stopping",
        "hit_cap": False,
        "checks": 20,
        "epochs": 128.0,
        "best_epoch": 96.0,
        "steps_total": 400,
        "budget": {"min_steps": 200, "max_steps": 3000, "val_every": 10, "patience": 10},
        "grid": [{"lr": 0.001, "best_val_loss": 0.61, "best_step": 150, "steps": 200}],
        "n_unlabelled": 0,
        "n_unlabelled_pool": 0,
        "n_source": 0,
        "n_params": 1234,
        "n_params_trainable": 1234,
        "ensemble_members": 4,
        "wall_time_s": 3.2,
        "startup_s": 1.1,
        "device": "cpu",
        "pretrained_from": "results/train/qg/gnn/atlas_like/pretrain/nall/seed1/model.ckpt",
        "source": "atlas_like",
        "model_size": "small",
        "threads": 1,
        "provenance": {"version": "0.1", "git_commit": "abc", "config_digest": "def"},
        "schema_version": METRICS_VERSION,
    }
    return rec | changes


def test_point_metrics_round_trip(tmp_path):
    rec = PointMetrics.from_dict(_metrics())
    assert rec.size == 100 and rec.value == 0.71 and rec.baseline is not None
    p = tmp_path / "metrics.json"
    rec.to_json(p)
    assert json.loads(p.read_text()) == _metrics()  # the layout: every field, in train's order
    assert list(json.loads(p.read_text())) == list(_metrics())
    assert PointMetrics.from_json(p) == rec
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.seed = 2  # type: ignore[misc]
    # the required keys only (hand-made or older files): the rest read as None / defaults
    small = PointMetrics.from_dict({k: _metrics()[k] for k in PointMetrics.REQUIRED} | {"size": "all"})
    assert small.n_unlabelled == 0 and small.test_auc is None and small.value is None


@pytest.mark.parametrize(
    "changes,drop,cause",
    [
        ({}, "seed", r"missing key\(s\) seed"),
        ({"seed": "1"}, None, r"field 'seed' must be an integer, got \"1\""),
        ({"seed": True}, None, r"field 'seed' must be an integer"),
        ({"n_train": 1.5}, None, r"field 'n_train' must be an integer or null, got 1.5"),
        ({"capped": 1}, None, r"field 'capped' must be true/false"),
        ({"test_auc": "0.7"}, None, r"field 'test_auc' must be a number or null"),
        ({"size": "big"}, None, r"field 'size' must be an integer or \"all\""),
        ({"baseline": [0.6]}, None, r"field 'baseline' must be an object or null"),
        ({"grid": {}}, None, r"field 'grid' must be a list or null"),
        ({"mode": "transfer"}, None, "unknown mode 'transfer'"),
        ({"metric": "f1"}, None, "unknown metric 'f1'"),
        ({"size": -3}, None, "size must be a non-negative integer"),
        ({"roc": {"fpr": [0.0], "tpr": [0.0, 1.0]}}, None, "roc must be"),
        ({"auc": 0.7}, None, r"unknown key\(s\) auc"),
        ({"schema_version": METRICS_VERSION + 1}, None, "newer than this fast2full"),
    ],
)
def test_bad_metrics_file_names_the_file_and_the_field(tmp_path, changes, drop, cause):
    obj = _metrics(**changes)
    if drop:
        del obj[drop]
    p = tmp_path / "point" / "metrics.json"
    p.parent.mkdir()
    p.write_text(json.dumps(obj))
    with pytest.raises(InputError, match=cause) as exc:
        PointMetrics.from_json(p)
    assert exc.value.path == str(p) and str(p) in str(exc.value)


def test_metrics_file_that_is_not_an_object_or_not_json(tmp_path):
    p = tmp_path / "metrics.json"
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="metrics file must hold a JSON object"):
        PointMetrics.from_json(p)
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        PointMetrics.from_json(p)


def _card(**changes):
    card = {
        "card_version": 1,
        "task": "met",
        "arch": "dnn",
        "model_size": "tiny",
        "source_domain": "atlas_like",
        "seed": 0,
        "n_train": 300,
        "lr": 0.003,
        "epochs": 4.2,
        "n_params": 999,
        "inputs": {"features": ["pt", "eta"], "units": ["GeV", ""], "max_objects": 6, "n_features": 2, "norm": None},
        "targets": ["met_x", "met_y"],
        "metrics": {"test_auc": None, "met_resolution": 12.0, "test_loss": 0.3, "val_loss": 0.31},
        "baseline": {"name": "reco MET", "met_resolution": 15.0},
        "tensor_meta": {"schema_version": 3, "domain": "atlas_like"},
        "provenance": None,
    }
    return card | changes


def test_model_card_round_trip_and_errors(tmp_path):
    card = ModelCard.from_dict(_card())
    assert card.to_dict() == _card()  # output_scale / load (export-model's) left out while null
    p = tmp_path / "model_card.json"
    card.replace(load="fast2full.models.load_pretrained(DIR)").to_json(p)
    back = ModelCard.from_json(p)
    assert back.load == "fast2full.models.load_pretrained(DIR)" and back.inputs["n_features"] == 2
    bad = _card()
    del bad["inputs"]["n_features"]
    p.write_text(json.dumps(bad))
    with pytest.raises(InputError, match="model card field 'inputs' has no 'n_features'") as exc:
        ModelCard.from_json(p)
    assert exc.value.path == str(p)
    p.write_text(json.dumps(_card(seed="zero")))
    with pytest.raises(InputError, match="field 'seed' must be an integer or null"):
        ModelCard.from_json(p)


def test_loader_names_the_checkpoint_and_the_bad_card_field(tmp_path):
    """load_pretrained reads the card as a ModelCard: a checkpoint whose card lacks a field is an
    InputError naming the checkpoint and the field (and the card it gives back is the record)."""
    import torch

    from fast2full.models import TaskModule, build_backbone, load_pretrained, save_checkpoint

    m = TaskModule(
        build_backbone("dnn", 2, 6, "tiny"),
        "met",
        model_config={"arch": "dnn", "model_size": "tiny", "n_features": 2, "max_objects": 6},
    )
    ckpt = tmp_path / "model.ckpt"
    save_checkpoint(m, ckpt, _card())
    assert load_pretrained(ckpt).model_card == ModelCard.from_dict(_card())
    raw = torch.load(ckpt, weights_only=True)
    del raw["model_card"]["source_domain"]
    torch.save(raw, ckpt)
    with pytest.raises(InputError, match=r"missing key\(s\) source_domain") as exc:
        load_pretrained(ckpt)
    assert exc.value.path == str(ckpt)
    with pytest.raises(InputError, match="field 'n_train' must be an integer or null"):
        save_checkpoint(m, tmp_path / "other.ckpt", _card(n_train="300"))
    assert not (tmp_path / "other.ckpt").exists()
