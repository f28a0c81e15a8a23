"""Backbones: plain ``nn.Module``s mapping a padded object set to one embedding per event.

Every backbone takes ``x`` (B, N, F) — normalised features, padded slots arbitrary — and ``mask``
(B, N) bool (True = real object) and returns (B, ``embed_dim``).  Padded slots never influence the
output: they are zeroed on entry, excluded from neighbour searches and attention, and left out of
every pooling.  The input size (N, F) comes from the tensor metadata, the widths from
:data:`MODEL_SIZES` (config ``training.model_size``).

* :class:`DNN` — an MLP on the flattened padded inputs (features zeroed where masked, the mask
  appended as one extra input per slot so a real zero and a padded slot differ).
* :class:`EdgeConvNet` — a dynamic-graph CNN in the style of ParticleNet (Qu & Gouskos,
  arXiv:1902.08570) / DGCNN (Wang et al., arXiv:1801.07829): EdgeConv blocks whose k nearest
  neighbours are recomputed in the current feature space (:func:`nearest_neighbours`: squared distances
  from one batched matmul, ``topk``) on the padded tensors (no pyg-lib / torch-cluster needed).
* :class:`SetTransformer` — a transformer encoder over the object set with the padding mask and no
  positional encoding (the set is unordered), followed by masked mean pooling.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from fast2full.plan import ARCHS

#: widths per model size and architecture (config ``training.model_size``)
MODEL_SIZES: dict[str, dict[str, dict]] = {
    "tiny": {
        "dnn": {"hidden": [32, 32], "dropout": 0.1},
        "gnn": {"channels": [16, 16], "k": 4, "dropout": 0.1},
        "transformer": {"d_model": 16, "heads": 2, "layers": 1, "dropout": 0.1},
    },
    "small": {
        "dnn": {"hidden": [64, 64, 64], "dropout": 0.1},
        "gnn": {"channels": [32, 32, 64], "k": 8, "dropout": 0.1},
        "transformer": {"d_model": 32, "heads": 4, "layers": 2, "dropout": 0.1},
    },
    "base": {
        "dnn": {"hidden": [256, 256, 128], "dropout": 0.1},
        "gnn": {"channels": [64, 128, 128], "k": 16, "dropout": 0.1},
        "transformer": {"d_model": 64, "heads": 4, "layers": 4, "dropout": 0.1},
    },
}


#: distance added to padded neighbours so ``topk`` never prefers them over a real object
_FAR = 1.0e9


# ---- layers that also run as an ensemble -----------------------------------------------------------
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` for one model (weight (out, in)) or an ensemble (weight (M, out, in),
    ``x`` (M, ..., in): member m's rows meet member m's weights, one batched matmul for all members)."""
    if weight.dim() == 2:
        return F.linear(x, weight, bias)
    lead = x.shape
    x3 = x.reshape(lead[0], -1, lead[-1])
    out = (
        torch.bmm(x3, weight.transpose(1, 2))
        if bias is None
        else torch.baddbmm(bias.unsqueeze(1), x3, weight.transpose(1, 2))
    )
    return out.reshape(*lead[:-1], weight.shape[1])


class EnsembleLinear(nn.Module):
    """``nn.Linear`` of M independent members: weight (M, out, in), bias (M, out); the same parameter
    names as ``nn.Linear``, so a member's slice is an ordinary state dict entry.  Never initialised here:
    the weights are the stacked initial states of M single models (see :mod:`fast2full.models.ensemble`)."""

    def __init__(self, members: int, d_in: int, d_out: int):
        super().__init__()
        self.in_features, self.out_features = d_in, d_out
        self.weight = nn.Parameter(torch.zeros(members, d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(members, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class EnsembleLayerNorm(nn.Module):
    """``nn.LayerNorm`` of M members (weight/bias (M, C)) on inputs (M, ..., C)."""

    def __init__(self, members: int, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(members, d))
        self.bias = nn.Parameter(torch.zeros(members, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return torch.addcmul(
            self.bias.view(shape), F.layer_norm(x, x.shape[-1:], eps=self.eps), self.weight.view(shape)
        )


#: bits of randomness per dropout decision when the engine draws the masks (four decisions per 64-bit word)
MASK_BITS = 16


def at_least(u: torch.Tensor, threshold: int, dtype: torch.dtype) -> torch.Tensor:
    """``(u >= threshold)`` as 0/1 in ``dtype`` for 16-bit integers ``u``, by arithmetic: int16 -> float
    is exact and, for integers, ``clamp(u - threshold + 1, 0, 1)`` is 1 where ``u >= threshold`` and 0
    elsewhere.  The same values, 3-4x faster on the CPU than the int16 compare and the bool -> float
    conversion (a dropout mask)."""
    exact = torch.float64 if dtype == torch.float64 else torch.float32
    return u.to(exact).sub_(threshold - 1).clamp_(0.0, 1.0).to(dtype)


class Dropout(nn.Module):
    """Dropout whose masks come from per-member generators when an ensemble engine sets them.

    Without generators (a single model used on its own, e.g. fine-tuned by a user's ``Trainer``) it is
    ``F.dropout``.  With ``generators`` set (one ``torch.Generator`` per member; a shared list that the
    engine updates), member m's mask is drawn from its own generator, so a member's training does not
    depend on which other members share its ensemble: training it alone gives the same numbers.

    Engine masks use :data:`MASK_BITS` random bits per decision: each member draws 64-bit words
    (``random_`` over the full int64 range), read as four 16-bit uniforms; a unit is dropped when its
    uniform is below ``round(p * 2**16)``.  So the drop probability is ``p`` rounded to a multiple of
    2**-16 (0.1 -> 0.100006) and the kept units are scaled by ``1 / (1 - that probability)`` (the
    output's expectation is the input, as for ``F.dropout``).  Drawing 16 instead of 32 bits per
    decision and packing four per word makes the masks about 3x cheaper than ``torch.rand`` — they
    were a quarter of a transformer step.
    """

    def __init__(self, p: float, context: dict | None = None):
        super().__init__()
        self.p = float(p)
        self.context = context if context is not None else {}
        levels = 1 << MASK_BITS
        self._drop_below = round(self.p * levels) - levels // 2  # threshold on the signed 16-bit value
        self._scale = levels / max(levels - round(self.p * levels), 1)

    def _mask(self, x: torch.Tensor, gens: list[torch.Generator], draw: int | None) -> torch.Tensor:
        """The engine's mask for ``x``, kept units at the inverse keep probability, dropped ones 0.

        Member m's mask is the first values of a draw of ``draw`` rows of ``x.shape[-1]`` units from its
        generator (default: all of member m's rows), so rows at the end of ``x`` that only pad one member
        to its companions' length (:class:`RealSlots`) do not change the stream of the others."""
        rows = gens if self.context.get("ensemble") else gens[:1]
        n = x.numel() // len(rows)
        total = n if draw is None else max(n, draw * x.shape[-1])
        words = torch.empty(len(rows), -(-total // 4), dtype=torch.int64, device=x.device)
        for row, g in zip(words, rows):
            row.random_(-(1 << 63), None, generator=g)
        u = words.view(torch.int16)[:, :n].reshape(x.shape)
        return at_least(u, self._drop_below, x.dtype).mul_(self._scale)

    def forward(self, x: torch.Tensor, draw: int | None = None) -> torch.Tensor:
        """Dropout of ``x``; ``draw``: rows drawn per member for the engine's masks (see ``_mask``)."""
        if not self.training or self.p == 0.0:
            return x
        gens = self.context.get("generators")
        if not gens:
            return F.dropout(x, self.p, True)
        return x * self._mask(x, gens, draw)

    def residual(self, h: torch.Tensor, x: torch.Tensor, draw: int | None = None) -> torch.Tensor:
        """``h + self(x)``, with the engine's mask as one ``addcmul`` (one pass over the tensor, not two)."""
        gens = self.context.get("generators")
        if not self.training or self.p == 0.0 or not gens:
            return h + self(x)
        return torch.addcmul(h, x, self._mask(x, gens, draw))


def _linear(d_in: int, d_out: int, members: int | None) -> nn.Module:
    return nn.Linear(d_in, d_out) if members is None else EnsembleLinear(members, d_in, d_out)


def _layernorm(d: int, members: int | None) -> nn.Module:
    return nn.LayerNorm(d) if members is None else EnsembleLayerNorm(members, d)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h`` (..., N, C) over the real slots of ``mask`` (..., N); an empty event gives 0."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(-2) / m.sum(-2).clamp(min=1.0)


class DNN(nn.Module):
    """MLP on the flattened padded inputs: ReLU, dropout; masked entries zeroed."""

    def __init__(
        self,
        n_features: int,
        max_objects: int,
        hidden: list[int],
        dropout: float = 0.1,
        members: int | None = None,
        context: dict | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = max_objects * (n_features + 1)
        for h in hidden:
            layers += [_linear(width, h, members), nn.ReLU(), Dropout(dropout, context)]
            width = h
        self.net = nn.Sequential(*layers)
        self.embed_dim = width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        flat = torch.cat([x * m, m], dim=-1).flatten(-2)
        return self.net(flat)


@torch.no_grad()  # the graph is not differentiated, only the features along it
def nearest_neighbours(
    h: torch.Tensor, mask: torch.Tensor, k: int, rows: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest other real slots of every slot: indices (L, N, k) into N, and whether each is a
    real neighbour (False: a padded slot or the node itself, ranked last, picked only when an event has
    <= k objects).  ``h`` (L, N, C), ``mask`` (L, N).  ``rows`` (any shape): only those slots (flat
    indices into the L * N slots), indices and flags shaped (*rows.shape, k).

    Squared distances as ``|a|^2 + |b|^2 - 2 a.b`` (one batched matmul, 5x faster than ``torch.cdist``
    for these sizes); the k smallest squared distances are the k nearest neighbours."""
    n = h.shape[-2]
    sq = (h * h).sum(-1)
    dist = torch.baddbmm(sq.unsqueeze(-1) + sq.unsqueeze(-2), h, h.transpose(1, 2), alpha=-2.0)
    far = (~mask).unsqueeze(1) | torch.eye(n, dtype=torch.bool, device=h.device).unsqueeze(0)
    dist = dist.masked_fill_(far, _FAR)
    if rows is not None:
        dist = dist.view(-1, n).index_select(0, rows.reshape(-1)).view(*rows.shape, n)
    near = dist.topk(k, dim=-1, largest=False)
    return near.indices, near.values < 0.5 * _FAR


def _relu_backward_(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """ReLU's backward in place: ``grad`` zeroed where the ReLU's output ``out`` is not positive."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=grad)


class EdgeAggregate(torch.autograd.Function):
    """The edge MLP of an EdgeConv block after its (per-node) first linear layer, fused:

    ``agg = sum_j w_ij relu(W2 relu(node_i + nbr_j) + b2)`` over the k neighbours j of every node i, with
    ``nbr_j = table[index]`` (the neighbour rows gathered from the flattened node table) and ``w`` the
    neighbour weights (1/count on valid edges, 0 on the others; not differentiated).

    The same function as the composite ops (index_select, add, ReLU, linear, ReLU, multiply, sum) and
    the same gradients to float rounding (``tests/test_models.py``), but the edge tensors (..., N, k, C)
    — the largest tensors of the GNN and memory-bound on the CPU — are written once and then updated
    in place in both passes, where autograd would allocate a new one per op and run ReLU's backward
    out of place.  Two edge tensors are kept for the backward pass, as autograd keeps them.
    """

    @staticmethod
    def forward(ctx, node, table, index, w, weight, bias):
        # node (..., N, C), table (R, C), index (..., N, k) rows of table, w (..., N, k); weight (C, C) or (M, C, C)
        k, c = index.shape[-1], table.shape[-1]
        e1 = table.index_select(0, index.reshape(-1)).view(*node.shape[:-1], k, c)
        e1.add_(node.unsqueeze(-2)).relu_()
        e2 = linear(e1, weight, bias).relu_()
        e2.mul_(w.unsqueeze(-1))  # w >= 0, so e2 * w > 0 exactly where the ReLU passed and the edge counts
        ctx.save_for_backward(e1, e2, index, w, weight)
        ctx.n_rows = table.shape[0]
        return e2.sum(-2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        e1, e2w, index, w, weight = ctx.saved_tensors
        c_in, c_out = e1.shape[-1], e2w.shape[-1]
        g2 = _relu_backward_(w.unsqueeze(-1) * grad.unsqueeze(-2), e2w)  # (..., N, k, C_out)
        if weight.dim() == 2:
            g2f, e1f = g2.reshape(-1, c_out), e1.reshape(-1, c_in)
            grad_weight, grad_bias = g2f.t().mm(e1f), g2f.sum(0)
            g1 = g2f.mm(weight)
        else:
            mem = weight.shape[0]
            g2f, e1f = g2.reshape(mem, -1, c_out), e1.reshape(mem, -1, c_in)
            grad_weight, grad_bias = torch.bmm(g2f.transpose(1, 2), e1f), g2f.sum(1)
            g1 = torch.bmm(g2f, weight)
        g1 = _relu_backward_(g1.view(e1.shape), e1)
        grad_node = g1.sum(-2)
        grad_table = torch.zeros(ctx.n_rows, c_in, dtype=g1.dtype, device=g1.device)
        grad_table.index_add_(0, index.reshape(-1), g1.reshape(-1, c_in))
        return grad_node, grad_table, None, None, grad_weight, grad_bias


class RealSlots:
    """The real (unmasked) slots of a padded batch, listed per member: where the per-object work is done
    (a padded slot's output is masked or pooled away, so it is never computed).

    ``mask`` (..., B, N) with lead (M, B) for an ensemble or (B,) for one model.  ``rows`` (G, R): for
    each of the G groups (members; 1 for one model) the flat slot index (into the G * B * N slots) of
    its real slots in order, padded to the largest group's count R (the padding reads slot 0 and is
    written nowhere: ``dest`` sends it to a spare row); ``real`` (G, R) False on that padding;
    ``compact`` (G * B * N,) the compact row of every slot (0 for a padded one); ``event_start`` (G, R, 1)
    the flat index of each listed slot's event's first slot.  Built once per forward
    pass and shared by every block (the mask does not change between blocks).  ``slots_per_group`` =
    B * N, what a dropout layer draws per member whatever the number of real slots, so that a member's
    masks do not depend on its companions.
    """

    def __init__(self, mask: torch.Tensor, ensemble: bool):
        self.groups = mask.shape[0] if ensemble else 1
        self.shape = mask.shape
        flat = mask.reshape(self.groups, -1)  # (G, B * N)
        per = self.slots_per_group = flat.shape[1]
        counts = flat.sum(1)
        self.width = max(int(counts.max()), 1)
        pos = flat.cumsum(1) - 1  # compact position of each real slot in its group
        col = torch.where(flat, pos, self.width)  # padded slots go to an overflow column, dropped below
        local = torch.zeros(self.groups, self.width + 1, dtype=torch.long, device=mask.device)
        local.scatter_(1, col, torch.arange(per, device=mask.device).expand_as(flat))
        self.real = torch.arange(self.width, device=mask.device) < counts.unsqueeze(1)  # (G, R)
        flat_rows = local[:, : self.width] + torch.arange(self.groups, device=mask.device).unsqueeze(1) * per
        self.rows = flat_rows.masked_fill(~self.real, 0).reshape(-1)  # padding: read slot 0
        self.dest = flat_rows.masked_fill(~self.real, self.groups * per).reshape(-1)  # padding: a spare row
        # the compact row (into G * R) of every slot; a padded slot points at row 0
        compact = torch.zeros(self.groups * per + 1, dtype=torch.long, device=mask.device)
        self.compact = compact.index_copy_(0, self.dest, torch.arange(self.dest.numel(), device=mask.device))[:-1]
        # the flat index of the first slot of each listed slot's event, (G, R, 1): slot j of that event is
        # event_start + j (the neighbour search's per-event indices into the flat slots)
        n = mask.shape[-1]
        self.event_start = (torch.div(self.rows, n, rounding_mode="floor") * n).view(self.groups, -1, 1)

    def take(self, t: torch.Tensor) -> torch.Tensor:
        """Rows of ``t`` (padded, flattened to (slots, C)) at the real slots: (G, R, C)."""
        c = t.shape[-1]
        return t.reshape(-1, c).index_select(0, self.rows).view(self.groups, self.width, c)

    def put(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (G, R, C) at the real slots of a padded zero tensor (..., B, N, C) (the padding
        rows of ``values`` are dropped, and get no gradient)."""
        return _Put.apply(values, self).view(*self.shape, values.shape[-1])


class _Put(torch.autograd.Function):
    """:meth:`RealSlots.put`: the compact rows written into a zero tensor of all slots (plus a spare row
    that takes the padding rows, dropped), in place; backward reads the real slots' rows and gives the
    padding rows no gradient.  The same numbers as ``new_zeros(...).index_add(...)[:-1]`` under autograd
    without that form's copy of the padded tensor (out-of-place ``index_add``) and its slice's
    zero-filled gradient: 2-3x less time in the put itself, about 1.5 % of a `small` transformer step."""

    @staticmethod
    def forward(ctx, values, slots):
        c = values.shape[-1]
        out = values.new_zeros(slots.groups * slots.slots_per_group + 1, c)
        out.index_add_(0, slots.dest, values.reshape(-1, c))
        ctx.slots = slots
        return out[:-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        slots = ctx.slots
        c = grad.shape[-1]
        g = grad.reshape(-1, c).index_select(0, slots.rows).view(slots.groups, slots.width, c)
        return g.masked_fill_(~slots.real.unsqueeze(-1), 0.0), None


class EdgeConv(nn.Module):
    """One EdgeConv block: k-NN in the current feature space, edge MLP on (h_i, h_j - h_i), masked mean
    over the neighbours, plus a linear shortcut (ParticleNet's residual).

    The edge MLP's first layer is linear, so it is evaluated per node and gathered per edge:
    ``W [h_i, h_j - h_i] + b = (W_a - W_b) h_i + b + W_b h_j`` (W = [W_a | W_b]) — the same function as
    the concatenated form (up to float rounding) at 1/k of its cost.  The block works on the real slots
    only (:class:`RealSlots`; inputs and outputs (G, R, C)): a padded slot's output would be masked to
    zero, so its neighbours, edge MLP, shortcut and activation are never computed (the same function;
    the work scales with the objects, not the padded width).  Only the neighbour search sees the padded
    per-event layout.
    """

    def __init__(
        self, c_in: int, c_out: int, k: int, dropout: float, members: int | None = None, context: dict | None = None
    ):
        super().__init__()
        self.k, self.c_in = k, c_in
        self.edge_mlp = nn.Sequential(
            _linear(2 * c_in, c_out, members), nn.ReLU(), _linear(c_out, c_out, members), nn.ReLU()
        )
        self.shortcut = _linear(c_in, c_out, members)
        self.drop = Dropout(dropout, context)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, slots: RealSlots, neighbours: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h`` (G, R, C): the features of the real slots ``slots`` of the padded ``mask``; ``neighbours``
        (..., N, k): their k-NN given (:meth:`EdgeConvNet.first_neighbours`), else searched here."""
        n, c = mask.shape[-1], h.shape[-1]
        k = min(self.k, n - 1)
        if k < 1:  # one slot: no neighbours, only the shortcut
            return self.activate(self.shortcut(h), slots)
        if neighbours is None:
            padded = slots.put(h).view(-1, n, c)  # zeros at the padded slots
            near_idx, nb_valid = nearest_neighbours(padded, mask.reshape(-1, n), k, slots.rows.view(slots.groups, -1))
        else:
            near = neighbours.reshape(-1, k).index_select(0, slots.rows).view(slots.groups, -1, k)
            near_idx, nb_valid = near.clamp(min=0).long(), near >= 0
        nb_valid &= slots.real.unsqueeze(-1)  # (G, R, k)
        first = self.edge_mlp[0]
        w_a, w_b = first.weight[..., :c], first.weight[..., c:]
        node = linear(h, w_a - w_b, first.bias)  # (G, R, C_out): the h_i part and the bias
        nbr = linear(h, w_b)  # (G, R, C_out): the h_j part, gathered along the edges
        c_out = nbr.shape[-1]
        # each neighbour's row in the compact (G * R, C_out) table: one index_select instead of a gather
        index = slots.compact[near_idx + slots.event_start]
        # masked mean over the valid neighbours (weights 1/count on valid edges, 0 on the others)
        w = nb_valid.to(h.dtype)
        w = w / w.sum(-1, keepdim=True).clamp(min=1.0)
        second = self.edge_mlp[2]
        agg = EdgeAggregate.apply(node, nbr.reshape(-1, c_out), index, w, second.weight, second.bias)
        return self.activate(agg + self.shortcut(h), slots)

    def activate(self, h: torch.Tensor, slots: RealSlots) -> torch.Tensor:
        """ReLU and dropout (a member's masks drawn for all its slots, so they do not depend on its companions)."""
        return self.drop(torch.relu(h), slots.slots_per_group)


class EdgeConvNet(nn.Module):
    """Dynamic-graph EdgeConv network (ParticleNet style) with masked mean pooling."""

    def __init__(
        self,
        n_features: int,
        max_objects: int,
        channels: list[int],
        k: int = 8,
        dropout: float = 0.1,
        members: int | None = None,
        context: dict | None = None,
    ):
        super().__init__()
        blocks, c = [], n_features
        for c_out in channels:
            blocks.append(EdgeConv(c, c_out, k, dropout, members, context))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = c
        self.ensemble = members is not None

    def forward(self, x: torch.Tensor, mask: torch.Tensor, neighbours: torch.Tensor | None = None) -> torch.Tensor:
        """``neighbours``: the first block's k-NN of these events (:meth:`first_neighbours`), else searched."""
        slots = RealSlots(mask, self.ensemble)
        h = slots.take(x)  # (G, R, F): the real slots only
        for i, block in enumerate(self.blocks):
            h = block(h, mask, slots, neighbours if i == 0 else None)
        return masked_mean(slots.put(h), mask)

    @torch.no_grad()
    def first_neighbours(self, x: torch.Tensor, mask: torch.Tensor, chunk: int = 4096) -> torch.Tensor | None:
        """The first block's k nearest neighbours of every slot of the events ``x`` (R, N, F), ``mask``
        (R, N): (R, N, k) int16 slot indices, -1 where the neighbour is not a real one (a padded slot or
        the node itself).  They depend on the inputs only (the first block searches the masked inputs),
        so the training engine finds them once per event, not once per step; passed to :meth:`forward`
        for a batch of these events they give the same function.  None when the block has no neighbours."""
        n = x.shape[-2]
        k = min(self.blocks[0].k, n - 1)
        if k < 1:
            return None
        out = []
        for i in range(0, len(x), chunk):
            xs, ms = x[i : i + chunk], mask[i : i + chunk]
            idx, valid = nearest_neighbours(xs * ms.unsqueeze(-1).to(xs.dtype), ms, k)
            out.append(idx.masked_fill_(~valid, -1).to(torch.int16))
        return torch.cat(out) if out else torch.empty(0, n, k, dtype=torch.int16, device=x.device)


class SelfAttention(torch.autograd.Function):
    """The core of multi-head self-attention, ``softmax(q k^T / sqrt(dh) + bias) v`` per head, with a
    hand-written backward: ``qkv`` (L, N, 3 * H * dh) as ``in_proj`` writes it (q, k, v, each head-major),
    ``key_bias`` (L, N) added to every query's scores; returns (L * N, H * dh).

    Each head's q, k and v are read in place as strided (L, N, dh) matrices by ``baddbmm`` / ``bmm``
    (scale and key bias fused into the score matmul), where ``torch.matmul`` on the (L, H, N, dh) views
    copies q, k and v first and its backward copies again: 1.4x faster forward and backward at the
    `tiny` / `small` shapes, the same numbers to float rounding (``tests/test_models.py``)."""

    @staticmethod
    def forward(ctx, qkv, key_bias, heads):
        rows, n = qkv.shape[:2]
        t = qkv.view(rows, n, 3, heads, -1)
        scale = t.shape[-1] ** -0.5
        bias = key_bias.view(rows, 1, n)
        probs, outs = [], []
        for h in range(heads):
            p = torch.baddbmm(bias, t[:, :, 0, h], t[:, :, 1, h].transpose(1, 2), alpha=scale).softmax(-1)
            probs.append(p)
            outs.append(torch.bmm(p, t[:, :, 2, h]))
        ctx.save_for_backward(qkv, *probs)
        ctx.heads = heads
        return torch.stack(outs, 2).view(rows * n, -1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        qkv, *probs = ctx.saved_tensors
        rows, n = qkv.shape[:2]
        t = qkv.view(rows, n, 3, ctx.heads, -1)
        scale = t.shape[-1] ** -0.5
        grad = grad.view(rows, n, ctx.heads, -1)
        gq, gk, gv = [], [], []
        for h, p in enumerate(probs):
            g = grad[:, :, h]
            gv.append(torch.bmm(p.transpose(1, 2), g))
            gs = torch._softmax_backward_data(torch.bmm(g, t[:, :, 2, h].transpose(1, 2)), p, -1, p.dtype)
            gq.append(torch.bmm(gs, t[:, :, 1, h]).mul_(scale))
            gk.append(torch.bmm(gs.transpose(1, 2), t[:, :, 0, h]).mul_(scale))
        return torch.stack(gq + gk + gv, 2).view(qkv.shape), None, None  # (L, N, 3 * H, dh): q, k, v


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer (as ``nn.TransformerEncoderLayer(norm_first=True)``, ReLU):
    ``h + drop(attn(norm1(h)))`` then ``h + drop(linear2(drop(relu(linear1(norm2(h))))))``; written out
    so that it also runs as an ensemble.  Attention is written out as ``softmax(q k^T / sqrt(dh) + bias) v``
    with two matmuls batched over (members x events, heads), the padding mask as an additive -inf
    bias, and no dropout on the attention weights (drawing that mask cost a quarter of a step).  For
    these tiny matrices (N <= a few tens, dh = d_model / heads) that is about 30 % faster, forward
    plus backward, than ``F.scaled_dot_product_attention``'s CPU kernel, and gives the same numbers to
    float rounding."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        d_ff: int,
        dropout: float,
        members: int | None = None,
        context: dict | None = None,
    ):
        super().__init__()
        self.heads = heads
        self.in_proj = _linear(d_model, 3 * d_model, members)
        self.out_proj = _linear(d_model, d_model, members)
        self.linear1, self.linear2 = _linear(d_model, d_ff, members), _linear(d_ff, d_model, members)
        self.norm1, self.norm2 = _layernorm(d_model, members), _layernorm(d_model, members)
        self.drop1, self.drop2, self.drop_ff = (Dropout(dropout, context) for _ in range(3))

    def attention(self, h: torch.Tensor, key_bias: torch.Tensor, slots: RealSlots) -> torch.Tensor:
        """Multi-head self-attention of the real slots ``h`` (G, R, d); ``key_bias`` (..., N): 0 on the keys
        attended, -inf on the others.  Queries, keys and values are projected for the real slots and placed
        in the padded layout (zeros elsewhere) for the per-event matmuls."""
        n = key_bias.shape[-1]
        qkv = slots.put(self.in_proj(h)).view(-1, n, 3 * h.shape[-1])  # (L, N, 3d), zeros at padded slots
        return self.out_proj(slots.take(SelfAttention.apply(qkv, key_bias.reshape(-1, n), self.heads)))

    def forward(self, h: torch.Tensor, key_bias: torch.Tensor, slots: RealSlots) -> torch.Tensor:
        draw = slots.slots_per_group
        h = self.drop1.residual(h, self.attention(self.norm1(h), key_bias, slots), draw)
        ff = self.linear2(self.drop_ff(torch.relu(self.linear1(self.norm2(h))), draw))
        return self.drop2.residual(h, ff, draw)


class SetTransformer(nn.Module):
    """Transformer encoder over the object set (padding mask, no positional encoding), masked pooling."""

    def __init__(
        self,
        n_features: int,
        max_objects: int,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        members: int | None = None,
        context: dict | None = None,
    ):
        super().__init__()
        self.embed = _linear(n_features, d_model, members)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, heads, 2 * d_model, dropout, members, context) for _ in range(layers)
        )
        self.norm = _layernorm(d_model, members)
        self.embed_dim = d_model
        self.ensemble = members is not None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        slots = RealSlots(mask, self.ensemble)
        h = self.embed(slots.take(x))  # (G, R, d): the real slots only
        # an event with no object would give an all -inf attention row (NaN): let it attend to slot 0
        attend = mask.clone()
        attend[..., 0] |= ~mask.any(-1)
        key_bias = torch.zeros(attend.shape, dtype=h.dtype, device=h.device).masked_fill_(~attend, float("-inf"))
        for layer in self.layers:
            h = layer(h, key_bias, slots)
        return masked_mean(slots.put(self.norm(h)), mask)


_CLASSES: dict[str, type[nn.Module]] = {"dnn": DNN, "gnn": EdgeConvNet, "transformer": SetTransformer}


def build_backbone(
    arch: str,
    n_features: int,
    max_objects: int,
    model_size: str = "small",
    members: int | None = None,
    context: dict | None = None,
) -> nn.Module:
    """The backbone for ``arch`` at ``model_size``; input sizes from the tensor metadata.

    ``members``: an ensemble of that many independent models (inputs (M, B, N, F)); ``context``: the
    dict shared by its :class:`Dropout` layers (per-member generators, set by the ensemble engine).
    """
    if arch not in _CLASSES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")
    if model_size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {model_size!r}; choose one of {tuple(MODEL_SIZES)}")
    return _CLASSES[arch](n_features, max_objects, **MODEL_SIZES[model_size][arch], members=members, context=context)


def n_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
