"""The LightningDataModule over in-memory :class:`fast2full.tensorio.TensorSet`s.

Tensor files are small and read once per process (all seeds and learning rates of a job share them),
so the module takes loaded sets; :meth:`TensorDataModule.from_files` reads them itself.  Batches are
drawn by indexing whole tensors with a list of row indices (a ``BatchSampler`` as the sampler), not by
collating single rows, so the loader costs a few microseconds per batch; a batch is
(x, mask, y, baseline, weight), ``weight`` the set's training weights
(:func:`fast2full.weights.training_weights`: physical event weights, class-balanced for
classification, mean 1 over the set).
Shuffling uses a ``torch.Generator`` seeded from the job seed, so a run is reproducible.

For DANN the training loader is a ``CombinedLoader`` (mode ``min_size``) of three loaders: the
labelled target subset, labelled source events, and unlabelled target-train events (labels ignored);
an epoch is one pass over the labelled target subset.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from fast2full import tensorio
from fast2full import weights as W
from fast2full.tensorio import TensorSet

#: generator offsets so the three DANN streams are independent but reproducible
_STREAM_OFFSETS = {"target": 0, "source": 1_000_003, "unlabelled": 2_000_003}


def set_weights(ts: TensorSet) -> torch.Tensor:
    """The training weights of a set (float32): class-balanced physical weights for labels (1-d y),
    physical weights with mean 1 for regression targets."""
    tw = W.training_weights(ts.weight, ts.y if ts.y.ndim == 1 else None)
    return torch.from_numpy(tw.astype("float32"))


def _dataset(ts: TensorSet) -> TensorDataset:
    x, m, y, _ = ts.torch()
    return TensorDataset(x, m, y, torch.from_numpy(ts.baseline), set_weights(ts))


def _loader(ds: TensorDataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    if shuffle:
        gen = torch.Generator().manual_seed(seed)
        base = RandomSampler(ds, generator=gen)
    else:
        base = SequentialSampler(ds)
    return DataLoader(ds, sampler=BatchSampler(base, batch_size, drop_last=False), batch_size=None)


class TensorDataModule(pl.LightningDataModule):
    """train / val / test sets (+ source and unlabelled target sets for DANN)."""

    def __init__(
        self,
        train: TensorSet,
        val: TensorSet,
        test: TensorSet | None = None,
        *,
        batch_size: int = 64,
        seed: int = 0,
        source: TensorSet | None = None,
        unlabelled: TensorSet | None = None,
    ):
        super().__init__()
        self.sets = {"train": train, "val": val, "test": test, "source": source, "unlabelled": unlabelled}
        self.batch_size, self.seed = batch_size, seed
        self.datasets: dict[str, TensorDataset] = {}

    @classmethod
    def from_files(
        cls, train: str | Path, val: str | Path, test: str | Path | None = None, **kwargs
    ) -> TensorDataModule:
        return cls(tensorio.load(train), tensorio.load(val), tensorio.load(test) if test else None, **kwargs)

    @property
    def meta(self) -> dict:
        return self.sets["train"].meta

    def setup(self, stage: str | None = None) -> None:
        for name, ts in self.sets.items():
            if ts is not None and name not in self.datasets:
                self.datasets[name] = _dataset(ts)

    def train_dataloader(self):
        target = _loader(self.datasets["train"], self.batch_size, True, self.seed)
        if "source" not in self.datasets or "unlabelled" not in self.datasets:
            return target
        return CombinedLoader(
            {
                "target": target,
                "source": _loader(
                    self.datasets["source"], self.batch_size, True, self.seed + _STREAM_OFFSETS["source"]
                ),
                "unlabelled": _loader(
                    self.datasets["unlabelled"], self.batch_size, True, self.seed + _STREAM_OFFSETS["unlabelled"]
                ),
            },
            mode="min_size",
        )

    def val_dataloader(self) -> DataLoader:
        return _loader(self.datasets["val"], max(self.batch_size, 1024), False)

    def test_dataloader(self) -> DataLoader:
        return _loader(self.datasets["test"], max(self.batch_size, 1024), False)
