"""The hyperparameters of a training run, in a light module (no numpy, no torch): the
``ahmer train`` command line shows their defaults without importing training."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters of a run (all recorded in the card)."""

    seed: int = 0
    epochs: int = 60
    patience: int = 15
    batch_size: int = 8
    lr: float = 0.02
    l2: float = 1e-3
    clip_weight: float = 0.5
    device: str = "cpu"
    threads: int = 1
