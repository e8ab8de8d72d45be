"""The training protocol: optimiser, learning-rate schedule, presets and the choice of
the epoch a run keeps.

The official BAH code (sbelharbi/bah-dataset) trains with SGD (momentum 0.9,
Nesterov, weight decay 1e-4) and keeps the epoch with the best validation AP of the
positive class; the paper's setup is windows of 696 frames, hop 48, batch 4, lr
0.008, 60 epochs. ``PRESETS["paper"]`` holds those values; ``EpochSelector`` keeps
the best epoch by a validation metric (or the last one) and says when patience ran
out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from store.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "step")
SELECT = ("val_ap_pos", "val_avg_f1", "last")

# The paper's setup (its section on baselines and the official code's defaults for
# what the paper does not state: SGD momentum 0.9 with Nesterov, weight decay 1e-4,
# the learning rate divided by 10 every 40 epochs).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"window": 696, "hop": 48, "batch_size": 4, "optimizer": "sgd", "lr": 0.008,
              "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4, "schedule": "step",
              "step_size": 40, "gamma": 0.1, "epochs": 60, "select": "val_ap_pos"},
}


def preset(name: str | None) -> dict[str, Any]:
    """The options of a preset by name (``None``: no preset, an empty dict)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}", expected=f"one of {sorted(PRESETS)}")
    return dict(PRESETS[name])


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float,
                    weight_decay: float, momentum: float = 0.9, nesterov: bool = False
                    ) -> torch.optim.Optimizer:
    """``sgd`` (with ``momentum``, optionally Nesterov), ``adam`` or ``adamw``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov and momentum > 0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}", expected=f"one of {OPTIMIZERS}")


def build_schedule(name: str, opt: torch.optim.Optimizer, *, epochs: int, step_size: int,
                   gamma: float) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch schedule: ``none``, ``cosine`` (to 0 over ``epochs``) or ``step``
    (the rate times ``gamma`` every ``step_size`` epochs)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    raise ConfigError(f"unknown schedule {name!r}", expected=f"one of {SCHEDULES}")


@dataclass
class EpochSelector:
    """Keeps the best epoch by ``rule`` (``val_ap_pos``, ``val_avg_f1``: higher is
    better, the earliest wins a tie; NaN never wins) or the last one (``last``).

    ``offer`` takes each epoch's history entry and the model's weights; ``best`` is
    the chosen entry and ``state`` its weights (a CPU copy); ``exhausted`` is true
    once ``patience`` epochs in a row brought no improvement (0: never)."""

    rule: str
    patience: int = 0
    best: dict[str, Any] | None = None
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    since_best: int = 0

    def __post_init__(self) -> None:
        if self.rule not in SELECT:
            raise ConfigError(f"unknown selection rule {self.rule!r}",
                              expected=f"one of {SELECT}")

    def _score(self, entry: dict[str, Any]) -> float:
        value = entry.get(self.rule)
        return float(value) if value is not None and math.isfinite(value) else -math.inf

    def offer(self, entry: dict[str, Any], model: torch.nn.Module) -> bool:
        """Record an epoch; true when it is the new choice."""
        better = (self.best is None or self.rule == "last"
                  or self._score(entry) > self._score(self.best))
        if better:
            self.best, self.since_best = entry, 0
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.since_best += 1
        return better

    @property
    def exhausted(self) -> bool:
        return self.patience > 0 and self.rule != "last" and self.since_best >= self.patience
