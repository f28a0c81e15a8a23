"""The LightningModule: one backbone, one task head, optionally a gradient-reversal domain head.

* ``sigbkg`` / ``qg``: one logit, binary cross-entropy (label 1 = signal / quark).
* ``met``: regression of the true MET (x, y).  By default (``met_residual``) the net predicts the
  *correction* to the reconstructed MET of the tensors' ``baseline`` column, in units of
  :data:`MET_SCALE_GEV`, with the last head layer initialised to zero: an untrained model reproduces
  the detector's MET and training can only learn a correction (the idea of DeepMET, CMS,
  arXiv:2008.06448, which regresses corrections to the particle-flow MET).  The loss is the mean
  squared error of the scaled components; :meth:`TaskModule.predict` returns GeV.
* ``freeze``: the backbone's parameters are frozen (and kept in eval mode, so dropout is off); only
  the head learns.
* ``dann`` (Ganin et al., JMLR 17 (2016) 59, arXiv:1505.07818): the batch holds labelled target
  events, labelled source events and unlabelled target events; the loss is the task loss on both
  labelled sets plus a domain-classifier loss (source vs unlabelled target) whose gradient is reversed
  into the backbone with the paper's schedule lambda(p) = 2 / (1 + exp(-10 p)) - 1, p = epoch progress.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

from fast2full import weights as W
from fast2full.plan import CLASSIFICATION_TASKS, REGRESSION_TASKS
from fast2full.records import ModelCard

#: scale of the MET regression target: the net predicts (px, py) / MET_SCALE_GEV
MET_SCALE_GEV = 100.0
#: Ganin et al.'s schedule constant for the gradient-reversal coefficient
DANN_GAMMA = 10.0


def task_outputs(task: str) -> int:
    if task in CLASSIFICATION_TASKS:
        return 1
    if task in REGRESSION_TASKS:
        return 2
    raise ValueError(f"unknown task {task!r}")


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times ``-coeff`` backward."""
    return _GradReverse.apply(x, coeff)


def _mlp_head(d_in: int, d_out: int, members: int | None = None) -> nn.Sequential:
    """Two-layer MLP head; ``members``: an ensemble of that many heads (see backbones.EnsembleLinear)."""
    from fast2full.models.backbones import _linear

    return nn.Sequential(_linear(d_in, d_in, members), nn.ReLU(), _linear(d_in, d_out, members))


class TaskModule(pl.LightningModule):
    """Backbone + task head (+ domain head for DANN) with one ``_common_step`` for every stage.

    ``model_config`` (arch, model_size, n_features, max_objects, features, norm, ...) is stored in
    the hyper-parameters so that :func:`fast2full.models.load_pretrained` can rebuild the backbone.
    """

    #: the checked model card of a loaded checkpoint (set by load_pretrained); None for a new model
    model_card: ModelCard | None = None

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        lr: float = 1e-3,
        freeze_backbone: bool = False,
        dann: bool = False,
        dann_weight: float = 1.0,
        weight_decay: float = 0.0,
        met_residual: bool = True,
        model_config: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        self.task = task
        self.is_classifier = task in CLASSIFICATION_TASKS
        self.head = _mlp_head(backbone.embed_dim, task_outputs(task))
        self.met_residual = met_residual and not self.is_classifier
        if self.met_residual:  # start from the reconstructed MET: zero correction
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)
        self.domain_head = _mlp_head(backbone.embed_dim, 1) if dann else None
        self.lr, self.weight_decay = lr, weight_decay
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    # ---- inference -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw head output: a logit (B,) for classification, (B, 2) MET / MET_SCALE_GEV for met."""
        out = self.head(self.backbone(x, mask))
        return out.squeeze(-1) if self.is_classifier else out

    def to_prediction(self, out: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
        """Raw output -> probability (classification) or MET (x, y) in GeV (adding the baseline MET)."""
        if self.is_classifier:
            return torch.sigmoid(out)
        pred = out * MET_SCALE_GEV
        if self.met_residual:
            if baseline is None:
                raise ValueError("this MET model predicts a correction: pass the reconstructed MET as baseline")
            pred = pred + baseline.to(pred)
        return pred

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, mask: torch.Tensor, baseline: torch.Tensor | None = None, batch_size: int = 4096
    ) -> torch.Tensor:
        """Probabilities (classification) or MET (x, y) in GeV, in eval mode, batched.

        ``baseline``: the reconstructed MET (x, y) in GeV (the tensors' ``baseline`` column), needed by
        residual MET models.
        """
        was_training = self.training
        self.eval()
        outs = []
        dev = next(self.parameters()).device
        for i in range(0, len(x), batch_size):
            outs.append(self(x[i : i + batch_size].to(dev), mask[i : i + batch_size].to(dev)).float().cpu())
        self.train(was_training)
        out = torch.cat(outs) if outs else torch.empty((0,) if self.is_classifier else (0, 2))
        return self.to_prediction(out, baseline)

    # ---- losses ----------------------------------------------------------------------------------
    def task_loss(
        self,
        out: torch.Tensor,
        y: torch.Tensor,
        baseline: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """BCE (classification) or MSE (MET), weighted with the rows' training weights
        (:mod:`fast2full.weights`: sum(w * loss) / sum(|w|); ``weight`` None: the plain mean)."""
        if self.is_classifier:
            return W.bce_with_logits(out, y, weight)
        target = y - baseline if self.met_residual else y
        return W.mse(out, target / MET_SCALE_GEV, weight)

    def dann_coeff(self) -> float:
        """lambda(p) = 2/(1+exp(-gamma p)) - 1 with p = epoch / max_epochs the training progress."""
        trainer = self._trainer
        if trainer is None or not trainer.max_epochs or trainer.max_epochs < 0:
            return 1.0
        p = min(self.current_epoch / trainer.max_epochs, 1.0)
        return 2.0 / (1.0 + math.exp(-DANN_GAMMA * p)) - 1.0

    def _accumulate(self, stage: str, name: str, value: torch.Tensor, n: float) -> None:
        """Running sum of a loss weighted by ``n`` (the batch's total |weight|);
        logged once per epoch by :meth:`_flush`.

        ``self.log`` costs milliseconds per call, more than a training step of a small model, so the
        epoch means are accumulated here and logged once (the same numbers as ``on_epoch=True``).
        """
        sums = self._sums.setdefault(stage, {})
        total, count = sums.get(name, (0.0, 0))
        sums[name] = (total + value.detach() * n, count + n)

    def _flush(self, stage: str) -> None:
        for name, (total, count) in self._sums.pop(stage, {}).items():
            self.log(name, total / (count if count > 0 else 1), on_step=False, on_epoch=True)

    def _common_step(self, batch: Any, stage: str) -> torch.Tensor:
        """Loss of one batch; accumulates ``{stage}_loss`` (and the DANN terms) for the epoch log."""
        if not hasattr(self, "_sums"):
            self._sums: dict[str, dict[str, tuple]] = {}
        if isinstance(batch, dict):  # DANN training batch
            x, m, y, b, w = batch["target"]
            loss = task_loss = self.task_loss(self(x, m), y, b, w)
            if self.domain_head is not None:
                xs, ms, ys, bs, ws = batch["source"]
                xu, mu, _, _, _ = batch["unlabelled"]
                emb_s, emb_u = self.backbone(xs, ms), self.backbone(xu, mu)
                out_s = self.head(emb_s)
                loss_s = self.task_loss(out_s.squeeze(-1) if self.is_classifier else out_s, ys, bs, ws)
                emb = grad_reverse(torch.cat([emb_s, emb_u]), self.dann_coeff())
                d_label = torch.cat([torch.zeros(len(emb_s)), torch.ones(len(emb_u))]).to(emb)
                d_loss = F.binary_cross_entropy_with_logits(self.domain_head(emb).squeeze(-1), d_label)
                loss = task_loss + loss_s + self.hparams.dann_weight * d_loss
                self._accumulate(stage, f"{stage}_domain_loss", d_loss, len(d_label))
                self._accumulate(stage, f"{stage}_source_loss", loss_s, float(ws.abs().sum()))
        else:
            x, m, y, b, w = batch
            loss = task_loss = self.task_loss(self(x, m), y, b, w)
        # weighted by the batch's total |weight|: the epoch value is sum(w * loss) / sum(|w|) over the set
        self._accumulate(stage, f"{stage}_loss", task_loss, float(w.abs().sum()))
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._flush("train")

    def on_validation_epoch_end(self) -> None:
        self._flush("val")

    def on_test_epoch_end(self) -> None:
        self._flush("test")

    def on_train_epoch_start(self) -> None:
        if self.freeze_backbone:  # a frozen feature extractor: no dropout noise either
            self.backbone.eval()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
