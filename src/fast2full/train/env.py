"""The training process's environment: Lightning's loggers and warnings, the device, torch threads."""

from __future__ import annotations

import logging

from fast2full.common import Fast2FullError


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and the warnings that do not apply to in-memory tensors."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: override afterwards)

    for name in (
        "lightning.pytorch",
        "lightning.fabric",
        "lightning",
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


#: Lightning warnings that do not apply here (matched by message, only around our own fits)
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",  # in-memory tensors: worker processes only add start-up cost
    r".*Trying to infer the `batch_size`.*",  # batches are tuples of tensors; sizes are passed to log()
    r"The `srun` command is available on your system but is not used.*",  # one process, one device
    r"`isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning 2.6 vs torch 2.13 pytree (FutureWarning)
)


def pick_device(accelerator: str) -> str:
    """``auto``: a GPU when Lightning finds one (its CUDA / MPS accelerators), else the CPU."""
    from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

    acc = accelerator.lower()
    if acc in ("auto", "gpu", "cuda"):
        if CUDAAccelerator.is_available():
            return "cuda"
        if MPSAccelerator.is_available():
            return "mps"
        if acc != "auto":
            raise Fast2FullError(f"--accelerator {accelerator}: no GPU found")
        return "cpu"
    if acc == "cpu":
        return "cpu"
    raise Fast2FullError(f"unknown accelerator {accelerator!r}; choose auto, cpu or gpu")


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(int(threads), 1))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
