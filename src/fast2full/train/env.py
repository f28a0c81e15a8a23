"""The training process's environment: Lightning's loggers and warnings, the device, torch threads,
the memory allocator."""

from __future__ import annotations

import logging
import os
import sys

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


#: glibc ``mallopt`` parameters (<malloc.h>)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
#: environment variable that leaves the allocator as it is (``default``)
ALLOCATOR_ENV = "FAST2FULL_ALLOCATOR"
_allocator_state: str | None = None


def keep_freed_memory() -> str:
    """Make glibc's ``malloc`` keep freed memory for the next allocation instead of handing it back.

    A training step allocates and frees the same large tensors every step (edge features of the GNN,
    attention scores: tens to hundreds of MB at the paper's slot counts).  By default glibc serves an
    allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps it on free, so
    every step page-faults and zero-fills that memory again in the kernel: for a `small` GNN on 64
    slots, more system than user CPU time.  With ``M_MMAP_MAX = 0`` every allocation comes from the
    heap, and with a large trim threshold freed memory stays there: the same training at 1.1-2x the
    member-samples per CPU second (bench/bench_train.py ``--allocator``), for a peak RSS up to ~1.4x
    (memory freed inside the heap is reused, not returned).

    Applied once per process (the training stage and the benchmarks); a no-op, saying why, off glibc
    or with ``FAST2FULL_ALLOCATOR=default``.  Returns what was done."""
    global _allocator_state
    if _allocator_state is not None:
        return _allocator_state
    log = logging.getLogger("fast2full.train")
    if os.environ.get(ALLOCATOR_ENV, "").lower() == "default":
        _allocator_state = f"allocator left as it is ({ALLOCATOR_ENV}=default)"
    elif not sys.platform.startswith("linux"):
        _allocator_state = f"allocator left as it is (glibc mallopt: not on {sys.platform})"
    else:
        import ctypes

        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = all(
                libc.mallopt(param, value) == 1
                for param, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 64 << 20))
            )
        except (OSError, AttributeError) as exc:  # not glibc (musl has no mallopt)
            ok, why = False, str(exc)
        else:
            why = "mallopt refused a setting"
        _allocator_state = (
            "allocator: freed memory kept for reuse (glibc M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB)"
            if ok
            else f"allocator left as it is ({why})"
        )
    log.info(_allocator_state)
    return _allocator_state
