"""``ahmer train``: learn the fusion graph's weights from a features folder (torch, the
``export`` extra; nothing that serves imports this module).

The learned model **is** the fusion graph (:mod:`ahmer.models.fusion.graph`, contract
``ahmer.fusion/3``) with new weights, so a trained fusion explains itself exactly as the
prior does. What is learned, mirrored in torch op for op:

- the frame head: the weights of the 21 ``cue_features`` (initialised from the prior), one
  linear term per embedding (face, voice, text; standardised with the training frames' mean
  and standard deviation; initialised at zero, L2-penalised), the bias, and the temporal
  context: the width ``sigma_s`` of the graph's Gaussian smoothing, within
  :data:`~ahmer.models.training.torch_mirror.SIGMA_BOUNDS`;
- the clip head: the graph's soft maximum (log-mean-exp) of the frame logits, its sharpness
  ``beta`` within :data:`~ahmer.models.training.torch_mirror.BETA_BOUNDS`, then a scale and a bias.

The loss is the class-weighted binary cross-entropy (targets smoothed to 0.05/0.95, so
probabilities stay graded) of the labelled frames (positives
weighted by negatives/positives of the training frames, ~5 for BAH's 17 %), plus
``clip_weight`` times that of the video labels, plus ``l2`` times the squared embedding
weights. Adam; the epoch kept is the one with the best validation AVGF1 (frame level when
the validation split has frame labels, else video level), with early stopping.

Thresholds: the frame and clip decision thresholds that maximise the validation AVGF1
(grid 0.01..0.99 by 0.005) are folded into the biases, so 0.5 is the decision point of the
exported graph everywhere; the card records the raw values. Then the clip logits are cooled
by the factor (:func:`clip_temperature`) with the lowest validation log loss that leaves at
most 10 % of the validation clips below 0.01 or above 0.99. The exported ONNX is checked
against the torch model on the validation features (frame and clip logits and
contributions within :data:`PARITY_TOLERANCE`, and the graph's own ``cue_features`` against
the features files'); a mismatch fails the run and no graph is written.

Determinism: the seed fixes the fold assignment and the batch order; initial weights do not
depend on it; torch runs with ``threads`` CPU threads (its CPU kernels for these ops are
deterministic; on CUDA it is told to use deterministic algorithms), so two runs with the same
data, seed, options, device and thread count write byte-identical graphs.
"""

from __future__ import annotations

import copy
import json
import math
import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ahmer.models.contract import FUSION_CONTRACT, MASK_NAMES
from ahmer.models.fusion.graph import (
    EMBEDDING_INPUTS,
    FEATURE_NAMES,
    LEARNED_NAMES,
    FusionWeights,
    LearnedTerm,
    build_fusion_model,
)
from ahmer.models.fusion.registry import CARD_FILE, CARD_MD, GRAPH_FILE, resolve_fusion
from ahmer.models.store.model_store import ModelStore, sha256_file
from ahmer.models.training.card import card_markdown, split_warnings
from ahmer.models.training.config import TrainConfig  # light: the CLI shows its defaults
from ahmer.models.training.featureset import (
    FeatureClip,
    FeatureSet,
    LevelScores,
    assign_splits,
    fusion_session,
    level_metrics,
    run_fusion,
    score_clips,
)
from ahmer.preprocessing.errors import Internal

__all__ = [
    "CARD_SCHEMA",
    "PARITY_TOLERANCE",
    "TrainConfig",
    "TrainReport",
    "TrainingError",
    "best_threshold",
    "fold_thresholds",
    "graph_weights",
    "train",
]

CARD_SCHEMA = "ahmer.fusion-card/1"
PARITY_TOLERANCE = 1e-4  # |torch - onnxruntime| / max(1, |value|)
THRESHOLD_GRID = np.round(np.arange(0.01, 0.99 + 1e-9, 0.005), 3)
_MASK_OF = {name: MASK_NAMES.index(group) for name, (_, _, group) in EMBEDDING_INPUTS.items()}

Progress = Callable[[str], None]


class TrainingError(Internal, RuntimeError):
    """Training cannot run or its result failed a check; the message says why."""


@dataclass
class TrainReport:
    """What a run wrote and measured."""

    out: Path
    graph: Path
    card: dict
    seconds: float
    peak_rss_mb: float
    history: list[dict] = field(default_factory=list)


# -- weights of an existing graph --------------------------------------------------------------


def graph_weights(path: Path) -> FusionWeights:
    """The :class:`FusionWeights` of the fusion graph at ``path``, read back from its
    initializers (the prior's anchors and constants, so a trained graph keeps them)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}

    def scalar(name: str) -> float:
        return float(init[name])

    try:
        learned = {
            name: LearnedTerm(
                init[f"{name}_mean"].copy(), init[f"{name}_scale"].copy(), init[f"{name}_w"].copy()
            )
            for name in LEARNED_NAMES
        }
        weights = init["weights"]
        return FusionWeights(
            weights_id=meta.get("weights_id", ""),
            bias=scalar("bias"),
            contrib_weights={n: float(v) for n, v in zip(FEATURE_NAMES, weights, strict=True)},
            anchors=init["anchors"].copy(),
            semantic_offset=scalar("sem_offset"),
            semantic_scale=scalar("sem_scale"),
            valence_scale=scalar("val_scale"),
            discord_margin=scalar("discord_margin"),
            emotion_valence=tuple(float(v) for v in init["emotion_valence"]),
            sigma_s=scalar("sigma"),
            emotion_sigma_s=scalar("emotion_sigma"),
            clip_beta=scalar("beta"),
            clip_scale=scalar("clip_scale"),
            clip_bias=scalar("clip_bias"),
            bank=init["bank"].copy(),
            bank_split=int(init["bank_split"].reshape(-1)[0]),
            bank_offset=scalar("bank_offset"),
            bank_scale=scalar("bank_scale"),
            modality_shares=tuple(float(v) for v in init["modality_shares"]),
            share_floor=scalar("share_floor"),
            metadata={k: v for k, v in meta.items() if k == "prototypes_ambivalent"},
            learned=learned,
        )
    except (KeyError, ValueError) as exc:
        raise TrainingError(f"{path}: not a fusion graph of this ahmer ({exc})") from exc


# -- thresholds ----------------------------------------------------------------------------


def _avgf1_grid(labels: np.ndarray, probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """AVGF1 at each threshold of ``grid`` (predict positive where prob >= t)."""
    labels = np.asarray(labels, np.int8)
    probs = np.asarray(probs, np.float64)
    pos, neg = np.sort(probs[labels == 1]), np.sort(probs[labels == 0])
    tp = pos.size - np.searchsorted(pos, grid, side="left")
    fp = neg.size - np.searchsorted(neg, grid, side="left")
    fn, tn = pos.size - tp, neg.size - fp

    def f1(a, b, c):
        den = 2 * a + b + c
        return np.where(den > 0, 2 * a / np.maximum(den, 1), 0.0)

    return (f1(tp, fp, fn) + f1(tn, fn, fp)) / 2


def best_threshold(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(threshold, AVGF1): the grid threshold maximising AVGF1 (the middle one on ties);
    (0.5, nan) without labels."""
    if len(labels) == 0:
        return 0.5, math.nan
    scores = _avgf1_grid(labels, probs, THRESHOLD_GRID)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    k = int(best[(len(best) - 1) // 2])  # the middle of tied thresholds: farthest from a flip
    return float(THRESHOLD_GRID[k]), float(scores[k])


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def fold_thresholds(w: FusionWeights, frame_t: float, clip_t: float) -> FusionWeights:
    """``w`` with the decision thresholds folded into its biases, so that probability 0.5 of
    the new graph is ``frame_t`` (frames) and ``clip_t`` (clips) of the old one. The clip
    logit is a log-mean-exp of the frame logits, so shifting every frame logit by ``-c``
    shifts the pooled value by exactly ``-c``: the clip bias compensates, then takes its own
    threshold."""
    c = _logit(frame_t)
    return replace(
        w,
        bias=w.bias - c,
        clip_bias=w.clip_bias + w.clip_scale * c - _logit(clip_t),
    )


# -- the torch mirror of the graph ---------------------------------------------------------


# -- training ------------------------------------------------------------------------------


def _embedding_stats(clips: Sequence[FeatureClip]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per embedding: mean and 1/std over the training frames where it is present."""
    stats = {}
    for name, (key, dim, _group) in EMBEDDING_INPUTS.items():
        total = np.zeros(dim, np.float64)
        square = np.zeros(dim, np.float64)
        n = 0
        for clip in clips:
            emb = clip.arrays[key].astype(np.float64)
            keep = (
                (clip.arrays["valid"] > 0)
                & (clip.arrays["masks"][:, _MASK_OF[name]] > 0)
                & ((emb * emb).sum(-1) > 0)
            )
            total += emb[keep].sum(0)
            square += (emb[keep] ** 2).sum(0)
            n += int(keep.sum())
        if n < 2:
            stats[name] = (np.zeros(dim, np.float32), np.ones(dim, np.float32))
            continue
        mean = total / n
        std = np.sqrt(np.maximum(square / n - mean**2, 0.0))
        stats[name] = (mean.astype(np.float32), (1.0 / (std + 1e-3)).astype(np.float32))
    return stats


def _counts(clips: Sequence[FeatureClip]) -> dict:
    frames = sum(int(c.labelled().sum()) for c in clips)
    positive = sum(int((c.frame_labels[c.labelled()] == 1).sum()) for c in clips)
    return {
        "videos": len(clips),
        "participants": len({c.participant or c.id for c in clips}),
        "frames": sum(c.frames for c in clips),
        "labelled_frames": frames,
        "positive_frames": positive,
        "labelled_videos": sum(c.label >= 0 for c in clips),
        "positive_videos": sum(c.label == 1 for c in clips),
    }


def _setup_torch(config: TrainConfig):
    try:
        import torch
    except ImportError as exc:
        raise TrainingError(
            "ahmer train needs torch, from the export extra: pip install 'ahmer[export]'"
        ) from exc
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: torch sees no CUDA device on this machine")
    torch.manual_seed(config.seed)
    if config.device == "cuda":  # CPU kernels of these ops are deterministic as they are
        torch.use_deterministic_algorithms(True)  # (and this imports torch's compiler: ~9 s)
        torch.backends.cudnn.benchmark = False
    torch.set_num_threads(max(1, config.threads))
    return torch, torch.device(config.device)


def _predict(torch, module, tensors, clips, device, batch_size: int) -> list[dict]:
    """Outputs per clip (numpy, padding removed), in ``clips`` order."""
    from ahmer.models.training import torch_mirror as ft

    out = []
    module.eval()
    with torch.no_grad():
        for start in range(0, len(clips), batch_size):
            part = clips[start : start + batch_size]
            batch = ft.batch_tensors(tensors[start : start + batch_size], part, device)
            result = module(batch)
            for i, clip in enumerate(part):
                out.append(
                    {
                        "frame_ah_logit": result["frame_ah_logit"][i, : clip.frames].cpu().numpy(),
                        "clip_ah_logit": float(result["clip_ah_logit"][i].cpu()),
                    }
                )
    return out


def _level_scores(clips: Sequence[FeatureClip], outputs: list[dict]) -> LevelScores:
    scores = LevelScores()
    for clip, out in zip(clips, outputs, strict=True):
        scores.add(clip, out["frame_ah_logit"], out["clip_ah_logit"])
    return scores


def _selection(scores: LevelScores) -> tuple[float, dict]:
    """The validation score an epoch is selected by, and the numbers behind it."""
    fl, fp = scores.frame()
    vl, vp = scores.video()
    frame_t, frame_f1 = best_threshold(fl, fp)
    video_t, video_f1 = best_threshold(vl, vp)
    key = frame_f1 if fl.size else video_f1
    return key, {
        "frame_avgf1": frame_f1,
        "frame_threshold": frame_t,
        "video_avgf1": video_f1,
        "video_threshold": video_t,
    }


def _loss(torch, module, batch, pos_weight: float, clip_pos_weight: float, config):
    F = torch.nn.functional
    out = module(batch)
    labels = batch["frame_labels"]
    keep = (labels >= 0) & (batch["valid"] > 0)
    loss = torch.zeros((), device=labels.device)
    if keep.any():
        loss = F.binary_cross_entropy_with_logits(
            out["frame_ah_logit"][keep],
            _smoothed(labels[keep]),
            pos_weight=torch.tensor(pos_weight, device=labels.device),
        )
    has_label = batch["label"] >= 0
    if config.clip_weight > 0 and has_label.any():
        loss = loss + config.clip_weight * F.binary_cross_entropy_with_logits(
            out["clip_ah_logit"][has_label],
            _smoothed(batch["label"][has_label]),
            pos_weight=torch.tensor(clip_pos_weight, device=labels.device),
        )
    l2 = sum((p * p).sum() for p in module.learned.values())
    return loss + config.l2 * l2


LABEL_SMOOTHING = 0.05
"""Targets are 0.05 and 0.95, not 0 and 1: on data a fusion separates easily (a generated
set) the logits would otherwise grow until every probability is 0.00 or 1.00."""


def _smoothed(labels):
    return labels * (1.0 - 2.0 * LABEL_SMOOTHING) + LABEL_SMOOTHING


MAX_SATURATED = 0.10
"""At most this share of validation clips may end below 0.01 or above 0.99."""


def clip_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    """The factor (1, 0.95, ..., 0.2) the clip logits are multiplied by: the one with the
    lowest validation log loss among those leaving at most :data:`MAX_SATURATED` of the
    validation clips saturated (else the smallest). Decisions at 0.5 and the ranking are
    unchanged; only how sure the probabilities are."""
    if len(labels) == 0:
        return 1.0
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1 - 1e-12)
    z = np.log(p / (1 - p))
    y = np.asarray(labels, np.float64)
    best = None
    for k in np.round(np.arange(1.0, 0.19, -0.05), 2):
        q = np.clip(1 / (1 + np.exp(-k * z)), 1e-12, 1 - 1e-12)
        if ((q < 0.01) | (q > 0.99)).mean() > MAX_SATURATED:
            continue
        loss = float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean())
        if best is None or loss < best[0]:
            best = (loss, float(k))
    return best[1] if best else 0.2


def _ratio(neg: int, pos: int) -> float:
    return float(neg) / pos if pos and neg else 1.0


def _fit(torch, device, module, train, val, config: TrainConfig, say: Progress) -> list[dict]:
    """Train ``module`` in place; leave it at the selected epoch; return the history."""
    from ahmer.models.training import torch_mirror as ft

    counts = _counts(train)
    pos_weight = _ratio(
        counts["labelled_frames"] - counts["positive_frames"], counts["positive_frames"]
    )
    clip_pos_weight = _ratio(
        counts["labelled_videos"] - counts["positive_videos"], counts["positive_videos"]
    )
    train_t = [ft.clip_tensors(c) for c in train]
    val_t = [ft.clip_tensors(c) for c in val]
    vc = _counts(val)
    why = {  # why a val AVGF1 is undefined, said in place of a bare nan
        "frame": "n/a (no labelled val frames)" if not vc["labelled_frames"] else "n/a",
        "video": "n/a (no labelled val videos)" if not vc["labelled_videos"] else "n/a",
    }
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    best_key, best_state, best_epoch, history = -math.inf, None, 0, []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        module.train()
        order = rng.permutation(len(train))
        total, batches = 0.0, 0
        for k in range(0, len(order), config.batch_size):
            idx = order[k : k + config.batch_size].tolist()
            batch = ft.batch_tensors([train_t[i] for i in idx], [train[i] for i in idx], device)
            optimizer.zero_grad()
            loss = _loss(torch, module, batch, pos_weight, clip_pos_weight, config)
            loss.backward()
            optimizer.step()
            total += float(loss.detach().cpu())
            batches += 1
        outputs = _predict(torch, module, val_t, val, device, config.batch_size)
        key, numbers = _selection(_level_scores(val, outputs))
        record = {"epoch": epoch, "loss": total / max(batches, 1), **numbers}
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        better = key > best_key
        if better:
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(module.state_dict())
        frame, video = numbers["frame_avgf1"], numbers["video_avgf1"]
        frame_text = why["frame"] if math.isnan(frame) else f"{frame:.4f}"
        if not math.isnan(frame):
            frame_text += f" (t={numbers['frame_threshold']:.3f})"
        video_text = why["video"] if math.isnan(video) else f"{video:.4f}"
        say(
            f"epoch {epoch}/{config.epochs}: loss {record['loss']:.4f}, val frame AVGF1 "
            f"{frame_text}, video AVGF1 {video_text}, {record['seconds']:.1f} s"
            f"{' *' if better else ''}"
        )
        if epoch - best_epoch >= config.patience:
            say(f"early stop: no better validation AVGF1 for {config.patience} epochs")
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    history.append({"selected_epoch": best_epoch, "selection_avgf1": best_key})
    return history


# -- export and checks -----------------------------------------------------------------------


def _parity(torch, module, graph: Path, clips: Sequence[FeatureClip]) -> dict:
    """Largest relative differences between the torch module (CPU) and ONNX Runtime."""
    from ahmer.models.training import torch_mirror as ft

    module = module.to("cpu").eval()
    session = fusion_session(graph)
    worst = {"frame_ah_logit": 0.0, "clip_ah_logit": 0.0, "cue_contrib": 0.0, "cue_features": 0.0}
    with torch.no_grad():
        for clip in clips:
            mine = module(ft.batch_tensors([ft.clip_tensors(clip)], [clip], "cpu"))
            theirs = run_fusion(session, clip, tuple(worst))
            pairs = {
                "frame_ah_logit": mine["frame_ah_logit"][0].numpy(),
                "clip_ah_logit": mine["clip_ah_logit"][0].numpy(),
                "cue_contrib": mine["cue_contrib"][0].numpy(),
                "cue_features": clip.arrays["cue_features"],
            }
            for name, value in pairs.items():
                ref = np.asarray(theirs[name], np.float64)
                diff = np.abs(np.asarray(value, np.float64) - ref) / np.maximum(1.0, np.abs(ref))
                worst[name] = max(worst[name], float(diff.max(initial=0.0)))
    return {"videos": len(clips), "max_relative_difference": worst}


def _metrics_of(clips: Sequence[FeatureClip], trained: Path, prior: Path) -> dict | None:
    """Trained and prior metrics over ``clips`` (None without clips)."""
    if not clips:
        return None
    scores = score_clips(clips, {"trained": trained, "prior": prior})
    return {key: level_metrics(value) for key, value in scores.items()}


def _finite(value):
    """``value`` with NaN and infinities (a metric without samples) as None: strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def train(
    features_dir: Path,
    out: Path,
    config: TrainConfig | None = None,
    store: ModelStore | None = None,
    progress: Progress | None = None,
    name: str | None = None,
) -> TrainReport:
    """Train a fusion on ``features_dir`` and write ``out/fusion.onnx``, ``out/card.json``
    and ``out/card.md`` (see the module docstring)."""
    config = config or TrainConfig()
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    store = store or ModelStore()
    features = FeatureSet.open(Path(features_dir))
    splits, method = assign_splits(features.rows, config.seed)
    if not splits["train"] or not splits["val"]:
        raise TrainingError("training needs videos in both the train and the val split")
    say(
        f"splits ({method}): train {len(splits['train'])}, val {len(splits['val'])}, test "
        f"{len(splits['test'])} videos"
    )
    train_clips = list(features.clips(splits["train"]))
    val_clips = list(features.clips(splits["val"]))
    test_clips = list(features.clips(splits["test"]))
    counts = {
        "train": _counts(train_clips),
        "val": _counts(val_clips),
        "test": _counts(test_clips),
    }
    for split, clips in (("train", train_clips), ("val", val_clips), ("test", test_clips)):
        counts[split]["ids"] = [c.id for c in clips]  # the card lists the membership
    warnings = split_warnings(counts)
    for warning in warnings:
        say(f"warning: {warning}")
    tc = counts["train"]
    if not tc["positive_frames"] or tc["positive_frames"] == tc["labelled_frames"]:
        if not tc["positive_videos"] or tc["positive_videos"] == tc["labelled_videos"]:
            raise TrainingError(
                "the train split needs labelled A/H and no-A/H examples (frame or video labels)"
            )
    vc = counts["val"]
    if not vc["labelled_frames"] and not vc["labelled_videos"]:
        raise TrainingError("the val split has no labelled frames or videos to select on")
    prior_ref = resolve_fusion(store, "")
    prior = graph_weights(prior_ref.path)

    torch, device = _setup_torch(config)
    from ahmer.models.training import torch_mirror as ft

    module = ft.make_module(prior, _embedding_stats(train_clips))
    history = _fit(torch, device, module, train_clips, val_clips, config, say)

    # thresholds on the validation split, folded into the biases
    val_t = [ft.clip_tensors(c) for c in val_clips]
    outputs = _predict(torch, module, val_t, val_clips, device, config.batch_size)
    scores = _level_scores(val_clips, outputs)
    frame_t, frame_f1 = best_threshold(*scores.frame())
    shift = _logit(frame_t)
    with torch.no_grad():
        module.bias -= shift
        module.clip_bias += module.clip_scale * shift
    outputs = _predict(torch, module, val_t, val_clips, device, config.batch_size)
    clip_t, clip_f1 = best_threshold(*_level_scores(val_clips, outputs).video())
    with torch.no_grad():
        module.clip_bias -= _logit(clip_t)
    # the clip head's temperature on the validation split: 0.5 and the ranking stay put
    outputs = _predict(torch, module, val_t, val_clips, device, config.batch_size)
    clip_k = clip_temperature(*_level_scores(val_clips, outputs).video())
    with torch.no_grad():
        module.clip_scale *= clip_k
        module.clip_bias *= clip_k

    weights_id = f"ahmer-ah-trained@{features.fingerprint[:12] or 'unknown'}.s{config.seed}"
    weights = module.to_weights(prior)
    weights = replace(
        weights,
        weights_id=weights_id,
        metadata={
            "kind": "trained fusion (ahmer train)",
            "data_fingerprint": features.fingerprint,
            "seed": str(config.seed),
            "frame_threshold": f"{frame_t:g}",
            "clip_threshold": f"{clip_t:g}",
            "clip_temperature_factor": f"{clip_k:g}",
            **{k: v for k, v in prior.metadata.items() if k == "prototypes_ambivalent"},
        },
    )
    model = build_fusion_model(weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staged = out / f".{GRAPH_FILE}.check"
    staged.write_bytes(model.SerializeToString())
    try:
        parity = _parity(torch, module, staged, val_clips)
        bad = {k: v for k, v in parity["max_relative_difference"].items() if v > PARITY_TOLERANCE}
        if "cue_features" in bad:
            raise TrainingError(
                "the features' cue_features differ from what this ahmer's fusion graph computes "
                f"from their inputs (relative difference {bad['cue_features']:.2g}): they were "
                "extracted with other models (see dataset.json's models); run `ahmer features` "
                "again with this model store; no graph was written"
            )
        if bad:
            raise TrainingError(
                "the exported graph does not reproduce the trained model on the validation "
                f"features (relative differences {bad}, tolerance {PARITY_TOLERANCE}); "
                "no graph was written"
            )
        graph = out / GRAPH_FILE
        os.replace(staged, graph)
    finally:
        if staged.exists():
            staged.unlink()
    say(f"parity with ONNX Runtime on {parity['videos']} val videos: ok")

    sha = sha256_file(graph)
    say("evaluating the trained fusion and the zero-shot prior on val and test")
    metrics = {
        "val": _metrics_of(val_clips, graph, prior_ref.path),
        "test": _metrics_of(test_clips, graph, prior_ref.path),
    }
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    gpu_peak = None
    if device.type == "cuda":
        gpu_peak = torch.cuda.max_memory_allocated() / 2**20
    card = {
        "schema": CARD_SCHEMA,
        "name": name or out.resolve().name,
        "sha256": sha,
        "weights_id": weights_id,
        "contract": FUSION_CONTRACT,
        "uses_embeddings": weights.uses_embeddings,
        "data": {
            "fingerprint": features.fingerprint,
            "layout": features.info.get("layout"),
            "fps": features.info.get("fps"),
            "models": features.info.get("models"),
        },
        "splits": {"method": method, **counts},
        "warnings": warnings,
        "seed": config.seed,
        "hyperparameters": {
            **asdict(config),
            "sigma_bounds_s": list(ft.SIGMA_BOUNDS),
            "beta_bounds": list(ft.BETA_BOUNDS),
            "optimizer": "Adam",
            "frame_loss": "BCE, positives weighted by negatives/positives of the train frames",
        },
        "learned": {
            "sigma_s": weights.sigma_s,
            "clip_beta": weights.clip_beta,
            "clip_scale": weights.clip_scale,
        },
        "thresholds": {
            "frame": frame_t,
            "clip": clip_t,
            "val_frame_avgf1": frame_f1,
            "val_video_avgf1": clip_f1,
            "folded": "into the biases: 0.5 is the decision point of fusion.onnx",
        },
        "metrics": metrics,
        "prior": {"name": prior_ref.name, "version": prior_ref.version},
        "parity": parity,
        "training": {
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak, 1),
            "peak_gpu_mb": None if gpu_peak is None else round(gpu_peak, 1),
            "device": config.device,
            "threads": config.threads,
            "torch": torch.__version__,
            "selected_epoch": history[-1]["selected_epoch"],
            "epochs_run": len(history) - 1,
            "history": history[:-1],
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    card = _finite(card)
    _write_atomic(out / CARD_FILE, (json.dumps(card, indent=2, allow_nan=False) + "\n").encode())
    _write_atomic(out / CARD_MD, card_markdown(card).encode())
    say(f"wrote {graph} and its card in {seconds:.1f} s (peak RSS {peak:.0f} MB)")
    return TrainReport(out, graph, card, seconds, peak, history[:-1])
