"""The A/H + emotion fusion graph: one ONNX model with a fixed contract.

Inputs (``B`` clips, ``T`` frames; padding frames have ``valid = 0``):

=============  =================  =================================================================
``cues``       float32 [B,T,18]   interpretable cue features, columns :data:`CUE_NAMES`, 0..1
``masks``      float32 [B,T,3]    modality presence per frame: visual, vocal, verbal
``emotion``    float32 [B,T,7]    face-emotion probabilities (zeros where no face)
``text_emb``   float32 [B,T,384]  MiniLM embedding of the words around each frame (zeros: none)
``face_emb``   float32 [B,T,128]  face-emotion network's pooled last residual block (zeros: none)
``voice_emb``  float32 [B,T,384]  Whisper encoder states pooled to the frame (zeros: no audio)
``valid``      float32 [B,T]      1 for real frames, 0 for padding
``fps``        float32 [1]        analysis frames per second (sets the smoothing kernel)
=============  =================  =================================================================

Outputs:

=========================  ===============  ======================================================
``frame_ah_logit``         float32 [B,T]    A/H logit per frame, after temporal smoothing
``frame_emotion_logits``   float32 [B,T,7]  log of smoothed face-emotion probabilities
``emotion_support``        float32 [B,T]    0..1, how much face evidence backs each frame's emotion
``frame_valence``          float32 [B,T]    -1..1, facial and verbal valence combined
``clip_ah_logit``          float32 [B]      clip A/H logit (soft-maximum over frames)
``cue_contrib``            float32 [B,T,24] each term's smoothed contribution to the frame logit,
                                            columns :data:`CONTRIB_NAMES`
``attribution``            float32 [B,T,4]  leave-one-modality-out change in A/H probability:
                                            visual, vocal, verbal, cross-modal
``cue_features``           float32 [B,T,21] the feature values before weighting, columns
                                            :data:`FEATURE_NAMES` (gated cues, semantic
                                            hesitancy, valence discord, stated
                                            ambivalence); unsmoothed
``prototype_match``        float32 [B,T,2]  the nearest ambivalent prototype (its index in
                                            metadata ``prototypes_ambivalent``) and its
                                            cosine similarity (0 without words)
=========================  ===============  ======================================================

Contributions (``cue_contrib`` columns): the 21 features times their weights, then one
learned term per embedding, ``learned_face`` (visual), ``learned_voice`` (vocal) and
``learned_text`` (verbal)::

    learned_m = mask_m * has_m * (((emb_m - mean_m) * scale_m) @ w_m)

where ``has_m`` is 1 when the frame's embedding row is non-zero; ``mean``/``scale``
standardise the embedding and ``w`` is learned (:class:`LearnedTerm`). Each frame's
contributions are divided by the shares of the modalities present there
(``max(masks @ modality_shares, share_floor)``: a missing channel is not evidence against
A/H); then all 24 are smoothed in time by the same Gaussian kernel. A cross-modal cue
(:data:`CUE_GATES`) counts only where the face and the words are both present. The graph is
linear in them before the sigmoid, so ``cue_contrib`` sums (plus the bias) to the frame logit
exactly, and ``attribution[m] = p - sigmoid(logit - contrib_m)`` is the model's own answer to
"what if modality m's evidence were absent".

Two sets of weights share this contract (``ahmer.fusion/3``; metadata ``contract``): the
zero-shot cue prior (:mod:`ahmer.models.fusion.prior`, learned weights all zero) and trained
weights. Metadata ``uses_embeddings`` is ``"1"`` when a learned weight is non-zero (the
caller must then compute the face and voice embeddings), else ``"0"`` (zeros may be fed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ahmer.models.contract import (
    ATTRIBUTION_NAMES,
    EMBED_DIM,
    FACE_EMBED_DIM,
    FUSION_CONTRACT,
    MASK_NAMES,
    VOICE_EMBED_DIM,
)
from ahmer.models.fusion.cues import CUE_GATES, CUE_GROUPS, CUE_NAMES

__all__ = [
    "CONTRIB_GROUPS",
    "CONTRIB_NAMES",
    "EMBEDDING_INPUTS",
    "FEATURE_NAMES",
    "FusionWeights",
    "LEARNED_NAMES",
    "LearnedTerm",
    "build_fusion_model",
]

EXTRA_CONTRIBS = {
    "semantic_hesitancy": "verbal",
    "valence_discord": "cross_modal",
    "stated_ambivalence": "verbal",
}
FEATURE_NAMES: tuple[str, ...] = (*CUE_NAMES, *EXTRA_CONTRIBS)
"""The ``cue_features`` columns: the weighted, interpretable features."""

EMBEDDING_INPUTS: dict[str, tuple[str, int, str]] = {
    "learned_face": ("face_emb", FACE_EMBED_DIM, "visual"),
    "learned_voice": ("voice_emb", VOICE_EMBED_DIM, "vocal"),
    "learned_text": ("text_emb", EMBED_DIM, "verbal"),
}
"""Each learned term: its embedding input, that input's width and its modality."""
LEARNED_NAMES: tuple[str, ...] = tuple(EMBEDDING_INPUTS)

CONTRIB_GROUPS: dict[str, str] = {
    **CUE_GROUPS,
    **EXTRA_CONTRIBS,
    **{name: group for name, (_, _, group) in EMBEDDING_INPUTS.items()},
}
CONTRIB_NAMES = tuple(CONTRIB_GROUPS)
"""The ``cue_contrib`` columns: :data:`FEATURE_NAMES` then :data:`LEARNED_NAMES`."""
HALF_TAPS = 20  # smoothing kernel half-width in frames (covers +-0.67 s even at 30 fps)


@dataclass
class LearnedTerm:
    """One embedding's linear term: ``((emb - mean) * scale) @ weight``, each ``[dim]``.

    ``mean``/``scale`` standardise the embedding (a trainer sets them from its training
    frames); ``weight`` is learned. :meth:`zero` is the prior's: no contribution."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray

    @classmethod
    def zero(cls, dim: int) -> LearnedTerm:
        return cls(np.zeros(dim, np.float32), np.ones(dim, np.float32), np.zeros(dim, np.float32))

    def arrays(self, name: str, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``mean, scale, weight`` as float32 ``[dim]`` (checked: finite, right width)."""
        out = []
        for label, value in (("mean", self.mean), ("scale", self.scale), ("weight", self.weight)):
            array = np.asarray(value, np.float32)
            if array.shape != (dim,):
                raise ValueError(f"{name}.{label} must be [{dim}], got {list(array.shape)}")
            if not np.isfinite(array).all():
                raise ValueError(f"{name}.{label} holds NaN or infinity")
            out.append(array)
        return out[0], out[1], out[2]

    @property
    def active(self) -> bool:
        """Whether this term can contribute at all (a non-zero weight after scaling)."""
        return bool(np.any(np.asarray(self.weight) * np.asarray(self.scale) != 0))


@dataclass
class FusionWeights:
    """Everything the graph's behaviour depends on; a trained model replaces these."""

    weights_id: str
    bias: float
    contrib_weights: dict[str, float]
    anchors: np.ndarray  # [EMBED_DIM, 4]: hesitant, confident, positive, negative centroids
    semantic_offset: float = 0.05
    semantic_scale: float = 6.0
    valence_scale: float = 6.0
    discord_margin: float = 0.6
    emotion_valence: tuple[float, ...] = (-1.0, -1.0, -1.0, 1.0, -1.0, 0.2, 0.0)
    sigma_s: float = 0.4
    emotion_sigma_s: float = 0.25
    clip_beta: float = 1.5
    clip_scale: float = 1.0
    clip_bias: float = 0.0
    bank: np.ndarray | None = None
    """[EMBED_DIM, K] unit-norm prototype sentences: the first ``bank_split`` columns
    ambivalent, the rest committed (None: no bank, ``stated_ambivalence`` is 0)."""
    bank_split: int = 1
    bank_offset: float = 0.05
    bank_scale: float = 5.0
    modality_shares: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per modality (visual, vocal, verbal), its share of the evidence; each frame's
    contributions are divided by the shares present there (at least ``share_floor``), so a
    missing channel is not read as evidence against A/H. All 1 with floor 1: no scaling."""
    share_floor: float = 1.0
    metadata: dict[str, str] = field(default_factory=dict)
    learned: dict[str, LearnedTerm] = field(default_factory=dict)
    """Terms by :data:`LEARNED_NAMES`; a missing one is :meth:`LearnedTerm.zero`."""

    def bank_matrix(self) -> tuple[np.ndarray, int]:
        """``(bank [EMBED_DIM, K], split)``; a zero bank of two columns when none is set."""
        if self.bank is None:
            return np.zeros((EMBED_DIM, 2), np.float32), 1
        bank = np.asarray(self.bank, np.float32)
        if bank.ndim != 2 or bank.shape[0] != EMBED_DIM or not 0 < self.bank_split < bank.shape[1]:
            raise ValueError(
                f"bank must be [{EMBED_DIM}, K] with 0 < bank_split < K, got "
                f"{list(bank.shape)} split {self.bank_split}"
            )
        return bank, int(self.bank_split)

    def weight_vector(self) -> np.ndarray:
        """The weights of :data:`FEATURE_NAMES`, in order."""
        missing = set(FEATURE_NAMES) - set(self.contrib_weights)
        if missing:
            raise ValueError(f"fusion weights lack: {sorted(missing)}")
        unknown = set(self.contrib_weights) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(
                f"fusion weights name unknown features: {sorted(unknown)} (learned terms go "
                "in FusionWeights.learned)"
            )
        return np.array([self.contrib_weights[n] for n in FEATURE_NAMES], np.float32)

    def term(self, name: str) -> LearnedTerm:
        """The learned term ``name`` (zero when not set)."""
        if name not in EMBEDDING_INPUTS:
            raise ValueError(f"unknown learned term {name!r}; expected one of {LEARNED_NAMES}")
        return self.learned.get(name) or LearnedTerm.zero(EMBEDDING_INPUTS[name][1])

    @property
    def uses_embeddings(self) -> bool:
        """Whether any learned term can contribute (metadata ``uses_embeddings``)."""
        return any(self.term(name).active for name in LEARNED_NAMES)


def build_fusion_model(w: FusionWeights) -> onnx.ModelProto:
    """The fusion graph (opset 17) with ``w`` as initializers."""
    if w.anchors.shape != (EMBED_DIM, 4):
        raise ValueError(f"anchors must be [{EMBED_DIM}, 4], got {w.anchors.shape}")
    unknown = set(w.learned) - set(LEARNED_NAMES)
    if unknown:
        raise ValueError(f"unknown learned terms {sorted(unknown)}; expected {LEARNED_NAMES}")
    n_cue, n_con, n_emo = len(CUE_NAMES), len(CONTRIB_NAMES), len(w.emotion_valence)
    group_of_cue = np.zeros((len(MASK_NAMES), n_cue), np.float32)
    cross_of_cue = np.zeros(n_cue, np.float32)
    for j, name in enumerate(CUE_NAMES):
        if len(CUE_GATES[name]) == 1:
            group_of_cue[MASK_NAMES.index(CUE_GATES[name][0]), j] = 1.0
        else:  # the cross-modal cues need the face and the words
            cross_of_cue[j] = 1.0
    bank, split = w.bank_matrix()
    attribution_groups = np.zeros((n_con, len(ATTRIBUTION_NAMES)), np.float32)
    for j, name in enumerate(CONTRIB_NAMES):
        attribution_groups[j, ATTRIBUTION_NAMES.index(CONTRIB_GROUPS[name])] = 1.0
    projection = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)  # -> (hes-conf, pos-neg)

    inits = {
        "anchors": w.anchors.astype(np.float32),
        "projection": projection,
        "group_of_cue": group_of_cue,
        "cross_of_cue": cross_of_cue,
        "bank": bank,
        "bank_split": np.array([split], np.int64),
        "bank_end": np.array([bank.shape[1]], np.int64),
        "bank_start": np.array([0], np.int64),
        "bank_offset": np.array(w.bank_offset, np.float32),
        "bank_scale": np.array(w.bank_scale, np.float32),
        "modality_shares": np.array(w.modality_shares, np.float32),
        "share_floor": np.array(w.share_floor, np.float32),
        "weights": w.weight_vector(),
        "bias": np.array(w.bias, np.float32),
        "attribution_groups": attribution_groups,
        "emotion_valence": np.array(w.emotion_valence, np.float32),
        "taps": np.arange(-HALF_TAPS, HALF_TAPS + 1, dtype=np.float32),
        "sigma": np.array(w.sigma_s, np.float32),
        "emotion_sigma": np.array(w.emotion_sigma_s, np.float32),
        "sem_offset": np.array(w.semantic_offset, np.float32),
        "sem_scale": np.array(w.semantic_scale, np.float32),
        "val_scale": np.array(w.valence_scale, np.float32),
        "discord_margin": np.array(w.discord_margin, np.float32),
        "discord_norm": np.array(1.0 / max(1e-3, 2.0 - w.discord_margin), np.float32),
        "beta": np.array(w.clip_beta, np.float32),
        "clip_scale": np.array(w.clip_scale, np.float32),
        "clip_bias": np.array(w.clip_bias, np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
        "eps": np.array(1e-6, np.float32),
        "tiny": np.array(1e-12, np.float32),
        "axis_last": np.array([-1], np.int64),
        "axis_time": np.array([1], np.int64),
        "unsq_1": np.array([1], np.int64),
        "kshape": np.array([1, 1, 2 * HALF_TAPS + 1], np.int64),
        "kshape_con": np.array([n_con, 1, 2 * HALF_TAPS + 1], np.int64),
        "kshape_emo": np.array([n_emo, 1, 2 * HALF_TAPS + 1], np.int64),
    }
    nodes: list[onnx.NodeProto] = []

    def op(kind: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output

    # -- masks and padding ------------------------------------------------------------------
    visual = op("Gather", ["masks", "zero_i"], "visual_mask", axis=2)
    verbal = op("Gather", ["masks", "two_i"], "verbal_mask", axis=2)
    inits["zero_i"] = np.array(0, np.int64)
    inits["two_i"] = np.array(2, np.int64)

    # -- semantic cues from the text embedding ---------------------------------------------
    sims = op("MatMul", ["text_emb", "anchors"], "anchor_sims")  # [B,T,4]
    diffs = op("MatMul", [sims, "projection"], "anchor_diffs")  # [B,T,2]
    norm2 = op("ReduceSumSquare", ["text_emb"], "emb_norm2", axes=[-1], keepdims=0)
    has_text = op("Cast", [op("Greater", [norm2, "half"], "has_text_b")], "has_text", to=1)
    hes = op("Gather", [diffs, "zero_i"], "hes_minus_conf", axis=2)
    val = op("Gather", [diffs, "one_i"], "pos_minus_neg", axis=2)
    inits["one_i"] = np.array(1, np.int64)
    sem = op("Relu", [op("Sub", [hes, "sem_offset"], "sem_shift")], "sem_relu")
    sem = op("Min", [op("Mul", [sem, "sem_scale"], "sem_scaled"), "one"], "sem_clip")
    sem = op("Mul", [op("Mul", [sem, has_text], "sem_text"), verbal], "semantic_hesitancy")
    text_val = op("Tanh", [op("Mul", [val, "val_scale"], "val_scaled")], "text_val_raw")
    text_val = op("Mul", [text_val, has_text], "text_valence")

    # -- stated ambivalence: nearest ambivalent minus nearest committed prototype ------------
    bank_sims = op("MatMul", ["text_emb", "bank"], "bank_sims")  # [B,T,K]
    amb = op("Slice", [bank_sims, "bank_start", "bank_split", "axis_last"], "amb_sims")
    com = op("Slice", [bank_sims, "bank_split", "bank_end", "axis_last"], "com_sims")
    amb_max = op("ReduceMax", [amb], "amb_max", axes=[-1], keepdims=0)
    com_max = op("ReduceMax", [com], "com_max", axes=[-1], keepdims=0)
    amb_arg = op("Cast", [op("ArgMax", [amb], "amb_arg_i", axis=-1, keepdims=0)], "amb_arg", to=1)
    stated = op(
        "Relu",
        [op("Sub", [op("Sub", [amb_max, com_max], "amb_margin"), "bank_offset"], "amb_shift")],
        "amb_relu",
    )
    stated = op("Min", [op("Mul", [stated, "bank_scale"], "amb_scaled"), "one"], "amb_clip")
    stated = op("Mul", [op("Mul", [stated, has_text], "amb_text"), verbal], "stated_ambivalence")
    amb_arg3 = op(
        "Unsqueeze", [op("Mul", [amb_arg, has_text], "amb_arg_t"), "axis_last"], "amb_arg3"
    )
    amb_max3 = op(
        "Unsqueeze", [op("Mul", [amb_max, has_text], "amb_max_t"), "axis_last"], "amb_max3"
    )
    nodes.append(
        helper.make_node(
            "Concat", [amb_arg3, amb_max3], ["prototype_match"], name="prototype_match", axis=-1
        )
    )

    # -- facial valence and cross-modal discord --------------------------------------------
    face_val = op("MatMul", ["emotion", "emotion_valence"], "face_valence_raw")
    face_val = op("Mul", [face_val, visual], "face_valence")
    gap = op("Abs", [op("Sub", [face_val, text_val], "valence_gap_raw")], "valence_gap")
    discord = op("Relu", [op("Sub", [gap, "discord_margin"], "discord_shift")], "discord_relu")
    discord = op("Mul", [discord, "discord_norm"], "discord_scaled")
    both = op("Mul", [op("Mul", [visual, has_text], "vis_text"), verbal], "both_present")
    discord = op("Mul", [discord, both], "valence_discord")

    # -- gated cues -> contributions -------------------------------------------------------
    gate = op("MatMul", ["masks", "group_of_cue"], "cue_gate_single")
    vis_verb = op("Mul", [visual, verbal], "vis_verb")
    vis_verb = op("Unsqueeze", [vis_verb, "axis_last"], "vis_verb3")
    cross = op("Mul", [vis_verb, "cross_of_cue"], "cue_gate_cross")
    gate = op("Add", [gate, cross], "cue_gate")
    gated = op("Mul", ["cues", gate], "gated_cues")
    sem3 = op("Unsqueeze", [sem, "axis_last"], "sem3")
    dis3 = op("Unsqueeze", [discord, "axis_last"], "dis3")
    amb3 = op("Unsqueeze", [stated, "axis_last"], "amb3")
    feats = op("Concat", [gated, sem3, dis3, amb3], "features", axis=-1)
    nodes.append(helper.make_node("Identity", [feats], ["cue_features"], name="cue_features"))
    weighted = op("Mul", [feats, "weights"], "feature_contrib")  # [B,T,17]

    # -- learned embedding terms: mask * has * (((emb - mean) * scale) @ w) -----------------
    learned = []
    for name, (emb, _dim, group) in EMBEDDING_INPUTS.items():
        mean, scale, weight = w.term(name).arrays(name, _dim)
        inits.update({f"{name}_mean": mean, f"{name}_scale": scale, f"{name}_w": weight})
        inits[f"{group}_i"] = np.array(MASK_NAMES.index(group), np.int64)
        mask = op("Gather", ["masks", f"{group}_i"], f"{name}_mask", axis=2)
        present = op("ReduceSumSquare", [emb], f"{name}_norm2", axes=[-1], keepdims=0)
        present = op("Greater", [present, "zero_f"], f"{name}_has_b")
        present = op("Cast", [present], f"{name}_has", to=1)
        z = op("Sub", [emb, f"{name}_mean"], f"{name}_centred")
        z = op("Mul", [z, f"{name}_scale"], f"{name}_z")
        term = op("MatMul", [z, f"{name}_w"], f"{name}_raw")  # [B,T]
        term = op("Mul", [op("Mul", [term, mask], f"{name}_masked"), present], name)
        learned.append(op("Unsqueeze", [term, "axis_last"], f"{name}3"))
    inits["zero_f"] = np.array(0.0, np.float32)
    contrib = op("Concat", [weighted, *learned], "contrib_unscaled", axis=-1)  # [B,T,C]
    # a missing channel is not evidence against A/H: divide by the shares present
    present = op("MatMul", ["masks", "modality_shares"], "share_present")  # [B,T]
    present = op("Max", [present, "share_floor"], "share_present_safe")
    presence = op("Div", ["one", present], "presence_scale")
    presence3 = op("Unsqueeze", [presence, "axis_last"], "presence_scale3")
    contrib = op("Mul", [contrib, presence3], "contrib_raw")

    # -- temporal smoothing with a Gaussian kernel built from fps ---------------------------
    def kernel(sigma: str, prefix: str) -> str:
        t = op("Div", ["taps", "fps"], f"{prefix}_t")
        z = op("Div", [t, sigma], f"{prefix}_z")
        g = op(
            "Exp",
            [op("Mul", [op("Mul", [z, z], f"{prefix}_z2"), "neg_half"], f"{prefix}_e")],
            f"{prefix}_g",
        )
        return g

    inits["neg_half"] = np.array(-0.5, np.float32)
    valid3 = op("Unsqueeze", ["valid", "unsq_1"], "valid_c")  # [B,1,T]

    def smooth(x_btc: str, channels_shape: str, g: str, weight_btc: str | None, name: str):
        """Weighted Gaussian average over time of x [B,T,C]; weight [B,T] (times valid)."""
        w_bt = "valid" if weight_btc is None else op("Mul", [weight_btc, "valid"], f"{name}_w")
        w_b1t = op("Unsqueeze", [w_bt, "unsq_1"], f"{name}_w3")
        x = op("Transpose", [x_btc], f"{name}_xt", perm=[0, 2, 1])  # [B,C,T]
        x = op("Mul", [x, w_b1t], f"{name}_xw")
        k1 = op("Reshape", [g, "kshape"], f"{name}_k1")
        kc = op("Expand", [k1, channels_shape], f"{name}_kc")
        groups = {"kshape_con": n_con, "kshape_emo": n_emo}[channels_shape]
        num = op("Conv", [x, kc], f"{name}_num", group=groups, pads=[HALF_TAPS, HALF_TAPS])
        den = op("Conv", [w_b1t, k1], f"{name}_den", pads=[HALF_TAPS, HALF_TAPS])
        out = op("Div", [num, op("Max", [den, "eps"], f"{name}_den_safe")], f"{name}_avg")
        return op("Transpose", [out], f"{name}_out", perm=[0, 2, 1]), den

    g_ah = kernel("sigma", "k_ah")
    g_emo = kernel("emotion_sigma", "k_emo")
    contrib_s, valid_den = smooth(contrib, "kshape_con", g_ah, None, "ah")
    nodes.append(helper.make_node("Identity", [contrib_s], ["cue_contrib"], name="cue_contrib"))

    total = op("ReduceSum", [contrib_s, "axis_last"], "contrib_sum", keepdims=0)
    logit = op("Add", [total, "bias"], "frame_logit_raw")
    nodes.append(helper.make_node("Identity", [logit], ["frame_ah_logit"], name="frame_ah_logit"))

    # -- leave-one-modality-out attribution ------------------------------------------------
    group_sum = op("MatMul", [contrib_s, "attribution_groups"], "group_contrib")  # [B,T,4]
    logit3 = op("Unsqueeze", [logit, "axis_last"], "logit3")
    p_full = op("Sigmoid", [logit3], "p_full")
    p_without = op("Sigmoid", [op("Sub", [logit3, group_sum], "logit_without")], "p_without")
    nodes.append(helper.make_node("Sub", [p_full, p_without], ["attribution"], name="attribution"))

    # -- emotion ------------------------------------------------------------------------------
    emo_s, _ = smooth("emotion", "kshape_emo", g_emo, visual, "emo")
    nodes.append(
        helper.make_node(
            "Log", [op("Add", [emo_s, "eps"], "emo_eps")], ["frame_emotion_logits"], name="emo_log"
        )
    )
    # support: smoothed face weight over smoothed valid weight, same emotion kernel
    kv = op("Reshape", [g_emo, "kshape"], "support_k")
    fw3 = op("Unsqueeze", [op("Mul", [visual, "valid"], "fv_mul"), "unsq_1"], "fw3")
    num = op("Conv", [fw3, kv], "support_num", pads=[HALF_TAPS, HALF_TAPS])
    den = op("Conv", [valid3, kv], "support_den", pads=[HALF_TAPS, HALF_TAPS])
    support = op("Div", [num, op("Max", [den, "eps"], "support_den_safe")], "support_b1t")
    nodes.append(
        helper.make_node("Squeeze", [support, "unsq_1"], ["emotion_support"], name="support")
    )

    # -- valence --------------------------------------------------------------------------------
    vnum = op("Add", [face_val, text_val], "valence_num")
    vden = op("Max", [op("Add", [visual, has_text], "valence_den_raw"), "one"], "valence_den")
    nodes.append(helper.make_node("Div", [vnum, vden], ["frame_valence"], name="frame_valence"))

    # -- clip: soft maximum (log-mean-exp) of frame logits over valid frames ------------------
    z = op("Mul", [logit, "beta"], "clip_z")
    z = op("Add", [z, op("Log", [op("Add", ["valid", "tiny"], "valid_tiny")], "log_valid")], "cz")
    lse = op("ReduceLogSumExp", [z], "clip_lse", axes=[1], keepdims=0)
    count = op("ReduceSum", ["valid", "axis_time"], "clip_count", keepdims=0)
    mean = op("Sub", [lse, op("Log", [op("Max", [count, "one"], "count_safe")], "log_n")], "lme")
    pooled = op("Div", [mean, "beta"], "clip_pooled")
    clip = op("Add", [op("Mul", [pooled, "clip_scale"], "clip_scaled"), "clip_bias"], "clip_raw")
    nodes.append(helper.make_node("Identity", [clip], ["clip_ah_logit"], name="clip_ah_logit"))
    del valid_den

    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("cues", f32, ["B", "T", n_cue]),
        helper.make_tensor_value_info("masks", f32, ["B", "T", len(MASK_NAMES)]),
        helper.make_tensor_value_info("emotion", f32, ["B", "T", n_emo]),
        helper.make_tensor_value_info("text_emb", f32, ["B", "T", EMBED_DIM]),
        helper.make_tensor_value_info("face_emb", f32, ["B", "T", FACE_EMBED_DIM]),
        helper.make_tensor_value_info("voice_emb", f32, ["B", "T", VOICE_EMBED_DIM]),
        helper.make_tensor_value_info("valid", f32, ["B", "T"]),
        helper.make_tensor_value_info("fps", f32, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info("frame_ah_logit", f32, ["B", "T"]),
        helper.make_tensor_value_info("frame_emotion_logits", f32, ["B", "T", n_emo]),
        helper.make_tensor_value_info("emotion_support", f32, ["B", "T"]),
        helper.make_tensor_value_info("frame_valence", f32, ["B", "T"]),
        helper.make_tensor_value_info("clip_ah_logit", f32, ["B"]),
        helper.make_tensor_value_info("cue_contrib", f32, ["B", "T", n_con]),
        helper.make_tensor_value_info("attribution", f32, ["B", "T", len(ATTRIBUTION_NAMES)]),
        helper.make_tensor_value_info("cue_features", f32, ["B", "T", len(FEATURE_NAMES)]),
        helper.make_tensor_value_info("prototype_match", f32, ["B", "T", 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "ahmer_fusion",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ahmer"
    )
    model.ir_version = 8
    meta = {
        "weights_id": w.weights_id,
        "cue_names": ",".join(CUE_NAMES),
        "contrib_names": ",".join(CONTRIB_NAMES),
        "feature_names": ",".join(FEATURE_NAMES),
        "attribution_names": ",".join(ATTRIBUTION_NAMES),
        **w.metadata,
        "contract": FUSION_CONTRACT,
        "uses_embeddings": "1" if w.uses_embeddings else "0",
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model
