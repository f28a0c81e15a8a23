"""Checkpoints, model cards and :func:`load_pretrained`.

A ``model.ckpt`` is a ``torch.save`` dict in Lightning's layout (``state_dict``, ``hyper_parameters``,
``pytorch-lightning_version``) plus ``model_card``: everything needed to rebuild and use the model —
task, architecture, size, input features with units and normalisation, source domain, training size
and metrics.  It holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)`` (no pickled code is executed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from fast2full.common import Fast2FullError, InputError, atomic_output
from fast2full.models.backbones import build_backbone, n_params
from fast2full.models.module import MET_SCALE_GEV, TaskModule
from fast2full.records import CARD_VERSION, ModelCard

CKPT_NAME = "model.ckpt"
CARD_NAME = "model_card.json"
README_NAME = "README.md"
__all__ = ["CARD_VERSION", "save_checkpoint", "read_checkpoint", "read_card", "load_pretrained", "export_model"]


def save_checkpoint(module: TaskModule, path: str | Path, card: ModelCard | dict[str, Any]) -> None:
    """Write ``module`` with its model card (a :class:`~fast2full.records.ModelCard`, or a dict checked
    as one) atomically to ``path``."""
    import lightning

    if not isinstance(card, ModelCard):
        card = ModelCard.from_dict(card, f"{path} (model card being written)")
    ckpt = {
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "hyper_parameters": dict(module.hparams),
        "model_card": card.to_dict(),
    }
    with atomic_output(path) as tmp:
        torch.save(ckpt, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of a file, or of ``DIR/model.ckpt``; InputError if unreadable."""
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    if not p.is_file():
        raise InputError(p, "checkpoint file not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, EOFError... for bad files
        raise InputError(p, f"not a readable fast2full checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or not {"state_dict", "hyper_parameters"} <= set(ckpt):
        raise InputError(p, "not a fast2full checkpoint (no state_dict / hyper_parameters)")
    if "model_config" not in ckpt["hyper_parameters"]:
        raise InputError(p, "checkpoint has no model_config (not written by fast2full train)")
    if "model_card" not in ckpt:
        raise InputError(p, "checkpoint has no model_card (not written by fast2full train)")
    return ckpt


def read_card(path: str | Path, ckpt: dict[str, Any] | None = None) -> ModelCard:
    """The checked :class:`~fast2full.records.ModelCard` of a checkpoint file or ``DIR/model.ckpt``
    (``ckpt``: its dict, if already read); InputError naming the file and the missing or bad field."""
    p = Path(path)
    p = p / CKPT_NAME if p.is_dir() else p
    return ModelCard.from_dict((ckpt if ckpt is not None else read_checkpoint(p))["model_card"], p)


def load_pretrained(
    path: str | Path,
    *,
    lr: float | None = None,
    freeze_backbone: bool = False,
    dann: bool = False,
    device: str | torch.device = "cpu",
) -> TaskModule:
    """Load a model from a checkpoint file or an exported model directory, ready to predict or fine-tune.

    ``freeze_backbone`` / ``dann`` configure it for those fine-tuning modes (a DANN domain head is newly
    initialised).  The returned module is in eval mode; its model card (a checked
    :class:`~fast2full.records.ModelCard`) is ``module.model_card``.

    >>> model = load_pretrained("results/models/qg_gnn_seed0")      # doctest: +SKIP
    >>> p = model.predict(torch.from_numpy(ts.x), torch.from_numpy(ts.mask))
    """
    ckpt = read_checkpoint(path)
    card = read_card(path, ckpt)
    hp = dict(ckpt["hyper_parameters"])
    mc = hp["model_config"]
    backbone = build_backbone(mc["arch"], mc["n_features"], mc["max_objects"], mc["model_size"])
    module = TaskModule(
        backbone,
        task=hp["task"],
        lr=lr if lr is not None else hp.get("lr", 1e-3),
        freeze_backbone=freeze_backbone,
        dann=dann,
        dann_weight=hp.get("dann_weight", 1.0),
        weight_decay=hp.get("weight_decay", 0.0),
        met_residual=hp.get("met_residual", True),
        model_config=mc,
    )
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("domain_head.")}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("domain_head.")]
    if missing or unexpected:
        raise InputError(
            path, f"checkpoint does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    module.model_card = card
    return module.to(device).eval()


def _readme(card: ModelCard) -> str:
    inp = card.inputs
    feats = ", ".join(f"{f} [{u}]" if u else f for f, u in zip(inp["features"], inp.get("units", [])))
    out = (
        "probability of class 1 (signal / quark)"
        if card.task != "met"
        else "true MET (x, y) in GeV (`predict(x, mask, baseline)`: pass the reconstructed MET (x, y), the "
        "tensors' baseline column; the net learns a correction to it)"
    )
    lines = [
        f"# fast2full pretrained model: {card.task} / {card.arch} ({card.model_size})",
        "",
        f"Pretrained on the **{card.source_domain}** domain ({card.n_train} training events, "
        f"seed {card.seed}, learning rate {card.lr}, {card.epochs} epochs, "
        f"{card.n_params} parameters).",
        "",
        "## Inputs",
        f"`x`: (n, {inp['max_objects']}, {inp['n_features']}) padded objects with features {feats}; "
        "`mask`: (n, N) bool. Features are standardised with the `norm` mean/std in `model_card.json` "
        "(what `fast2full.tensorio.load` does); padded slots are ignored.",
        "",
        f"## Output\n{out}.",
        "",
        "## Metrics (source test split)",
        *[f"- {k}: {v}" for k, v in card.metrics.items()],
        "",
        "## Use",
        "```python",
        "import torch",
        "from fast2full import tensorio",
        "from fast2full.models import load_pretrained",
        "model = load_pretrained('THIS_DIRECTORY')",
        "ts = tensorio.load('results/tensors/TASK/DOMAIN/test.parquet')",
        "pred = model.predict(torch.from_numpy(ts.x), torch.from_numpy(ts.mask), torch.from_numpy(ts.baseline))",
        "```",
        "Fine-tune: `load_pretrained(dir, lr=1e-3)` returns a Lightning module for `Trainer.fit`.",
        "",
    ]
    return "\n".join(lines)


def export_model(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Publish a checkpoint as ``out_dir/{model.ckpt, model_card.json, README.md}`` (atomically)."""
    module = load_pretrained(ckpt_path)  # proves the checkpoint rebuilds (and its card is sound) first
    card = read_card(ckpt_path)
    card = card.replace(
        n_params=card.n_params if card.n_params is not None else n_params(module),
        output_scale=None
        if module.is_classifier
        else {"met_scale_gev": MET_SCALE_GEV, "residual_on_baseline_met": module.met_residual},
        load="fast2full.models.load_pretrained(DIR)",
    )
    src = Path(ckpt_path)
    src = src / CKPT_NAME if src.is_dir() else src
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise Fast2FullError(f"{out}: exists and is not a directory")
    with atomic_output(out, suffix="") as tmp:
        tmp.mkdir()
        shutil.copy2(src, tmp / CKPT_NAME)
        (tmp / CARD_NAME).write_text(
            json.dumps(card.to_dict() | {"output_scale": card.output_scale, "load": card.load}, indent=2) + "\n"
        )
        (tmp / README_NAME).write_text(_readme(card))
        if out.is_dir():  # os.replace cannot replace a non-empty directory
            shutil.rmtree(out)
    return out
