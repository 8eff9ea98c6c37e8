"""The fusion graph's A/H path in torch, op for op (:mod:`ahmer.models.fusion.graph`): what
``ahmer train`` optimises. Imports torch: only :mod:`ahmer.models.training.train` loads it, once
torch is known to be installed.

The module takes ``cue_features`` (the graph's own, stored in the features files), the
masks, the three embeddings, ``valid`` and each clip's fps, and computes ``frame_ah_logit``,
``clip_ah_logit`` and ``cue_contrib`` as the graph does: weighted features and learned
embedding terms ``mask * has * (((emb - mean) * scale) @ w)``, divided by the shares of the
modalities present (the prior's, fixed), Gaussian smoothing over time
with the kernel built from fps (taps ``-HALF_TAPS..HALF_TAPS``, zero padding, weighted by
``valid``), the bias, then the clip's log-mean-exp over valid frames with ``beta``, a scale
and a bias. ``sigma_s`` and ``beta`` are kept within bounds by a scaled sigmoid.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ahmer.models.contract import MASK_NAMES
from ahmer.models.fusion.graph import (
    EMBEDDING_INPUTS,
    FEATURE_NAMES,
    HALF_TAPS,
    LEARNED_NAMES,
    FusionWeights,
    LearnedTerm,
)
from ahmer.models.training.featureset import FeatureClip

__all__ = [
    "BETA_BOUNDS",
    "SIGMA_BOUNDS",
    "FusionModule",
    "batch_tensors",
    "clip_tensors",
    "make_module",
]

SIGMA_BOUNDS = (0.05, 1.5)  # seconds: the Gaussian smoothing of the frame contributions
BETA_BOUNDS = (0.25, 8.0)  # the clip soft maximum's sharpness
_MASK_OF = {name: MASK_NAMES.index(group) for name, (_, _, group) in EMBEDDING_INPUTS.items()}
f32 = torch.float32


def _bounded_inverse(value: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    x = min(max((value - lo) / (hi - lo), 1e-4), 1 - 1e-4)
    return math.log(x / (1 - x))


class FusionModule(nn.Module):
    """The graph's ``frame_ah_logit``, ``clip_ah_logit`` and ``cue_contrib`` from
    ``cue_features``, masks, embeddings, valid and fps; the trainable weights start from
    ``prior`` (the learned terms from zero), the embeddings are standardised by ``stats``
    (mean and scale per term)."""

    def __init__(
        self, prior: FusionWeights, stats: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(prior.weight_vector(), dtype=f32))
        self.bias = nn.Parameter(torch.tensor(prior.bias, dtype=f32))
        self.sigma_raw = nn.Parameter(
            torch.tensor(_bounded_inverse(prior.sigma_s, SIGMA_BOUNDS), dtype=f32)
        )
        self.beta_raw = nn.Parameter(
            torch.tensor(_bounded_inverse(prior.clip_beta, BETA_BOUNDS), dtype=f32)
        )
        self.clip_scale = nn.Parameter(torch.tensor(prior.clip_scale, dtype=f32))
        self.clip_bias = nn.Parameter(torch.tensor(prior.clip_bias, dtype=f32))
        self.learned = nn.ParameterDict()
        for name in LEARNED_NAMES:
            mean, scale = stats[name]
            self.learned[name] = nn.Parameter(torch.zeros(len(mean), dtype=f32))
            self.register_buffer(f"{name}_mean", torch.tensor(mean, dtype=f32))
            self.register_buffer(f"{name}_scale", torch.tensor(scale, dtype=f32))
        self.register_buffer("taps", torch.arange(-HALF_TAPS, HALF_TAPS + 1, dtype=f32))
        # the graph's presence scaling (fixed: the prior's shares of the modalities)
        self.register_buffer("shares", torch.tensor(prior.modality_shares, dtype=f32))
        self.share_floor = float(prior.share_floor)

    @staticmethod
    def _bounded(raw, bounds):
        lo, hi = bounds
        return lo + (hi - lo) * torch.sigmoid(raw)

    def sigma(self):
        return self._bounded(self.sigma_raw, SIGMA_BOUNDS)

    def beta(self):
        return self._bounded(self.beta_raw, BETA_BOUNDS)

    def forward(self, batch: dict):
        valid = batch["valid"]  # [B,T]
        masks = batch["masks"]
        parts = [batch["cue_features"] * self.w]
        for name in LEARNED_NAMES:
            emb = batch[name]
            has = ((emb * emb).sum(-1) > 0).to(f32)
            z = (emb - getattr(self, f"{name}_mean")) * getattr(self, f"{name}_scale")
            term = (z @ self.learned[name]) * masks[..., _MASK_OF[name]] * has
            parts.append(term.unsqueeze(-1))
        contrib = torch.cat(parts, -1)  # [B,T,C]
        present = torch.clamp(masks @ self.shares, min=self.share_floor)
        contrib = contrib * (1.0 / present).unsqueeze(-1)
        b, t, c = contrib.shape
        # Gaussian kernel per clip from its fps, as the graph builds it
        z = (self.taps[None, :] / batch["fps"][:, None]) / self.sigma()
        g = torch.exp((z * z) * -0.5)  # [B,K]
        x = contrib.transpose(1, 2) * valid[:, None, :]  # [B,C,T]
        kernel = g[:, None, None, :].expand(b, c, 1, g.shape[-1]).reshape(b * c, 1, -1)
        num = torch.nn.functional.conv1d(
            x.reshape(1, b * c, t), kernel, padding=HALF_TAPS, groups=b * c
        ).reshape(b, c, t)
        den = torch.nn.functional.conv1d(
            valid[None], g[:, None, :], padding=HALF_TAPS, groups=b
        ).reshape(b, 1, t)
        smoothed = (num / torch.clamp(den, min=1e-6)).transpose(1, 2)  # [B,T,C]
        logit = smoothed.sum(-1) + self.bias
        beta = self.beta()
        zc = logit * beta + torch.log(valid + 1e-12)
        lse = torch.logsumexp(zc, dim=1)
        count = valid.sum(1)
        pooled = (lse - torch.log(torch.clamp(count, min=1.0))) / beta
        clip = pooled * self.clip_scale + self.clip_bias
        return {"frame_ah_logit": logit, "clip_ah_logit": clip, "cue_contrib": smoothed}

    def to_weights(self, base: FusionWeights) -> FusionWeights:
        """These weights as :class:`FusionWeights` (the base's anchors and constants)."""

        def value(t) -> float:
            return float(t.detach().cpu())

        learned = {
            name: LearnedTerm(
                getattr(self, f"{name}_mean").cpu().numpy().copy(),
                getattr(self, f"{name}_scale").cpu().numpy().copy(),
                self.learned[name].detach().cpu().numpy().copy(),
            )
            for name in LEARNED_NAMES
        }
        w = self.w.detach().cpu().numpy()
        return replace(
            base,
            bias=value(self.bias),
            contrib_weights={n: float(v) for n, v in zip(FEATURE_NAMES, w, strict=True)},
            sigma_s=value(self.sigma()),
            clip_beta=value(self.beta()),
            clip_scale=value(self.clip_scale),
            clip_bias=value(self.clip_bias),
            learned=learned,
        )


def make_module(prior: FusionWeights, stats: dict[str, tuple[np.ndarray, np.ndarray]]):
    """A :class:`FusionModule` starting from ``prior``."""
    return FusionModule(prior, stats)


_KEYS = ("cue_features", "masks", "valid", *LEARNED_NAMES)


def clip_tensors(clip: FeatureClip) -> dict:
    """The arrays of ``clip`` the module and the loss read, as CPU tensors."""
    a = clip.arrays
    out = {
        "cue_features": a["cue_features"],
        "masks": a["masks"],
        "valid": a["valid"],
        **{name: a[EMBEDDING_INPUTS[name][0]] for name in LEARNED_NAMES},
        "frame_labels": a["frame_labels"].astype(np.float32),
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def batch_tensors(items: list[dict], clips: list[FeatureClip], device) -> dict:
    """:func:`clip_tensors` of several clips padded to the longest (valid 0, labels -1), with
    their fps and video labels, on ``device``."""
    pad = torch.nn.utils.rnn.pad_sequence
    batch = {k: pad([it[k] for it in items], batch_first=True) for k in _KEYS}
    batch["frame_labels"] = pad(
        [it["frame_labels"] for it in items], batch_first=True, padding_value=-1.0
    )
    batch["fps"] = torch.tensor([c.fps for c in clips], dtype=torch.float32)
    batch["label"] = torch.tensor([float(c.label) for c in clips], dtype=torch.float32)
    return {k: v.to(device) for k, v in batch.items()}
