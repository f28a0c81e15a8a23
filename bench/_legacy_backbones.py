"""Today's one-model baseline for bench/bench_train.py: the backbones as they were before the ensemble
engine (fast2full main before this change: EdgeConv with the edge MLP on concatenated (h_i, h_j - h_i)
and a gather; ``nn.TransformerEncoder`` with attention-weight dropout).  Same functions and sizes as
the current backbones, kept here only so the benchmark measures the speed-up against the loop the
training stage ran before, in the same run.  Not used by the workflow."""

import torch
from torch import nn

from fast2full.models.backbones import DNN, MODEL_SIZES, masked_mean

_FAR = 1.0e9


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

    def __init__(
        self,
        n_features: int,
        max_objects: int,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
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


_CLASSES = {"dnn": DNN, "gnn": EdgeConvNet, "transformer": SetTransformer}


def build_legacy_backbone(arch: str, n_features: int, max_objects: int, model_size: str = "small") -> nn.Module:
    return _CLASSES[arch](n_features, max_objects, **MODEL_SIZES[model_size][arch])


def engine_key(legacy_key: str) -> str:
    """The engine backbone's name of one of these backbones' parameters (``nn.TransformerEncoder``'s
    ``encoder.layers.i.self_attn.in_proj_weight`` is ``layers.i.in_proj.weight``; the others are equal)."""
    key = legacy_key.replace("encoder.layers.", "layers.").replace("self_attn.", "")
    return key.replace("in_proj_weight", "in_proj.weight").replace("in_proj_bias", "in_proj.bias")
