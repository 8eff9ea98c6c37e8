"""The inference backend interface and its ONNX Runtime implementation, on real ONNX files:
the store's FER mini-Xception and a small graph written with ``onnx.helper``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ahmer.models.backends.base import (
    BackendError,
    InferenceBackend,
    Signature,
)
from ahmer.models.backends.factory import make_backend
from ahmer.models.backends.ort import OnnxRuntimeBackend, choose_providers
from ahmer.models.contract import TensorSpec

RNG = np.random.default_rng(7)
W = RNG.standard_normal((4, 2)).astype(np.float32)
B = RNG.standard_normal(2).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """``y = x @ W + B`` and ``z = x + float(mask)``; ``x`` float32 [N, 4], ``mask`` int64
    [N, 4], both with the named batch axis ``N``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    mask = helper.make_tensor_value_info("mask", TensorProto.INT64, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["y"]),
        helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "maskf"], ["z"]),
    ]
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")]
    graph = helper.make_graph(nodes, "tiny", [x, mask], [y, z], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="purpose", value="test")
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def backend():
    b = make_backend("onnxruntime", intra_op_threads=1)
    yield b
    b.close()


def _feeds(n: int) -> dict[str, np.ndarray]:
    return {
        "x": RNG.standard_normal((n, 4)).astype(np.float32),
        "mask": RNG.integers(0, 2, (n, 4)).astype(np.int64),
    }


def test_signature_of_small_graph(backend, tiny_model):
    sig = backend.load("tiny", tiny_model)
    assert isinstance(backend, InferenceBackend)
    assert sig == backend.signature("tiny")
    assert sig.inputs == (
        TensorSpec("x", "float32", ("N", 4)),
        TensorSpec("mask", "int64", ("N", 4)),
    )
    assert sig.outputs == (
        TensorSpec("y", "float32", ("N", 2)),
        TensorSpec("z", "float32", ("N", 4)),
    )
    assert sig.meta("purpose") == "test"
    assert backend.loaded() == ["tiny"]


def test_fer_signature_and_metadata(backend, model_path):
    sig = backend.load("fer_emotion", model_path("fer_emotion"))
    assert isinstance(sig, Signature)
    assert sig.inputs == (TensorSpec("image", "float32", ("N", 1, 64, 64)),)
    assert sig.outputs == (
        TensorSpec("probs", "float32", ("N", 7)),
        TensorSpec("embedding", "float32", ("N", 128)),
    )
    assert sig.meta("labels") == "angry,disgust,fear,happy,sad,surprise,neutral"


def test_run_matches_direct_session(backend, tiny_model, model_path):
    backend.load("tiny", tiny_model)
    feeds = _feeds(3)
    got = backend.run("tiny", feeds)
    assert set(got) == {"y", "z"}
    np.testing.assert_allclose(got["y"], feeds["x"] @ W + B, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["z"], feeds["x"] + feeds["mask"].astype(np.float32))
    only_z = backend.run("tiny", feeds, ["z"])
    assert list(only_z) == ["z"]

    path = model_path("fer_emotion")
    backend.load("fer_emotion", path)
    image = (RNG.random((4, 1, 64, 64)) * 255).astype(np.float32)
    direct = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = direct.run(["probs"], {"image": image})[0]
    got = backend.run("fer_emotion", {"image": image})["probs"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_batch_rows_equal_single_runs(backend, model_path):
    backend.load("fer_emotion", model_path("fer_emotion"))
    image = (RNG.random((5, 1, 64, 64)) * 255).astype(np.float32)
    batch = backend.run("fer_emotion", {"image": image})["probs"]
    assert batch.shape == (5, 7)
    for i in range(5):
        single = backend.run("fer_emotion", {"image": image[i : i + 1]})["probs"]
        np.testing.assert_allclose(single[0], batch[i], rtol=1e-5, atol=1e-6)
    # rows are not all alike: the model looks at its input
    assert np.abs(batch - batch[0]).max() > 1e-4


def test_non_contiguous_input_is_accepted(backend, tiny_model):
    backend.load("tiny", tiny_model)
    feeds = _feeds(6)
    strided = {k: v[::2] for k, v in feeds.items()}
    assert not strided["x"].flags["C_CONTIGUOUS"]
    got = backend.run("tiny", strided)["y"]
    np.testing.assert_allclose(got, feeds["x"][::2] @ W + B, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: {"x": f["x"]}, ["missing input 'mask'", "int64 [N, 4]"]),
        (lambda f: {**f, "extra": f["x"]}, ["unexpected input 'extra'"]),
        (lambda f: {**f, "x": f["x"].astype(np.float64)}, ["'x'", "float64", "float32 [N, 4]"]),
        (lambda f: {**f, "mask": f["mask"].astype(np.int32)}, ["'mask'", "int32", "int64"]),
        (lambda f: {**f, "x": f["x"][None]}, ["'x'", "rank 3", "x: float32 [N, 4]"]),
        (lambda f: {**f, "x": f["x"][:, :3]}, ["'x'", "axis 1 must be 4"]),
        (lambda f: {**f, "mask": f["mask"][:2]}, ["'mask'", "N=2", "N=3"]),
        (lambda f: {**f, "x": f["x"].tolist()}, ["'x'", "numpy array", "list"]),
    ],
    ids=["missing", "extra", "dtype", "int-dtype", "rank", "fixed-axis", "batch-mismatch", "list"],
)
def test_bad_inputs_name_the_tensor(backend, tiny_model, change, words):
    backend.load("tiny", tiny_model)
    with pytest.raises(BackendError) as err:
        backend.run("tiny", change(_feeds(3)))
    for word in words:
        assert word in str(err.value)


def test_unknown_model_output_and_file(backend, tiny_model, tmp_path):
    with pytest.raises(BackendError, match="model 'nope' is not loaded"):
        backend.run("nope", _feeds(1))
    with pytest.raises(BackendError, match="model 'nope' is not loaded"):
        backend.signature("nope")
    backend.load("tiny", tiny_model)
    with pytest.raises(BackendError, match="unknown output 'w'"):
        backend.run("tiny", _feeds(1), ["w"])
    with pytest.raises(BackendError, match="no model file"):
        backend.load("missing", tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model")
    with pytest.raises(BackendError, match="cannot load garbage.onnx"):
        backend.load("garbage", garbage)
    assert backend.loaded() == ["tiny"]  # a failed load leaves the others alone


def test_cuda_on_cpu_machine_falls_back_with_one_warning(caplog, tiny_model):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA provider")
    with caplog.at_level(logging.INFO, logger="ahmer.models.backends.ort"):
        b = make_backend(device="cuda")
        b.load("a", tiny_model)
        b.load("b", tiny_model)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "'cuda'" in text and "CPUExecutionProvider" in text and "not available" in text
    assert any(r.levelno == logging.INFO and "providers" in r.getMessage() for r in caplog.records)
    info = b.describe()
    assert info["kind"] == "onnxruntime"
    assert info["device"] == "cpu" and info["requested_device"] == "cuda"
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["models"] == {"a": ["CPUExecutionProvider"], "b": ["CPUExecutionProvider"]}
    b.close()


def test_describe_and_auto_on_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="ahmer.models.backends.ort"):
        b = make_backend(device="auto")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert b.describe()["providers"] == ["CPUExecutionProvider"]
        assert not caplog.records  # auto never warns: CPU is a legitimate pick
    assert b.describe()["requested_device"] == "auto"


def test_provider_choice_table():
    cpu, cuda, trt = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
    assert choose_providers("auto", [trt, cuda, cpu])[0] == [trt, cuda, cpu]
    assert choose_providers("auto", [cuda, cpu])[0] == [cuda, cpu]
    assert choose_providers("auto", [cpu])[0] == [cpu]
    assert choose_providers("cuda", [trt, cuda, cpu])[:3:2] == ([cuda, cpu], False)
    assert choose_providers("tensorrt", [cuda, cpu])[::2] == ([cuda, cpu], True)
    assert choose_providers("tensorrt", [cpu])[::2] == ([cpu], True)
    assert choose_providers("cpu", [trt, cuda, cpu])[0] == [cpu]
    with pytest.raises(BackendError, match="unknown device 'tpu'"):
        choose_providers("tpu", [cpu])


def test_factory_errors():
    with pytest.raises(BackendError, match="triton url must be HOST:PORT"):
        make_backend("triton", url="http://localhost:8001")
    with pytest.raises(BackendError, match="triton timeout must be a number of seconds"):
        make_backend("triton", timeout=0)
    with pytest.raises(BackendError, match="unknown inference backend 'tf'"):
        make_backend("tf")
    with pytest.raises(BackendError, match="intra_op_threads"):
        OnnxRuntimeBackend(intra_op_threads=-1)


def test_close_refuses_further_use(tiny_model):
    b = make_backend()
    with b:
        b.load("tiny", tiny_model)
        assert b.loaded() == ["tiny"]
    assert b.loaded() == []
    with pytest.raises(BackendError, match="not loaded"):
        b.run("tiny", _feeds(1))
    with pytest.raises(BackendError, match="closed"):
        b.load("tiny", tiny_model)
    b.close()  # twice is fine


def test_concurrent_runs_agree(backend, model_path):
    backend.load("fer_emotion", model_path("fer_emotion"))
    images = [(RNG.random((3, 1, 64, 64)) * 255).astype(np.float32) for _ in range(8)]
    want = [backend.run("fer_emotion", {"image": im})["probs"] for im in images]
    got: list[np.ndarray | None] = [None] * len(images)

    def work(i: int) -> None:
        for _ in range(5):
            got[i] = backend.run("fer_emotion", {"image": images[i]})["probs"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
