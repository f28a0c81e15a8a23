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
  neighbours are recomputed in the current feature space with ``torch.cdist`` + ``topk`` on the padded
  tensors (no pyg-lib / torch-cluster needed).
* :class:`SetTransformer` — a transformer encoder over the object set with the padding mask and no
  positional encoding (the set is unordered), followed by masked mean pooling.
"""

from __future__ import annotations

import torch
from torch import nn

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

ARCHS = ("dnn", "gnn", "transformer")

#: distance added to padded neighbours so ``topk`` never prefers them over a real object
_FAR = 1.0e9


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h`` (B, N, C) over the real slots of ``mask`` (B, N); an empty event gives 0."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class DNN(nn.Module):
    """MLP on the flattened padded inputs: ReLU, dropout; masked entries zeroed."""

    def __init__(self, n_features: int, max_objects: int, hidden: list[int], dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        width = max_objects * (n_features + 1)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers)
        self.embed_dim = width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        flat = torch.cat([x * m, m], dim=-1).flatten(1)
        return self.net(flat)


class EdgeConv(nn.Module):
    """One EdgeConv block: k-NN in the current feature space, edge MLP on (h_i, h_j - h_i), masked mean
    over the neighbours, plus a linear shortcut (ParticleNet's residual)."""

    def __init__(self, c_in: int, c_out: int, k: int, dropout: float):
        super().__init__()
        self.k = k
        self.edge_mlp = nn.Sequential(nn.Linear(2 * c_in, c_out), nn.ReLU(), nn.Linear(c_out, c_out), nn.ReLU())
        self.shortcut = nn.Linear(c_in, c_out)
        self.act = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, c = h.shape
        k = min(self.k, n - 1)
        if k < 1:  # one slot: no neighbours, only the shortcut
            return self.act(self.shortcut(h)) * mask.unsqueeze(-1).to(h.dtype)
        with torch.no_grad():  # the graph is not differentiated, only the features along it
            dist = torch.cdist(h, h)
            far = (~mask).unsqueeze(1) | torch.eye(n, dtype=torch.bool, device=h.device).unsqueeze(0)
            dist = dist.masked_fill(far, _FAR)
            near = dist.topk(k, dim=-1, largest=False)  # (B, N, k)
            idx = near.indices
            # a padded slot or the node itself (ranked last, picked only when an event has <= k objects)
            nb_valid = near.values < 0.5 * _FAR
        h_j = torch.gather(h, 1, idx.reshape(b, n * k, 1).expand(-1, -1, c)).reshape(b, n, k, c)
        h_i = h.unsqueeze(2).expand(-1, -1, k, -1)
        e = self.edge_mlp(torch.cat([h_i, h_j - h_i], dim=-1))  # (B, N, k, C_out)
        w = nb_valid.unsqueeze(-1).to(h.dtype)
        agg = (e * w).sum(2) / w.sum(2).clamp(min=1.0)
        out = self.act(agg + self.shortcut(h))
        return out * mask.unsqueeze(-1).to(h.dtype)


class EdgeConvNet(nn.Module):
    """Dynamic-graph EdgeConv network (ParticleNet style) with masked mean pooling."""

    def __init__(self, n_features: int, max_objects: int, channels: list[int], k: int = 8, dropout: float = 0.1):
        super().__init__()
        blocks, c = [], n_features
        for c_out in channels:
            blocks.append(EdgeConv(c, c_out, k, dropout))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = c

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x * mask.unsqueeze(-1).to(x.dtype)
        for block in self.blocks:
            h = block(h, mask)
        return masked_mean(h, mask)


class SetTransformer(nn.Module):
    """Transformer encoder over the object set (padding mask, no positional encoding), masked pooling."""

    def __init__(self, n_features: int, max_objects: int, d_model: int = 32, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=dropout,
                                           batch_first=True, norm_first=True)
        # nested tensors would drop padded slots themselves but warn with norm_first; masking is explicit
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.embed_dim = d_model

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(x * mask.unsqueeze(-1).to(x.dtype))
        # an event with no object would give an all -inf attention row (NaN): let it attend to slot 0
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(1)
        h = self.encoder(h, src_key_padding_mask=~attend)
        return masked_mean(self.norm(h), mask)


_CLASSES: dict[str, type[nn.Module]] = {"dnn": DNN, "gnn": EdgeConvNet, "transformer": SetTransformer}


def build_backbone(arch: str, n_features: int, max_objects: int, model_size: str = "small") -> nn.Module:
    """The backbone for ``arch`` at ``model_size``; input sizes from the tensor metadata."""
    if arch not in _CLASSES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")
    if model_size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {model_size!r}; choose one of {tuple(MODEL_SIZES)}")
    return _CLASSES[arch](n_features, max_objects, **MODEL_SIZES[model_size][arch])


def n_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
