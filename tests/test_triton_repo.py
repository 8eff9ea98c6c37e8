"""The Triton model repository (``ahmer models triton-repo``) and the local tritonserver.

Every ``config.pbtxt`` is parsed into Triton's own ``ModelConfig`` protobuf and compared with
the ONNX file beside it, read here with ``onnx`` itself; the recorded sha256s are recomputed;
tampering with a copy, a config or the record is detected. Then a real ``tritonserver`` (the
``nvidia-pytriton`` wheel's, from ``.venv-triton``) serves a python-backend repository on
127.0.0.1 and answers like in-process ONNX Runtime, batching concurrent callers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_checks import one_error_line
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ahmer.models.contract import FUSION_MODEL
from ahmer.models.triton.repository import (
    MAX_BATCH_SIZE,
    REPO_MANIFEST,
    TritonRepoError,
    check_repository,
    read_repository,
    write_repository,
)

MODELS = ("fer_emotion", "minilm", FUSION_MODEL)
NP_TO_TRITON = {"float32": "TYPE_FP32", "int64": "TYPE_INT64", "int32": "TYPE_INT32"}
VARIANTS = {  # name -> write_repository options
    "cpu": {"kind": "cpu"},
    "gpu": {"kind": "gpu"},
    "gpu-fp16": {"kind": "gpu", "tensorrt_fp16": True},
    "cpu-python": {"kind": "cpu", "python_backend": True},
    "gpu-python": {"kind": "gpu", "python_backend": True},
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def repos(model_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {
        name: write_repository(model_store, root / name, **options)
        for name, options in VARIANTS.items()
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_config_parses_and_matches_its_onnx_signature(repos, model_store, variant):
    report, options = repos[variant], VARIANTS[variant]
    assert sorted(m.name for m in report.models) == sorted(MODELS)
    folders = sorted(p.name for p in report.out.iterdir() if p.is_dir())
    assert folders == sorted(MODELS)
    for name in MODELS:
        config = _parse(report.out / name / "config.pbtxt")
        assert config.name == name
        if options.get("python_backend"):
            assert (config.backend, config.platform) == ("python", "")
            assert (report.out / name / "1" / "model.py").is_file()
        else:
            assert (config.platform, config.backend) == ("onnxruntime_onnx", "")
            assert not (report.out / name / "1" / "model.py").exists()
        graph = onnx.load(str(report.out / name / "1" / "model.onnx")).graph
        init = {i.name for i in graph.initializer}
        onnx_in = [v for v in graph.input if v.name not in init]
        batched = config.max_batch_size > 0
        # the fusion's fps [1] has no batch axis: no batching for it, batching for the others
        assert batched == (name != FUSION_MODEL)
        assert config.max_batch_size in (0, MAX_BATCH_SIZE)
        for ours, theirs in ((config.input, onnx_in), (config.output, graph.output)):
            assert [t.name for t in ours] == [v.name for v in theirs]
            for tensor, value in zip(ours, theirs, strict=True):
                ttype = value.type.tensor_type
                dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name
                assert model_config_pb2.DataType.Name(tensor.data_type) == NP_TO_TRITON[dtype]
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim]
                if batched:
                    assert not ttype.shape.dim[0].HasField("dim_value")  # a dynamic batch axis
                    dims = dims[1:]
                assert list(tensor.dims) == dims, (name, tensor.name)
        if batched:
            batching = config.dynamic_batching
            assert batching.max_queue_delay_microseconds == report.max_queue_delay_us
            assert list(batching.preferred_batch_size)
            assert max(batching.preferred_batch_size) <= config.max_batch_size
        else:
            assert not config.HasField("dynamic_batching")
        kind = "KIND_GPU" if options["kind"] == "gpu" else "KIND_CPU"
        assert [
            model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group
        ] == [kind]
        accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
        if options.get("tensorrt_fp16"):
            assert [a.name for a in accelerators] == ["tensorrt"]
            assert dict(accelerators[0].parameters) == {"precision_mode": "FP16"}
        else:
            assert not accelerators
        params = {k: v.string_value for k, v in config.parameters.items()}
        onnx_sha = _sha256(report.out / name / "1" / "model.onnx")
        assert params["ahmer_sha256"] == onnx_sha == report.model(name).sha256
        assert params["ahmer_version"] == model_store.manifest()[name].version


def test_copies_are_the_store_files_and_the_record_says_so(repos, model_store):
    report = repos["cpu"]
    body = json.loads((report.out / REPO_MANIFEST).read_text())
    assert body["schema"] == "ahmer.triton-repo/1" and body["kind"] == "cpu"
    assert body["store"] == str(model_store.root)
    manifest = model_store.manifest()
    for model in body["models"]:
        path = model_store.path(model["name"])
        onnx_file = path if path.is_file() else path / "model.onnx"
        assert model["sha256"] == _sha256(onnx_file)
        assert model["store_sha256"] == manifest[model["name"]].sha256
        assert model["version"] == manifest[model["name"]].version
    assert read_repository(report.out).models == report.models
    for variant in VARIANTS:
        assert check_repository(model_store, repos[variant].out) == []


def _fresh(model_store, tmp_path, **options):
    return write_repository(model_store, tmp_path / "repo", **options).out


def test_tampering_is_detected(model_store, tmp_path):
    out = _fresh(model_store, tmp_path, python_backend=True)
    onnx_copy = out / "fer_emotion" / "1" / "model.onnx"
    data = bytearray(onnx_copy.read_bytes())
    data[-1] ^= 0xFF
    onnx_copy.write_bytes(bytes(data))
    problems = check_repository(model_store, out)
    assert len(problems) == 1 and problems[0].startswith("fer_emotion: 1/model.onnx")

    out = _fresh(model_store, tmp_path, python_backend=True)  # replaces the tampered one
    assert check_repository(model_store, out) == []
    config = out / "minilm" / "config.pbtxt"
    sha = read_repository(out).model("minilm").sha256
    config.write_text(config.read_text().replace(sha, "0" * 64))
    (out / FUSION_MODEL / "1" / "model.py").write_text("raise SystemExit\n")
    problems = check_repository(model_store, out)
    assert any(p.startswith("minilm: config.pbtxt parameter ahmer_sha256") for p in problems)
    assert any(p.startswith(f"{FUSION_MODEL}: 1/model.py") for p in problems)
    assert len(problems) == 2

    # a repository written from another store's version: the record disagrees with the store
    out = _fresh(model_store, tmp_path)
    record = json.loads((out / REPO_MANIFEST).read_text())
    record["models"][0]["version"] = "older@0"
    record["models"][1]["sha256"] = "f" * 64
    (out / REPO_MANIFEST).write_text(json.dumps(record))
    problems = check_repository(model_store, out)
    name0, name1 = record["models"][0]["name"], record["models"][1]["name"]
    assert any(p.startswith(f"{name0}: repository has older@0") for p in problems)
    assert any(p.startswith(f"{name1}: repository has sha256 ffffffffffff") for p in problems)

    (out / REPO_MANIFEST).unlink()
    assert "no ahmer_repo.json" in check_repository(model_store, out)[0]


def test_a_corrupt_store_model_is_refused(model_store, tmp_path):
    from ahmer.models.store.model_store import ModelStore

    root = tmp_path / "store"
    root.mkdir()
    shutil.copyfile(model_store.root / "manifest.json", root / "manifest.json")
    shutil.copytree(model_store.root / "fer_emotion", root / "fer_emotion")
    onnx_file = root / model_store.manifest()["fer_emotion"].path
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(TritonRepoError, match="'fer_emotion' .* is corrupt"):
        write_repository(ModelStore(root), tmp_path / "repo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_an_out_holding_something_else_is_refused(model_store, tmp_path):
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(TritonRepoError, match="not empty and holds no ahmer_repo.json"):
        write_repository(model_store, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(TritonRepoError, match="not a folder"):
        write_repository(model_store, afile)
    with pytest.raises(TritonRepoError, match="needs --kind gpu"):
        write_repository(model_store, tmp_path / "new", tensorrt_fp16=True)
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    write_repository(model_store, empty)  # an empty folder is fine
    assert check_repository(model_store, empty) == []
    # nothing staged is left beside the outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "data", "empty"]


@dataclass(frozen=True)
class _Fusion:  # what write_repository needs of a FusionRef
    name: str
    path: Path
    sha256: str
    version: str


def test_a_given_fusion_is_served_under_its_own_name(model_store, tmp_path):
    graph = tmp_path / "trained" / "fusion.onnx"
    graph.parent.mkdir()
    shutil.copyfile(model_store.path(FUSION_MODEL), graph)
    fusion = _Fusion("ah_fusion_mine", graph, _sha256(graph), "mine@3")
    report = write_repository(model_store, tmp_path / "repo", fusion=fusion)
    assert sorted(m.name for m in report.models) == ["ah_fusion_mine", "fer_emotion", "minilm"]
    assert report.fusion == "ah_fusion_mine"
    config = _parse(report.out / "ah_fusion_mine" / "config.pbtxt")
    assert config.name == "ah_fusion_mine" and config.max_batch_size == 0
    assert config.parameters["ahmer_version"].string_value == "mine@3"
    assert check_repository(model_store, report.out, fusion=fusion) == []
    # the fusion's file changed after it was recorded: refused, and the repository says so
    changed = _Fusion("ah_fusion_mine", graph, "0" * 64, "mine@3")
    with pytest.raises(TritonRepoError, match="ah_fusion_mine.*recorded 000000000000"):
        write_repository(model_store, tmp_path / "repo2", fusion=changed)
    assert not (tmp_path / "repo2").exists()
    other = _Fusion("ah_fusion_mine", graph, _sha256(graph), "mine@4")
    assert check_repository(model_store, report.out, fusion=other) == [
        "ah_fusion_mine: repository has mine@3, the store has mine@4"
    ]


def _ahmer(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ahmer")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_writes_a_repository_and_refuses_with_one_line(model_store, tmp_path):
    out = tmp_path / "cli-repo"
    proc = _ahmer("models", "triton-repo", str(out), "--kind", "gpu", "--tensorrt-fp16")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 3 models (onnxruntime_onnx, gpu) to {out}" in proc.stderr
    for name in MODELS:
        assert f"  {name}: " in proc.stderr  # a progress line per model
    assert check_repository(model_store, out) == []
    assert read_repository(out).tensorrt_fp16

    proc = _ahmer("models", "triton-repo", str(tmp_path / "x"), "--tensorrt-fp16")
    one_error_line(proc, 1, "--tensorrt-fp16 needs --kind gpu")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("")
    proc = _ahmer("models", "triton-repo", str(tmp_path / "busy"))
    one_error_line(proc, 1, str(tmp_path / "busy"), "refusing to replace it")
    proc = _ahmer("models", "triton-repo", str(out), "--max-queue-delay-us", "-5")
    assert proc.returncode == 2 and "0..10000000" in proc.stderr
    proc = _ahmer("models", "triton-repo", str(out), "--fusion", "no-such-fusion")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no-such-fusion" in proc.stderr


# -- a real tritonserver ------------------------------------------------------------------


@pytest.fixture(scope="module")
def triton(model_store, tmp_path_factory):
    from ahmer.models.triton.local import LocalTriton

    repo = write_repository(
        model_store, tmp_path_factory.mktemp("triton") / "repo", python_backend=True
    )
    server = LocalTriton(repo.out)
    try:
        server.start(timeout=180)
        yield server
    finally:
        pid = server.pid
        server.close()
        if pid is not None:  # nothing of its process group is left
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)


@pytest.fixture(scope="module")
def face_crops(model_path):
    """Real face crops: windows around the sample photo's face, brightness and mirror
    variants, as the 64x64 grey 0..255 float input of ``fer_emotion``."""
    image = cv2.imread(str(model_path("sample_face")), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    crops = []
    for dy in (-12, 0, 12):
        for dx in (-12, 0, 12):
            face = image[20 + dy : 200 + dy, 150 + dx : 330 + dx]
            crops.append(cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA))
    crops += [c[:, ::-1] for c in crops[:4]] + [np.clip(c * 0.7, 0, 255) for c in crops[:3]]
    return np.asarray(crops, np.float32)[:, None]  # [16, 1, 64, 64]


def _infer(client, model, feeds, outputs):
    from tritonclient.grpc import InferInput, InferRequestedOutput
    from tritonclient.utils import np_to_triton_dtype

    inputs = []
    for name, value in feeds.items():
        tensor = InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    result = client.infer(model, inputs, outputs=[InferRequestedOutput(n) for n in outputs])
    return {n: result.as_numpy(n) for n in outputs}


def _session(triton, name):
    return ort.InferenceSession(
        str(triton.repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )


def _stats(client, model):
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def test_local_triton_runs_fer_emotion_like_onnxruntime(triton, face_crops):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(triton.url)
    assert client.is_server_ready()
    for name in MODELS:
        assert client.is_model_ready(name)
        params = client.get_model_config(name, as_json=True)["config"]["parameters"]
        assert params["ahmer_sha256"]["string_value"] == _sha256(
            triton.repo / name / "1" / "model.onnx"
        )
    session = _session(triton, "fer_emotion")
    outputs = [o.name for o in session.get_outputs()]
    want = dict(zip(outputs, session.run(outputs, {"image": face_crops}), strict=True))
    got = _infer(client, "fer_emotion", {"image": face_crops}, outputs)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)
    probs = got["probs"]
    assert probs.shape == (16, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert len(set(map(tuple, np.round(probs, 4)))) > 8  # the crops differ, so do the answers


def test_concurrent_callers_are_batched_and_answered_alike(triton, face_crops):
    """8 threads send one crop per call (a live frame each): Triton's batcher joins them, and
    every caller still gets exactly its own row."""
    import tritonclient.grpc as grpcclient

    session = _session(triton, "fer_emotion")
    want = session.run(["probs"], {"image": face_crops})[0]
    first = grpcclient.InferenceServerClient(triton.url)
    before = _stats(first, "fer_emotion")
    errors: list[BaseException] = []
    worst = [0.0]
    barrier = threading.Barrier(8)

    def caller(k: int) -> None:
        client = grpcclient.InferenceServerClient(triton.url)
        try:
            barrier.wait()
            for i in range(24):
                row = (k + i) % len(face_crops)
                got = _infer(client, "fer_emotion", {"image": face_crops[row : row + 1]}, ["probs"])
                worst[0] = max(worst[0], float(np.abs(got["probs"][0] - want[row]).max()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert worst[0] <= 1e-5
    after = _stats(first, "fer_emotion")
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == 8 * 24
    assert executions < inferences, "no batch larger than 1 was formed"
    print(f"fer_emotion: {inferences} requests in {executions} executions")


def test_minilm_requests_of_different_lengths_and_the_fusion(triton):
    """Texts of different token lengths arrive together: the wrapper batches only what fits
    together and answers each exactly; the fusion (no batch axis) answers like onnxruntime."""
    import tritonclient.grpc as grpcclient

    session = _session(triton, "minilm")
    rng = np.random.default_rng(7)
    feeds = []
    for length in (5, 9, 9, 17, 5, 33, 9, 12):
        ids = rng.integers(1000, 20000, (2, length)).astype(np.int64)
        ids[:, 0], ids[:, -1] = 101, 102
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    results: dict[int, np.ndarray] = {}

    def caller(k: int) -> None:
        client = grpcclient.InferenceServerClient(triton.url)
        results[k] = _infer(client, "minilm", feeds[k], ["embedding"])["embedding"]

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == list(range(len(feeds)))
    for k, feed in enumerate(feeds):
        want = session.run(["embedding"], feed)[0]
        np.testing.assert_allclose(results[k], want, rtol=0, atol=1e-5)

    fusion = _session(triton, FUSION_MODEL)
    frames = 40
    feed = {}
    for spec in fusion.get_inputs():
        shape = [1 if s == "B" else frames if s == "T" else s for s in spec.shape]
        feed[spec.name] = rng.random(shape).astype(np.float32)
    feed["fps"] = np.array([5.0], np.float32)
    outputs = [o.name for o in fusion.get_outputs()]
    want = dict(zip(outputs, fusion.run(outputs, feed), strict=True))
    got = _infer(grpcclient.InferenceServerClient(triton.url), FUSION_MODEL, feed, outputs)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)


def test_restart_keeps_the_address(triton, face_crops):
    import tritonclient.grpc as grpcclient

    url, pid = triton.url, triton.pid
    triton.restart(timeout=180)
    assert triton.url == url and triton.pid != pid
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the old group is gone, stubs included
    client = grpcclient.InferenceServerClient(triton.url)
    got = _infer(client, "fer_emotion", {"image": face_crops[:2]}, ["probs"])
    assert got["probs"].shape == (2, 7)


def test_triton_local_command_serves_until_interrupted(model_store):
    """The one command of docs/models.md (a local Triton): it writes a repository, serves it
    on the given ports, and Ctrl-C stops Triton and removes the temporary repository."""
    import signal
    import time
    import urllib.request

    from ahmer.models.triton.local import _free_port

    ports = [_free_port() for _ in range(3)]
    exe = Path(sys.executable).with_name("ahmer")
    cmd = [str(exe), "models", "triton-local", "--grpc-port", str(ports[0])]
    cmd += ["--http-port", str(ports[1]), "--metrics-port", str(ports[2])]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("Triton ready"):
                break
        assert f"gRPC 127.0.0.1:{ports[0]}" in lines[-1]
        ready = f"http://127.0.0.1:{ports[1]}/v2/health/ready"
        with urllib.request.urlopen(ready, timeout=5) as reply:
            assert reply.status == 200
        repo = next(line for line in lines if line.startswith("wrote 3 models"))
        repo = Path(repo.rsplit(" to ", 1)[1].strip())
        assert (repo / REPO_MANIFEST).is_file()
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(60) == 130, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopping tritonserver" in rest and "Traceback" not in rest
    assert not repo.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(ready, timeout=2)


def test_triton_local_refuses_half_a_tls_pair_before_any_work(model_store, tmp_path):
    """--tls-cert without --tls-key: a usage error (exit 2, one line) before a repository is
    written or Triton started."""
    exe = Path(sys.executable).with_name("ahmer")
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    run = subprocess.run(
        [
            str(exe),
            "models",
            "triton-local",
            "--tls-cert",
            str(cert),
            "--repo",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "ahmer models: error: TLS needs both tls_cert and tls_key (PEM files), or neither"
    ]
    assert not (tmp_path / "r").exists()


def test_ports_in_use_are_refused(triton):
    """A second Triton on the same ports is refused before it starts (the first one's health
    answers must not pass for its own)."""
    from ahmer.models.triton.local import LocalTriton, TritonLocalError

    ports = {"grpc_port": triton.grpc_port, "http_port": triton.http_port}
    second = LocalTriton(triton.repo, metrics_port=triton.metrics_port, **ports)
    try:
        with pytest.raises(TritonLocalError, match=f"gRPC port {triton.grpc_port} .* in use"):
            second.start(timeout=30)
        assert second.pid is None
    finally:
        second.close()
    assert triton.running()


def test_a_missing_env_says_run_ci_install(tmp_path, monkeypatch):
    from ahmer.models.triton.local import LocalTriton, TritonLocalError

    monkeypatch.setenv("AHMER_TRITON_ENV", str(tmp_path / "nowhere"))
    with pytest.raises(TritonLocalError, match="run .ci/install"):
        LocalTriton(tmp_path).start()
    empty = tmp_path / "env"
    empty.mkdir()
    with pytest.raises(TritonLocalError, match="holds no nvidia-pytriton.*run .ci/install"):
        LocalTriton(tmp_path, env=empty).start()


def test_a_failing_start_shows_the_log(tmp_path):
    """A repository whose model cannot load: Triton exits, and the error carries its log."""
    from ahmer.models.triton.local import LocalTriton, TritonLocalError

    bad = tmp_path / "repo" / "broken"
    (bad / "1").mkdir(parents=True)
    shutil.copyfile(Path(__file__), bad / "1" / "model.py")  # not a Triton model
    (bad / "config.pbtxt").write_text('name: "broken"\nbackend: "python"\n')
    server = LocalTriton(tmp_path / "repo")
    try:
        with pytest.raises(TritonLocalError, match=r"(?s)exited with code \d+.*broken"):
            server.start(timeout=120)
    finally:
        server.close()
    assert not server.running()
