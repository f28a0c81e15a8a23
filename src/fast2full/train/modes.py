"""What each mode starts from and reads (see the package docstring for the modes):

* the tensor files of a point (:func:`load_splits`): the target's train (not for ``zeroshot``), val and
  test splits, plus the source train split for ``dann``;
* the pretrained checkpoints (:func:`pretrained_checkpoints`): ``seed{s}/model.ckpt`` of the pretrain
  job for ``zeroshot`` and the transfer modes, checked against the job's task, arch and tensors;
* a member's initial weights (:func:`initial_state`): random with its seed (pretrain, scratch) or its
  seed's pretrained weights (+ a new random domain head for ``dann``); ``freeze`` trains the head only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fast2full import plan
from fast2full.common import Fast2FullError, InputError
from fast2full.plan import TRANSFER_MODES
from fast2full.records import ModelCard

if TYPE_CHECKING:
    from fast2full.train.job import JobSpec
    from fast2full.train.settings import TrainSettings


def tensor_path(tensors: Path | dict[tuple[str, str, str], Path], task: str, domain: str, split: str) -> Path:
    """The tensor file of (task, domain, split): from the job's own input files (a mapping, what the
    workflow passes with ``--inputs``) or under a tensor root (``--tensors``, by hand)."""
    if isinstance(tensors, dict):
        try:
            return Path(tensors[(task, domain, split)])
        except KeyError:
            raise Fast2FullError(
                f"no {task}/{domain}/{split} tensor file among the job's --inputs "
                f"({', '.join(str(p) for p in tensors.values())})"
            ) from None
    return Path(tensors) / task / domain / f"{split}.parquet"


def load_split(
    tensors: Path | dict[tuple[str, str, str], Path], task: str, domain: str, split: str, cache: dict | None = None
):
    from fast2full import tensorio

    p = tensor_path(tensors, task, domain, split)
    if cache is not None and p in cache:
        return cache[p]
    if not p.is_file():
        raise InputError(p, "tensor file not found (run `fast2full tensorize` first)")
    ts = tensorio.load(p)
    if len(ts) == 0:
        raise InputError(p, f"no events in the {split} split of {task}/{domain}")
    if ts.meta.get("task") not in (None, task):
        raise InputError(p, f"tensor file is for task {ts.meta.get('task')!r}, not {task!r}")
    if cache is not None:
        cache[p] = ts
    return ts


def check_compatible(card: ModelCard, meta: dict, ckpt: Path, path: Path) -> None:
    """The tensors' features, shape and normalisation are those the pretrained model was trained on."""
    inp = card.inputs
    if (
        list(inp["features"]) != list(meta.get("features", []))
        or inp.get("max_objects") != meta.get("max_objects")
        or inp.get("n_features") != meta.get("n_features")
    ):
        raise InputError(
            path,
            f"tensor features/shape {meta.get('features')} x {meta.get('max_objects')} do not "
            f"match the pretrained model {ckpt} ({inp.get('features')} x {inp.get('max_objects')})",
        )
    norm_a, norm_b = inp.get("norm"), meta.get("norm")
    if (
        norm_a
        and norm_b
        and not (
            np.allclose(norm_a["mean"], norm_b["mean"], rtol=1e-5)
            and np.allclose(norm_a["std"], norm_b["std"], rtol=1e-5)
        )
    ):
        raise InputError(
            path,
            f"tensor normalisation differs from the pretrained model's ({ckpt}): "
            "tensorize every domain with the source normalisation",
        )


def model_config(arch: str, settings: TrainSettings, meta: dict) -> dict:
    return {
        "arch": arch,
        "model_size": settings.model_size,
        "n_features": int(meta["n_features"]),
        "max_objects": int(meta["max_objects"]),
        "features": list(meta.get("features", [])),
        "units": list(meta.get("units", [])),
        "norm": meta.get("norm"),
        "targets": meta.get("targets"),
    }


def pretrained_state(ckpt_path: Path, spec: JobSpec, meta: dict) -> dict:
    """The pretrained checkpoint's state dict, after checking it fits the job's task, arch and tensors."""
    from fast2full.models import load_pretrained

    if not ckpt_path.is_file():
        raise InputError(ckpt_path, "pretrained checkpoint not found (run the pretrain job first)")
    probe = load_pretrained(ckpt_path)
    card = probe.model_card
    assert card is not None  # load_pretrained sets it
    check_compatible(card, meta, ckpt_path, tensor_path(spec.tensors, spec.task, spec.target, "test"))
    if probe.task != spec.task:
        raise InputError(ckpt_path, f"checkpoint is for task {probe.task!r}, not {spec.task!r}")
    arch = probe.hparams["model_config"]["arch"]
    if arch != spec.arch:
        raise InputError(ckpt_path, f"checkpoint is a {arch}, not {spec.arch}")
    return {k: v.detach().clone() for k, v in probe.state_dict().items()}


def initial_state(spec: JobSpec, settings: TrainSettings, meta: dict, seed: int, pretrained: dict | None) -> dict:
    """A member's initial weights: random with its seed (pretrain, scratch), or its seed's pretrained
    weights (+ a new domain head, random with its seed, for DANN)."""
    import torch

    from fast2full.models.ensemble import Net

    torch.manual_seed(seed)
    net = Net(
        spec.arch,
        spec.task,
        int(meta["n_features"]),
        int(meta["max_objects"]),
        settings.model_size,
        dann=spec.mode == "dann",
    )
    state = net.state_dict()
    if pretrained is not None:
        for k in state:
            if not k.startswith("domain_head."):
                state[k] = pretrained[k].clone()
    return state


def task_module(spec: JobSpec, settings: TrainSettings, meta: dict, state: dict, lr: float | None):
    from fast2full.models import TaskModule, build_backbone

    module = TaskModule(
        build_backbone(spec.arch, int(meta["n_features"]), int(meta["max_objects"]), settings.model_size),
        spec.task,
        lr=lr or 1e-3,
        freeze_backbone=spec.mode == "freeze",
        dann_weight=settings.dann_weight,
        model_config=model_config(spec.arch, settings, meta),
    )
    module.load_state_dict({k: v for k, v in state.items() if not k.startswith("domain_head.")})
    return module


def point_source(spec: JobSpec, settings: TrainSettings) -> str:
    """The source domain of a point: pretraining's own domain (the configured source, or its
    reduced-input copy, ``fast2full.plan.REDUCED_INPUTS``; anything else is an error); for the other
    modes the source whose model and (DANN) labelled events they use, ``plan.source_for``: the
    reduced-input source for a target with reduced inputs (qg on atlas_fullsim)."""
    if spec.mode == "pretrain":
        allowed = sorted({settings.source, plan.reduced_source(settings.source, spec.task) or settings.source})
        if spec.target not in allowed:
            raise Fast2FullError(f"pretrain runs on the source domain {' or '.join(allowed)}, not {spec.target!r}")
        return spec.target
    return plan.source_for(settings.source, spec.task, spec.target)


def load_splits(spec: JobSpec, settings: TrainSettings, cache: dict | None = None) -> tuple[Any, Any, Any, Any]:
    """The tensor sets a point's mode reads: (target train, target val, target test, source train).
    Target train is None for ``zeroshot`` (no training), source train is None except for ``dann``
    (its domain head sees labelled source events); ``cache``: sets loaded by earlier points."""
    train = None if spec.mode == "zeroshot" else load_split(spec.tensors, spec.task, spec.target, "train", cache)
    val = load_split(spec.tensors, spec.task, spec.target, "val", cache)
    test = load_split(spec.tensors, spec.task, spec.target, "test", cache)
    src = point_source(spec, settings)
    source = load_split(spec.tensors, spec.task, src, "train", cache) if spec.mode == "dann" else None
    return train, val, test, source


def pretrained_checkpoints(spec: JobSpec) -> dict[int, Path]:
    """The pretrain job's ``seed{s}/model.ckpt`` of every seed, for ``zeroshot`` and the transfer modes
    (empty for pretrain and scratch, which start from random weights)."""
    if spec.mode not in ("zeroshot", *TRANSFER_MODES) or not spec.pretrained_dir:
        return {}
    return {s: Path(spec.pretrained_dir) / f"seed{s}" / "model.ckpt" for s in spec.seeds}
