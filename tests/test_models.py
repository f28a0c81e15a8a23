"""Backbones, the task module and checkpoints: masks, freezing, gradient reversal, load_pretrained."""

import json

import numpy as np
import pytest
import torch  # noqa: E402

from fast2full.common import InputError  # noqa: E402
from fast2full.models import (  # noqa: E402
    ARCHS,
    MODEL_SIZES,
    TaskModule,
    build_backbone,
    export_model,
    grad_reverse,
    load_pretrained,
    n_params,
    save_checkpoint,
)

F, N = 5, 7


def _batch(seed=0, b=6, n=N):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, F, generator=g)
    mask = torch.rand(b, n, generator=g) > 0.4
    mask[0] = False  # an event with no object
    mask[1] = True  # an event with every slot filled
    mask[2, :] = False
    mask[2, 0] = True  # one object only
    return x, mask


def _module(arch, task, size="tiny", **kw):
    torch.manual_seed(0)
    m = TaskModule(
        build_backbone(arch, F, N, size),
        task,
        model_config={
            "arch": arch,
            "model_size": size,
            "n_features": F,
            "max_objects": N,
            "features": list("abcde"),
            "units": [""] * F,
        },
        **kw,
    ).eval()
    torch.nn.init.normal_(m.head[-1].weight)  # a residual MET head starts at zero: make outputs informative
    return m


def test_residual_met_model_starts_at_the_baseline():
    torch.manual_seed(0)
    m = TaskModule(build_backbone("gnn", F, N, "tiny"), "met")
    x, mask = _batch()
    base = torch.randn(6, 2) * 50.0
    torch.testing.assert_close(m.predict(x, mask, base), base)
    with pytest.raises(ValueError, match="baseline"):
        m.predict(x, mask)
    plain = TaskModule(build_backbone("gnn", F, N, "tiny"), "met", met_residual=False)
    assert plain.predict(x, mask).abs().sum() > 0


@pytest.mark.parametrize("task", ["sigbkg", "qg", "met"])
@pytest.mark.parametrize("arch", ARCHS)
def test_padding_values_change_nothing(arch, task):
    m = _module(arch, task)
    x, mask = _batch()
    out = m(x, mask)
    assert out.shape == ((6, 2) if task == "met" else (6,))
    assert torch.isfinite(out).all()
    x2 = x.clone()
    x2[~mask] = torch.randn(int((~mask).sum()), F) * 100.0
    torch.testing.assert_close(m(x2, mask), out)
    # real values do matter
    x3 = x.clone()
    x3[1, 0] += 3.0
    assert not torch.allclose(m(x3, mask)[1], out[1])


@pytest.mark.parametrize("arch", ["gnn", "transformer"])
def test_extra_padding_slots_change_nothing(arch):
    """Set models do not depend on N: appending padded slots leaves the output unchanged."""
    m = _module(arch, "qg")
    x, mask = _batch()
    xp = torch.cat([x, torch.randn(6, 3, F)], dim=1)
    mp = torch.cat([mask, torch.zeros(6, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(m(xp, mp), m(x, mask))


@pytest.mark.parametrize("arch", ["gnn", "transformer"])
def test_permutation_invariant(arch):
    m = _module(arch, "met")
    x, mask = _batch()
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(m(x[:, perm], mask[:, perm]), m(x, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_model_sizes_grow(arch):
    counts = [n_params(build_backbone(arch, F, N, s)) for s in MODEL_SIZES]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_unknown_arch_and_size():
    with pytest.raises(ValueError, match="unknown arch"):
        build_backbone("cnn", F, N)
    with pytest.raises(ValueError, match="unknown model size"):
        build_backbone("dnn", F, N, "huge")


def test_grad_reverse():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x * 2.0, 0.5).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -1.0))


def test_freeze_leaves_backbone_unchanged():
    m = _module("dnn", "sigbkg", freeze_backbone=True).train()
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in m.head.state_dict().items()}
    opt = m.configure_optimizers()
    x, mask = _batch()
    for _ in range(3):
        opt.zero_grad()
        m.task_loss(m(x, mask), (torch.arange(6) % 2).float()).backward()
        opt.step()
    for k, v in m.backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert any(not torch.equal(v, head_before[k]) for k, v in m.head.state_dict().items())


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_export_and_load(tmp_path, arch):
    m = _module(arch, "met")
    card = {
        "task": "met",
        "arch": arch,
        "model_size": "tiny",
        "source_domain": "atlas_like",
        "n_train": 10,
        "inputs": {"features": list("abcde"), "units": [""] * F, "max_objects": N, "n_features": F},
        "metrics": {"met_resolution": 12.5},
    }
    ckpt = tmp_path / "model.ckpt"
    save_checkpoint(m, ckpt, card)
    out = export_model(ckpt, tmp_path / "published")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.ckpt", "model_card.json"]
    published = json.loads((out / "model_card.json").read_text())
    assert published["arch"] == arch and published["source_domain"] == "atlas_like"
    assert "met" in (out / "README.md").read_text()
    x, mask = _batch()
    for src in (ckpt, out):
        loaded = load_pretrained(src)
        assert not loaded.training
        torch.testing.assert_close(loaded(x, mask), m(x, mask))
        base = torch.full((6, 2), 10.0)
        torch.testing.assert_close(loaded.predict(x, mask, base), m(x, mask) * 100.0 + base)
    dann = load_pretrained(out, dann=True)
    assert dann.domain_head is not None


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04garbage"])
def test_bad_checkpoint(tmp_path, content):
    p = tmp_path / "model.ckpt"
    p.write_bytes(content)
    with pytest.raises(InputError, match="model.ckpt"):
        load_pretrained(p)
    with pytest.raises(InputError, match="model.ckpt"):
        export_model(p, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_predict_probabilities():
    m = _module("transformer", "qg")
    x, mask = _batch()
    p = m.predict(x, mask, batch_size=4).numpy()
    assert p.shape == (6,) and np.all((p > 0) & (p < 1))


def test_nearest_neighbours_are_cdist_s():
    """The k-NN of the EdgeConv blocks (squared distances from a matmul) picks the neighbours that
    torch.cdist ranks nearest, never a padded slot or the node itself while real neighbours remain."""
    from fast2full.models.backbones import nearest_neighbours

    g = torch.Generator().manual_seed(3)
    h = torch.randn(50, 12, 7, generator=g)
    mask = torch.rand(50, 12, generator=g) > 0.3
    k = 4
    idx, valid = nearest_neighbours(h, mask, k)
    d = torch.cdist(h, h).masked_fill((~mask).unsqueeze(1) | torch.eye(12, dtype=torch.bool), float("inf"))
    ref = d.topk(k, dim=-1, largest=False)
    n_real = mask.sum(-1, keepdim=True) - mask.long()  # real neighbours of each slot
    assert torch.equal(valid, torch.arange(k).view(1, 1, k) < n_real.unsqueeze(-1))
    assert torch.equal(torch.where(valid, idx, -1), torch.where(valid, ref.indices, -1))


@pytest.mark.parametrize("members", [None, 3])
def test_fused_edge_aggregate_matches_the_composite_ops(members):
    """EdgeConv's fused edge MLP (EdgeAggregate: in-place edge tensors, hand-written backward) gives the
    values and the gradients of the composite ops it replaces (index_select, add, ReLU, linear, ReLU,
    weighted sum over the neighbours), for one model and for an ensemble, in float64; and its input
    gradients pass torch.autograd.gradcheck."""
    from fast2full.models.backbones import EdgeAggregate, linear

    g = torch.Generator().manual_seed(5)
    lead = (4, 6) if members is None else (members, 4, 6)
    k, c = 3, 5
    rows = int(np.prod(lead))
    node = torch.randn(*lead, c, generator=g, dtype=torch.float64, requires_grad=True)
    table = torch.randn(rows, c, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, rows, (*lead, k), generator=g)
    valid = torch.rand(*lead, k, generator=g) > 0.3
    w = valid.double() / valid.sum(-1, keepdim=True).clamp(min=1)
    wshape = (c, c) if members is None else (members, c, c)
    weight = torch.randn(*wshape, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(*wshape[:-1], generator=g, dtype=torch.float64, requires_grad=True)
    params = (node, table, weight, bias)

    def composite():
        e = torch.relu(node.unsqueeze(-2) + table.index_select(0, index.reshape(-1)).view(*lead, k, c))
        e = torch.relu(linear(e, weight, bias))
        return (e * w.unsqueeze(-1)).sum(-2)

    up = torch.randn(*lead, c, generator=g, dtype=torch.float64)
    ref = composite()
    ref_grads = torch.autograd.grad((ref * up).sum(), params)
    out = EdgeAggregate.apply(node, table, index, w, weight, bias)
    grads = torch.autograd.grad((out * up).sum(), params)
    torch.testing.assert_close(out, ref)
    assert any(gr.abs().sum() > 0 for gr in grads)  # the comparison is not between zeros
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(
        lambda n, t, wt, b: EdgeAggregate.apply(n, t, index, w, wt, b), params, eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("members", [None, 3])
@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("arch", ["gnn", "transformer"])
def test_set_backbones_equal_the_reference_ones(arch, size, members, legacy_backbones):
    """The engine's set backbones are the plain ones of ``bench/_legacy_backbones.py`` (the one-model loop's):
    the same outputs and weight gradients for the same weights, one model or each member of an ensemble
    (each with its own events, including an empty one, a full one, one with a single object and ones
    with fewer than k objects).  The references compute every padded slot: the GNN's edge MLP on the
    concatenated (h_i, h_j - h_i) and ``torch.cdist``; the transformer is ``nn.TransformerEncoder``.  The
    engine computes the real slots only (:class:`~fast2full.models.backbones.RealSlots`), the GNN's first
    edge layer per node with the fused edge MLP, the transformer's attention with its own backward."""
    legacy, key = legacy_backbones, legacy_backbones.engine_key
    n = 16
    refs, xs, masks = [], [], []
    for j in range(members or 1):
        torch.manual_seed(j)
        refs.append(legacy.build_legacy_backbone(arch, F, n, size).eval())
        g = torch.Generator().manual_seed(10 + j)
        x = torch.randn(6, n, F, generator=g)
        mask = torch.rand(6, n, generator=g) < torch.linspace(0.1, 0.9, 6).unsqueeze(1)
        mask[0, 0] = True  # the padding of a member's real-slot list reads slot 0: make it a real one
        mask[3], mask[1] = False, True
        mask[2, :] = False
        mask[2, 3] = True
        xs.append(x)
        masks.append(mask)
    net = build_backbone(arch, F, n, size, members=members).eval()
    states = [{key(k): v for k, v in r.state_dict().items()} for r in refs]
    net.load_state_dict(states[0] if members is None else {k: torch.stack([s[k] for s in states]) for k in states[0]})
    x, mask = (xs[0], masks[0]) if members is None else (torch.stack(xs), torch.stack(masks))
    out = net(x, mask)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    params = dict(net.named_parameters())
    for j, ref in enumerate(refs):
        ref_out = ref(xs[j], masks[j])
        (ref_out * torch.linspace(-1, 1, ref_out.shape[-1])).sum().backward()
        torch.testing.assert_close(out if members is None else out[j], ref_out, atol=1e-5, rtol=1e-4)
        ref_params = dict(ref.named_parameters())
        assert sorted(params) == sorted(key(k) for k in ref_params)
        for name, q in ref_params.items():
            p = params[key(name)]
            torch.testing.assert_close(p.grad if members is None else p.grad[j], q.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_self_attention_matches_torch_sdpa(heads):
    """The hand-written attention core gives ``F.scaled_dot_product_attention``'s outputs and gradients
    (float64 gradcheck too), with keys masked by a -inf bias."""
    from fast2full.models.backbones import SelfAttention

    g = torch.Generator().manual_seed(heads)
    rows, n, dh = 5, 7, 3
    qkv = torch.randn(rows, n, 3 * heads * dh, generator=g, dtype=torch.float64, requires_grad=True)
    keep = torch.rand(rows, n, generator=g) < 0.6
    keep[:, 0] = True
    bias = torch.zeros(rows, n, dtype=torch.float64).masked_fill_(~keep, float("-inf"))
    out = SelfAttention.apply(qkv, bias, heads)
    q, k, v = (t.transpose(1, 2) for t in qkv.view(rows, n, 3, heads, dh).unbind(2))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias.view(rows, 1, 1, n))
    ref = ref.transpose(1, 2).reshape(rows * n, heads * dh)
    torch.testing.assert_close(out, ref)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * w).sum(), qkv)
    (ref_grad,) = torch.autograd.grad((ref * w).sum(), qkv)
    torch.testing.assert_close(grad, ref_grad)
    assert torch.autograd.gradcheck(lambda t: SelfAttention.apply(t, bias, heads), (qkv,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_engine_dropout_masks(dtype):
    """The engine's dropout mask is ``(u >= threshold) / keep`` for the 16-bit uniforms u of its member's
    generator (four per 64-bit word), dropping ~p of the units; with ``draw`` rows, member m's mask is
    the start of a longer draw and its generator advances by the full draw."""
    from fast2full.models.backbones import MASK_BITS, Dropout

    ctx = {"ensemble": True, "generators": [torch.Generator().manual_seed(s) for s in (1, 2)]}
    drop = Dropout(0.25, ctx).train()
    x = torch.ones(2, 300, 8, dtype=dtype)
    mask = drop(x, draw=500) / x
    levels = 1 << MASK_BITS
    threshold = round(0.25 * levels) - levels // 2
    for m, seed in enumerate((1, 2)):
        words = torch.empty(-(-500 * 8 // 4), dtype=torch.int64)
        words.random_(-(1 << 63), None, generator=torch.Generator().manual_seed(seed))
        u = words.view(torch.int16)[: 300 * 8].view(300, 8)
        expected = (u >= threshold).to(dtype) * (levels / (levels - round(0.25 * levels)))
        torch.testing.assert_close(mask[m], expected, rtol=0, atol=0)
        # the generator moved past the whole draw of 500 rows
        nxt = torch.empty(1, dtype=torch.int64).random_(-(1 << 63), None, generator=ctx["generators"][m])
        ref = torch.Generator().manual_seed(seed)
        torch.empty(words.shape, dtype=torch.int64).random_(-(1 << 63), None, generator=ref)
        assert nxt == torch.empty(1, dtype=torch.int64).random_(-(1 << 63), None, generator=ref)
    assert 0.2 < float((mask == 0).to(torch.float64).mean()) < 0.3
    assert abs(float(mask.mean()) - 1.0) < 0.06


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_at_least_is_the_comparison(dtype):
    """The dropout mask's arithmetic comparison equals ``u >= threshold`` for every 16-bit value."""
    from fast2full.models.backbones import at_least

    u = torch.arange(-(1 << 15), 1 << 15).to(torch.int16)
    for threshold in (-(1 << 15), -19661, -1, 0, 1, 6553, (1 << 15) - 1):
        torch.testing.assert_close(at_least(u, threshold, dtype), (u >= threshold).to(dtype), rtol=0, atol=0)


@pytest.mark.parametrize("members", [None, 2])
def test_gnn_first_neighbours_found_once_give_the_same_function(members):
    """The GNN's first-block k-NN found once per event (``first_neighbours``, as the training engine does)
    and gathered for a batch give the outputs and gradients of searching them in the forward pass."""
    states = []
    for j in range(members or 1):
        torch.manual_seed(j)
        states.append(build_backbone("gnn", F, N, "small").state_dict())
    net = build_backbone("gnn", F, N, "small", members=members).train(False)
    net.load_state_dict(states[0] if members is None else {k: torch.stack([s[k] for s in states]) for k in states[0]})
    events, mask = _batch(b=12)
    nb = net.first_neighbours(events, mask)
    assert nb.dtype == torch.int16 and nb.shape == (12, N, min(MODEL_SIZES["small"]["gnn"]["k"], N - 1))
    assert (nb[0] == -1).all()  # the empty event has no real neighbours
    rows = torch.tensor([[3, 0, 7, 1, 2], [11, 5, 1, 2, 9]])[: members or 1]
    x, m, b = events[rows], mask[rows], nb[rows]
    if members is None:
        x, m, b = x[0], m[0], b[0]
    outs, grads = [], []
    for given in (None, b):
        net.zero_grad()
        out = net(x, m) if given is None else net(x, m, given)
        out.square().sum().backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in net.parameters()])
    assert (outs[0].reshape(members or 1, -1).abs().sum(1) > 0).all()  # every member computes something
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    for g1, g0 in zip(grads[1], grads[0]):
        torch.testing.assert_close(g1, g0, rtol=0, atol=0)
