"""The vectorised ensemble equals training each member alone; the step budget and its report."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fast2full import tensorio  # noqa: E402
from fast2full.common import Fast2FullError  # noqa: E402
from fast2full.models.ensemble import (  # noqa: E402
    STOP_CAP,
    STOP_EARLY,
    Budget,
    Data,
    Member,
    Net,
    SyncStream,
    VectorAdam,
    train_members,
)
from fast2full.models.synthetic import write_synthetic_tensors  # noqa: E402

SOURCE, TARGET = "atlas_like", "cms_like"
#: float tolerance of "equal to separate training": batched matmuls and the vectorised Adam round
#: differently from nn.Linear / torch.optim.Adam, and the difference grows with the steps taken
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread, as the workflow's training jobs (and fast on a shared machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tensors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tensors")
    for task in ("sigbkg", "met"):
        write_synthetic_tensors(
            root, task, {SOURCE: 0.0, TARGET: 0.2}, sizes={"train": 240, "val": 80, "test": 40}, max_objects=6
        )
    return root


def _members(task, arch, train, val, seeds, lrs, n, pretrained=None, dann=False):
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = Net(arch, task, train.x.shape[-1], train.x.shape[-2], "tiny", dann=dann)
        state = net.state_dict()
        if pretrained is not None:
            state = {k: (pretrained[k].clone() if k in pretrained else v) for k, v in state.items()}
        rows = np.random.default_rng(seed).permutation(len(train))[:n]
        vrows = np.random.default_rng(seed).permutation(len(val))[:20]
        out += [Member(seed=seed, lr=lr, state=state, train_rows=rows, val_rows=vrows) for lr in lrs]
    return out


def _outputs(state, task, arch, mode, x, m):
    net = Net(arch, task, x.shape[-1], x.shape[-2], "tiny", dann=mode == "dann")
    net.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(x, m)


def _run(tensors, task, arch, ensemble, mode="scratch", budget=None, n=40, seeds=(0, 1), lrs=(1e-3, 1e-2)):
    train = Data.from_set(tensorio.load(tensors / task / TARGET / "train.parquet"))
    val = Data.from_set(tensorio.load(tensors / task / TARGET / "val.parquet"))
    source = Data.from_set(tensorio.load(tensors / task / SOURCE / "train.parquet"))
    pretrained = None
    if mode != "scratch":  # any fixed "pretrained" weights: another seed's random init
        torch.manual_seed(99)
        pretrained = Net(arch, task, train.x.shape[-1], train.x.shape[-2], "tiny").state_dict()
    members = _members(task, arch, train, val, seeds, lrs, n, pretrained, dann=mode == "dann")
    budget = budget or Budget(min_steps=12, max_steps=40, val_every=3, patience=2)
    return train_members(
        members,
        train,
        val,
        arch=arch,
        task=task,
        n_features=train.x.shape[-1],
        max_objects=train.x.shape[-2],
        model_size="tiny",
        budget=budget,
        batch_size=16,
        freeze_backbone=mode == "freeze",
        dann=mode == "dann",
        source=source,
        unlabelled=train,
        ensemble=ensemble,
    )


@pytest.mark.parametrize(
    "task,arch,mode",
    [
        ("sigbkg", "dnn", "scratch"),
        ("sigbkg", "gnn", "scratch"),
        ("met", "dnn", "finetune"),
        ("sigbkg", "dnn", "freeze"),
        ("met", "gnn", "dann"),
        ("sigbkg", "transformer", "dann"),
    ],
)
def test_ensemble_equals_separate_training(tensors, task, arch, mode):
    """Every member of the ensemble (own init, data order, dropout masks, Adam state, early stopping,
    best-check weights) ends where training it alone ends, within float tolerance."""
    ens = _run(tensors, task, arch, ensemble=True, mode=mode)
    val = tensorio.load(tensors / task / TARGET / "val.parquet")
    x, m = torch.from_numpy(val.x), torch.from_numpy(val.mask)
    sep = _run(tensors, task, arch, ensemble=False, mode=mode)
    assert len(ens) == len(sep) == 4
    assert len({r.steps for r in ens}) > 1 or len({r.best_step for r in ens}) > 1, (
        "members should stop or peak at different steps for the test to mean anything"
    )
    for a, b in zip(ens, sep):
        assert (a.seed, a.lr, a.steps, a.best_step, a.stop, a.checks) == (
            b.seed,
            b.lr,
            b.steps,
            b.best_step,
            b.stop,
            b.checks,
        )
        assert a.best_val_loss == pytest.approx(b.best_val_loss, rel=RTOL, abs=ATOL)
        for h, g in zip(a.history, b.history):
            assert h["val_loss"] == pytest.approx(g["val_loss"], rel=RTOL, abs=ATOL)
        # the best-check models give the same outputs (compared as outputs: a weight with no effect,
        # such as the attention's key bias, drifts on rounding noise under Adam in both runs)
        out_a, out_b = _outputs(a.state, task, arch, mode, x, m), _outputs(b.state, task, arch, mode, x, m)
        torch.testing.assert_close(out_a, out_b, rtol=RTOL, atol=ATOL)
        if mode == "freeze":
            assert all(torch.equal(a.state[k], b.state[k]) for k in a.state if k.startswith("backbone."))
        assert a.n_unlabelled_seen == b.n_unlabelled_seen == (min(240, a.steps * 16) if mode == "dann" else 0)
    # the members really are different models
    assert not torch.equal(ens[0].state["head.0.weight"], ens[2].state["head.0.weight"])


def test_a_member_does_not_depend_on_its_companions(tensors):
    """Seed 0 trained with seed 1 beside it, or alone in a smaller ensemble, gives the same member."""
    both = _run(tensors, "sigbkg", "dnn", ensemble=True, seeds=(0, 1), lrs=(1e-2,))
    alone = _run(tensors, "sigbkg", "dnn", ensemble=True, seeds=(0,), lrs=(1e-2,))
    assert both[0].steps == alone[0].steps
    torch.testing.assert_close(both[0].state["head.2.weight"], alone[0].state["head.2.weight"], rtol=RTOL, atol=ATOL)


def test_budget_min_steps_and_cap(tensors):
    """No member stops before min_steps; a cap below convergence is reported as such."""
    res = _run(
        tensors, "sigbkg", "dnn", ensemble=True, budget=Budget(min_steps=30, max_steps=60, val_every=5, patience=1)
    )
    assert all(r.steps >= 30 for r in res)
    assert all(r.steps % 5 == 0 or r.steps == 60 for r in res)
    capped = _run(
        tensors, "sigbkg", "dnn", ensemble=True, budget=Budget(min_steps=7, max_steps=7, val_every=50, patience=3)
    )
    assert all(r.stop == STOP_CAP and r.hit_cap and r.steps == 7 and r.checks == 1 for r in capped)
    early = _run(
        tensors, "sigbkg", "dnn", ensemble=True, budget=Budget(min_steps=0, max_steps=10_000, val_every=2, patience=1)
    )
    assert all(r.stop == STOP_EARLY and r.steps < 10_000 for r in early)
    with pytest.raises(Fast2FullError, match="budget"):
        Budget(min_steps=10, max_steps=5, val_every=1, patience=1)


def test_vector_adam_is_torch_adam():
    torch.manual_seed(0)
    p1, p2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    stacked = torch.nn.Parameter(torch.stack([p1.detach().clone(), p2.detach().clone()]))
    ref = [torch.optim.Adam([p1], lr=1e-2), torch.optim.Adam([p2], lr=3e-3)]
    va = VectorAdam([stacked], torch.tensor([1e-2, 3e-3]))
    for _step in range(5):
        g = torch.randn(2, 3, 4)
        for i, (p, o) in enumerate(zip((p1, p2), ref)):
            p.grad = g[i].clone()
            o.step()
        stacked.grad = g.clone()
        va.step()
    torch.testing.assert_close(stacked.detach(), torch.stack([p1.detach(), p2.detach()]), rtol=1e-6, atol=1e-7)


def test_sync_stream_passes_are_permutations():
    s = SyncStream(10, [1, 2], batch=4, wrap=False)
    first = torch.cat([s.next(), s.next(), s.next()], 1)
    assert [b for b in (4, 4, 2)] and first.shape == (2, 10)
    assert all(sorted(r.tolist()) == list(range(10)) for r in first)
    assert not torch.equal(first[0], first[1])  # own data order per member
    w = SyncStream(10, [1], batch=4, wrap=True)
    assert all(w.next().shape == (1, 4) for _ in range(5)) and w.drawn == 20


_ALLOCATOR_SCRIPT = """
import hashlib, sys
import numpy as np, torch
from fast2full import tensorio
from fast2full.models.ensemble import Budget, Data, Member, Net, train_members
from fast2full.train import keep_freed_memory, set_threads
set_threads(1)
print(keep_freed_memory())
root = sys.argv[1]
train = Data.from_set(tensorio.load(root + "/met/cms_like/train.parquet"))
val = Data.from_set(tensorio.load(root + "/met/cms_like/val.parquet"))
members = []
for seed in (0, 1):
    torch.manual_seed(seed)
    state = Net("gnn", "met", train.x.shape[-1], train.x.shape[-2], "tiny").state_dict()
    rows = np.random.default_rng(seed).permutation(len(train))[:64]
    members.append(Member(seed=seed, lr=1e-3, state=state, train_rows=rows))
res = train_members(members, train, val, arch="gnn", task="met", n_features=train.x.shape[-1],
                    max_objects=train.x.shape[-2], model_size="tiny", batch_size=16,
                    budget=Budget(min_steps=8, max_steps=8, val_every=4, patience=1))
h = hashlib.sha256()
for r in res:
    for k in sorted(r.state):
        h.update(r.state[k].numpy().tobytes())
print(h.hexdigest())
"""


def test_allocator_setting_changes_no_number(tensors, tmp_path):
    """``keep_freed_memory`` (glibc keeps freed memory for reuse: the training stage's allocator
    setting) is applied in a fresh process, says what it did, and the trained weights are bit-identical
    to those of a process with the allocator as it is (FAST2FULL_ALLOCATOR=default)."""
    import os
    import subprocess
    import sys

    out = {}
    for alloc in ("tuned", "default"):
        env = {k: v for k, v in os.environ.items() if k != "FAST2FULL_ALLOCATOR"}
        if alloc == "default":
            env["FAST2FULL_ALLOCATOR"] = "default"
        res = subprocess.run(
            [sys.executable, "-c", _ALLOCATOR_SCRIPT, str(tensors)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        out[alloc] = res.stdout.strip().splitlines()
    assert out["default"][0] == "allocator left as it is (FAST2FULL_ALLOCATOR=default)"
    if sys.platform.startswith("linux"):
        assert out["tuned"][0].startswith("allocator: freed memory kept for reuse"), out["tuned"][0]
    assert out["tuned"][1] == out["default"][1]
