"""Export all-MiniLM-L6-v2 (a sentence-transformers folder) to ONNX with pooling in the graph.

Output folder:

- ``model.onnx`` (opset 17, self-contained): inputs ``input_ids`` and ``attention_mask``, int64
  ``[N, L]`` (both axes dynamic, L <= 512); output ``embedding`` float32 ``[N, 384]``: mean of
  the last hidden states over the attention mask, L2-normalised — what
  ``SentenceTransformer.encode`` returns. ``token_type_ids`` are zeros inside the graph (one
  segment per text), which is what the tokenizer gives for single texts.
- ``tokenizer.json``: the model's tokenizer, set up like sentence-transformers calls it
  (truncation to ``max_seq_length`` = 256, padding to the longest text in the batch), so
  ``tokenizers.Tokenizer.from_file(...).encode_batch(texts)`` yields the graph's inputs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel
from transformers.utils import logging as hf_logging

from ahmer.models.contract import EMBED_DIM

__all__ = ["DIM", "MAX_SEQ_LENGTH", "MeanPooledEncoder", "convert", "tokenizer_json"]

DIM = EMBED_DIM  # the fusion graph's text_emb width
MAX_SEQ_LENGTH = 256
_OPSET = 17


class MeanPooledEncoder(nn.Module):
    """BERT + attention-masked mean pooling + L2 normalisation (sentence-transformers' stack)."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, p=2.0, dim=1)


def _load(src: Path) -> MeanPooledEncoder:
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused pooler weights are expected
    hf_logging.disable_progress_bar()
    try:
        bert = BertModel.from_pretrained(
            str(src), local_files_only=True, add_pooling_layer=False, attn_implementation="eager"
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return MeanPooledEncoder(bert).eval()


def _max_seq_length(src: Path) -> int:
    cfg = src / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text())["max_seq_length"])
    return MAX_SEQ_LENGTH


def tokenizer_json(src: Path) -> str:
    """The model's tokenizer.json with sentence-transformers' truncation and padding."""
    data = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    data["truncation"] = {
        "direction": "Right",
        "max_length": _max_seq_length(src),
        "strategy": "LongestFirst",
        "stride": 0,
    }
    pad = data.get("padding") or {}
    data["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": pad.get("pad_id", 0),
        "pad_type_id": pad.get("pad_type_id", 0),
        "pad_token": pad.get("pad_token", "[PAD]"),
    }
    return json.dumps(data, ensure_ascii=False)


def convert(src: Path, dest: Path) -> None:
    """Write ``dest/model.onnx`` and ``dest/tokenizer.json`` from the folder ``src``."""
    import onnx

    dest.mkdir(parents=True, exist_ok=True)
    model = _load(src)
    ids = torch.tensor(
        [[101, 7592, 2088, 999, 102, 0, 0], [101, 2023, 2003, 1037, 3231, 1012, 102]]
    )
    mask = (ids != 0).to(torch.int64)
    onnx_path = dest / "model.onnx"
    with warnings.catch_warnings():
        # tracer warnings about shape-dependent Python branches: the self-check below runs
        # other shapes than the trace saw, which is the actual proof.
        warnings.simplefilter("ignore")
        _export(model, ids, mask, onnx_path)
    proto = onnx.load(str(onnx_path))
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    out_dims[1].Clear()
    out_dims[1].dim_value = DIM
    meta = {
        "pooling": "mean over attention_mask, then L2 normalisation",
        "max_seq_length": str(_max_seq_length(src)),
        "source": "sentence-transformers/all-MiniLM-L6-v2",
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(onnx_path))
    (dest / "tokenizer.json").write_text(tokenizer_json(src), encoding="utf-8")
    _self_check(model, onnx_path)


def _export(model: MeanPooledEncoder, ids: torch.Tensor, mask: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "N", 1: "L"},
            "attention_mask": {0: "N", 1: "L"},
            "embedding": {0: "N"},
        },
        opset_version=_OPSET,
        dynamo=False,
        external_data=False,
    )


def _self_check(model: MeanPooledEncoder, onnx_path: Path) -> None:
    """ONNX vs torch on batch/length shapes other than the traced one, with padding."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for n, length in ((3, 11), (1, 3), (2, 64)):
        ids = torch.randint(1000, 30000, (n, length), generator=gen)
        mask = torch.ones_like(ids)
        mask[n - 1, length // 2 :] = 0
        ids = ids * mask
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        got = sess.run(["embedding"], feeds)[0]
        with torch.no_grad():
            want = model(ids, mask).numpy()
        if got.shape != (n, DIM) or not np.allclose(got, want, atol=1e-5):
            raise ValueError(f"ONNX differs from torch by {np.abs(got - want).max():.2e}")
