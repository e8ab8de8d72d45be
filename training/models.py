"""Baselines over frame windows, selected by name. Every model maps a dict of
``(B, L, D_m)`` modality tensors to per-frame logits ``(B, L, 2)``.

- ``mlp``: a per-frame MLP over the concatenated modalities (one modality: the
  per-modality MLP baseline);
- ``tcn``: a temporal convolutional network (dilated residual 1-d convolutions,
  non-causal: offline analysis sees the whole window);
- ``fusion_concat``: one projection per modality, concatenated, then the TCN;
- ``fusion_attention``: one projection per modality, a learned attention over
  modalities at every frame, the weighted sum, then the TCN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from store.errors import ConfigError


class _TCNBody(nn.Module):
    def __init__(self, hidden: int, layers: int = 4, kernel: int = 3, dropout: float = 0.1
                 ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(hidden, hidden, kernel, dilation=2**i,
                                    padding=(kernel - 1) * 2**i // 2),
                          nn.GELU(), nn.Dropout(dropout))
            for i in range(layers))
        self.head = nn.Conv1d(hidden, 2, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, L, H) -> (B, L, 2)
        x = h.transpose(1, 2)
        for block in self.blocks:
            x = x + block(x)
        out: torch.Tensor = self.head(x).transpose(1, 2)
        return out


class FrameMLP(nn.Module):
    def __init__(self, dims: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.keys = sorted(dims)
        self.net = nn.Sequential(nn.Linear(sum(dims.values()), hidden), nn.GELU(),
                                 nn.Dropout(0.1), nn.Linear(hidden, 2))

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.net(torch.cat([x[k].float() for k in self.keys], dim=-1))
        return out


class TCN(nn.Module):
    def __init__(self, dims: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.keys = sorted(dims)
        self.proj = nn.Linear(sum(dims.values()), hidden)
        self.body = _TCNBody(hidden)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.body(self.proj(torch.cat([x[k].float() for k in self.keys],
                                                          dim=-1)))
        return out


class ConcatFusion(nn.Module):
    def __init__(self, dims: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.keys = sorted(dims)
        self.proj = nn.ModuleDict({k: nn.Linear(d, hidden) for k, d in dims.items()})
        self.mix = nn.Linear(hidden * len(dims), hidden)
        self.body = _TCNBody(hidden)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        h = torch.cat([torch.relu(self.proj[k](x[k].float())) for k in self.keys], dim=-1)
        out: torch.Tensor = self.body(self.mix(h))
        return out


class AttentionFusion(nn.Module):
    def __init__(self, dims: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.keys = sorted(dims)
        self.proj = nn.ModuleDict({k: nn.Linear(d, hidden) for k, d in dims.items()})
        self.score = nn.Linear(hidden, 1)
        self.body = _TCNBody(hidden)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        h = torch.stack([torch.tanh(self.proj[k](x[k].float())) for k in self.keys], dim=2)
        weights = torch.softmax(self.score(h), dim=2)  # (B, L, M, 1): which modality counts
        out: torch.Tensor = self.body((weights * h).sum(dim=2))
        return out


MODELS: dict[str, Callable[[dict[str, int], int], nn.Module]] = {
    "mlp": FrameMLP, "tcn": TCN, "fusion_concat": ConcatFusion,
    "fusion_attention": AttentionFusion,
}


def build_model(name: str, dims: dict[str, int], hidden: int = 64) -> nn.Module:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}", expected=f"one of {sorted(MODELS)}")
    if name.startswith("fusion") and len(dims) < 2:
        raise ConfigError(f"{name} needs two or more modalities, got {sorted(dims)}",
                          expected="--modalities face,audio,...")
    return MODELS[name](dims, hidden)
