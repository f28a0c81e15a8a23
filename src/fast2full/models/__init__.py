"""Models: backbones (plain ``nn.Module``), the task LightningModule, the DataModule, checkpoints.

>>> from fast2full.models import load_pretrained                  # doctest: +SKIP
>>> model = load_pretrained("results/models/qg_gnn_seed0")         # file or exported directory

Importing this package imports torch and Lightning (seconds); the CLI imports it only inside ``run``.
"""

from fast2full.models.backbones import ARCHS, DNN, MODEL_SIZES, EdgeConvNet, SetTransformer, build_backbone, n_params
from fast2full.models.checkpoint import export_model, load_pretrained, read_checkpoint, save_checkpoint
from fast2full.models.data import TensorDataModule
from fast2full.models.module import MET_SCALE_GEV, TaskModule, grad_reverse

__all__ = [
    "ARCHS",
    "MODEL_SIZES",
    "DNN",
    "EdgeConvNet",
    "SetTransformer",
    "build_backbone",
    "n_params",
    "export_model",
    "load_pretrained",
    "read_checkpoint",
    "save_checkpoint",
    "TensorDataModule",
    "MET_SCALE_GEV",
    "TaskModule",
    "grad_reverse",
]
