"""The Triton backend end to end, against a real ``tritonserver`` on 127.0.0.1 (the one in the
``nvidia-pytriton`` wheel, run by :class:`~ahmer.models.triton.local.LocalTriton` from the
``.venv-triton`` env) serving a python-backend repository written from the model store: the
very ONNX files the in-process backend runs.

- ``ahmer analyze --backend triton`` gives the in-process results (probabilities within 1e-4);
- concurrent live sessions through a real ``ahmer serve --backend triton`` are batched by
  Triton (its own statistics: fewer executions than inferences);
- Triton stopped mid-run: calls end UNAVAILABLE naming Triton, health turns NOT_SERVING, the
  server lives on and serves again by itself once Triton is back; ``ahmer score`` writes the
  failed clips to failures.csv and a re-run completes them;
- a repository whose sha256 or signature is not the store's is refused at load;
- ``--triton-tls`` against a Triton whose gRPC port speaks TLS (a private test CA, trusted
  through ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``) gives the plain result; TLS mismatches and an
  untrusted CA fail with one line naming Triton.

One plain Triton for the module (a restart test brings it back before it ends), and one TLS
Triton for the TLS tests.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from media import CONFIDENT, HEDGING
from serving import free_port, serve_process, shared_analyzer, speech_clip

CLI = [sys.executable, "-m", "ahmer.service.cli"]
TIMEOUT = "5"  # seconds a Triton call may take, retries included: keeps outage tests short


def _ahmer(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def repo(model_store, tmp_path_factory):
    from ahmer.models.triton.repository import write_repository

    out = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(model_store, out, python_backend=True)
    return out


@pytest.fixture(scope="module")
def triton(repo):
    from ahmer.models.triton.local import LocalTriton

    server = LocalTriton(repo).start(timeout=240)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triton_clips")
    return {
        "hedging": speech_clip(folder, HEDGING, "hedging"),
        "confident": speech_clip(folder, CONFIDENT, "confident"),
    }


def _stats(url: str, model: str) -> tuple[int, int, dict[int, int]]:
    """Triton's own counters for ``model``: inferences, executions, {batch size: executions}."""
    import tritonclient.grpc as tgrpc

    with tgrpc.InferenceServerClient(url) as client:
        (stats,) = client.get_inference_statistics(model).model_stats
    sizes = {int(b.batch_size): int(b.compute_infer.count) for b in stats.batch_stats}
    return int(stats.inference_count), int(stats.execution_count), sizes


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.RpcError:
            return -1
    return reply.status


def _wait_health(target: str, status: int, timeout: float) -> float:
    """Seconds until health says ``status`` (fails after ``timeout``)."""
    start = time.monotonic()
    while _health(target) != status:
        assert time.monotonic() - start < timeout, f"health never became {status}"
        time.sleep(0.2)
    return time.monotonic() - start


def _max_diff(a: dict, b: dict) -> float:
    """Largest difference between the probabilities of two result dicts (clip and frames)."""
    diffs = [abs(a["clip"]["ah_probability"] - b["clip"]["ah_probability"])]
    assert len(a["frames"]) == len(b["frames"]) > 0
    for fa, fb in zip(a["frames"], b["frames"], strict=True):
        diffs.append(abs(fa["ah_probability"] - fb["ah_probability"]))
        diffs.append(abs(fa["valence"] - fb["valence"]))
        assert (fa["emotion"] is None) == (fb["emotion"] is None)
        for key in fa["emotion"] or {}:
            diffs.append(abs(fa["emotion"][key] - fb["emotion"][key]))
        for key in fa["attribution"]:
            diffs.append(abs(fa["attribution"][key] - fb["attribution"][key]))
    return max(diffs)


# -- parity -----------------------------------------------------------------------------------


def test_analyze_with_triton_matches_in_process(triton, clip_files, tmp_path):
    import json

    clip = clip_files["hedging"]
    out = tmp_path / "triton.json"
    proc = _ahmer(
        "analyze", str(clip), "--json", str(out), "--quiet",
        "--backend", "triton", "--triton-url", triton.url, "--triton-timeout", "60",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    remote = json.loads(out.read_text())
    local = shared_analyzer().analyze(clip).to_dict()  # the in-process ONNX Runtime backend
    assert remote["transcript"] == local["transcript"]
    assert [f["time"] for f in remote["frames"]] == [f["time"] for f in local["frames"]]
    assert sum(f["emotion"] is not None for f in local["frames"]) > 5  # faces were run
    diff = _max_diff(remote, local)
    print(f"ahmer analyze --backend triton vs in-process: max probability difference {diff:.2e}")
    assert diff <= 1e-4 + 1e-9  # the JSON rounds to 4 decimals


def test_raw_model_outputs_match_in_process(triton, clip_files):
    """The encoders' and the fusion's own outputs (unrounded) through Triton and in-process."""
    from ahmer.models.analyzer import Analyzer, AnalyzerConfig
    from ahmer.models.backends.factory import make_backend

    local = shared_analyzer()
    remote_backend = make_backend("triton", url=triton.url, timeout=60)
    assert remote_backend.ready()
    remote = Analyzer(AnalyzerConfig(fps=5.0), store=local.store, backend=remote_backend).load()
    try:
        described = remote.backend.describe()
        assert described["kind"] == "triton" and described["url"] == triton.url
        assert set(described["models"]) == set(remote_backend.loaded())
        assert "triton" in described["server_version"]
        # the signature is the local file's, metadata included (the encoders' label check)
        assert remote_backend.signature("fer_emotion") == local.backend.signature("fer_emotion")
        tl = local.preprocess(clip_files["hedging"])
        a, b = local.predict(tl), remote.predict(tl)
        assert a.outputs.keys() == b.outputs.keys()
        diffs = {k: float(np.max(np.abs(a.outputs[k] - b.outputs[k]))) for k in a.outputs}
        both = ~np.isnan(a.emotion[:, 0])
        assert both.sum() > 5 and np.array_equal(both, ~np.isnan(b.emotion[:, 0]))
        diffs["face_emotion"] = float(np.max(np.abs(a.emotion[both] - b.emotion[both])))
        print("Triton vs in-process, max |difference| per output:", diffs)
        assert max(diffs.values()) < 1e-5
    finally:
        remote.close()


# -- bad repositories ----------------------------------------------------------------------


def test_repository_of_other_files_is_refused_at_load(repo, model_path, tmp_path):
    """A repository whose sha256 or signature is not the local file's: refused, saying what
    differs and how to fix it; a model the repository lacks: refused, listing what it has."""
    from ahmer.models.backends.base import BackendError
    from ahmer.models.backends.factory import make_backend
    from ahmer.models.triton.local import LocalTriton

    bad = tmp_path / "repo"
    bad.mkdir()
    shutil.copytree(repo / "fer_emotion", bad / "fer_emotion")  # sha256 tampered
    config = bad / "fer_emotion" / "config.pbtxt"
    text = config.read_text()
    sha = text.split('key: "ahmer_sha256"')[1].split('string_value: "')[1].split('"')[0]
    config.write_text(text.replace(sha, "0" * 64))
    shutil.copytree(repo / "fer_emotion", bad / "fer_resized")  # signature changed
    config = bad / "fer_resized" / "config.pbtxt"
    text = config.read_text().replace('name: "fer_emotion"', 'name: "fer_resized"')
    config.write_text(text.replace("dims: [ 1, 64, 64 ]", "dims: [ 1, 48, 48 ]"))
    assert "48, 48" in config.read_text()

    fer = model_path("fer_emotion")
    with LocalTriton(bad) as server:
        backend = make_backend("triton", url=server.url, timeout=20)
        try:
            with pytest.raises(BackendError) as sha_error:
                backend.load("fer_emotion", fer)
            with pytest.raises(BackendError) as sig_error:
                backend.load("fer_resized", fer)
            with pytest.raises(BackendError) as missing:
                backend.load("minilm", model_path("minilm") / "model.onnx")
            assert backend.loaded() == []
        finally:
            backend.close()
    for error in (sha_error, sig_error):
        message = str(error.value)
        assert f"Triton at {server.url}" in message and str(fer) in message
        assert "ahmer models triton-repo" in message
    assert "its ahmer_sha256 is 000000000000..." in str(sha_error.value)
    assert "file's " + sha[:12] in str(sha_error.value)
    assert "input 'image' is FP32 [-1, 1, 48, 48] there, FP32 [-1, 1, 64, 64] here" in str(
        sig_error.value
    )
    assert "has no such model" in str(missing.value)
    assert "fer_emotion, fer_resized" in str(missing.value)


def test_analyze_without_triton_says_where(clip_files):
    """Nothing listens at the URL: the refused connection is retried for CONNECT_TIMEOUT_S
    only (not the 60 s timeout asked for), and the one error line says what to check."""
    from ahmer.models.backends.triton_client import CONNECT_TIMEOUT_S

    url = f"127.0.0.1:{free_port()}"
    proc = _ahmer(
        "analyze", str(clip_files["confident"]), "--quiet",
        "--backend", "triton", "--triton-url", url, "--triton-timeout", "60",
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "error:" in x]
    assert f"the inference server (Triton at {url}) is unavailable" in line
    assert "nothing answers there" in line and "is Triton running at that address?" in line
    spent = float(line.split(" tries in ")[1].split(" s)")[0])
    assert spent <= CONNECT_TIMEOUT_S  # the client's own count, not a wall time of the test


# -- a real ahmer serve on Triton ------------------------------------------------------------


@pytest.fixture(scope="module")
def served(triton, tmp_path_factory):
    """``ahmer serve --backend triton`` (flags) in its own process; its log file."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {"AHMER_BACKEND_CHECK_SECONDS": "1", "AHMER_LOG_FORMAT": "text"}
    args = ("--backend", "triton", "--triton-url", triton.url, "--triton-timeout", TIMEOUT)
    with serve_process(env=env, stderr=log, args=args) as (proc, target):
        yield proc, target, log


def test_served_models_come_from_triton(served, triton):
    from ahmer.client import AhmerClient

    _, target, _ = served
    with AhmerClient(target) as client:
        info = client.get_models()
    assert info.backend == "triton" and info.backend_details["url"] == triton.url


def test_concurrent_live_sessions_are_batched_by_triton(served, triton, clip_files):
    from ahmer.client import AhmerClient

    _, target, _ = served
    sessions = 6
    before = _stats(triton.url, "fer_emotion")
    results: list = [None] * sessions
    errors: list = []

    def live(i: int) -> None:
        name = "hedging" if i % 2 == 0 else "confident"
        try:
            with AhmerClient(target) as client:
                responses = client.stream_file(clip_files[name], realtime=True, speed=2.0)
                results[i] = [r for r in responses if r.WhichOneof("message") == "result"]
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=live, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert all(r and len(r[0].result.frames) > 5 for r in results)
    after = _stats(triton.url, "fer_emotion")
    inferences, executions = after[0] - before[0], after[1] - before[1]
    sizes = {b: n - before[2].get(b, 0) for b, n in after[2].items() if n > before[2].get(b, 0)}
    print(
        f"{sessions} live sessions: fer_emotion {inferences} inferences in {executions} "
        f"executions; batch size -> executions {dict(sorted(sizes.items()))}"
    )
    assert inferences > 0 and executions < inferences
    assert max(sizes) > 1


def test_triton_stopped_mid_run_then_back(served, triton, clip_files):
    from ahmer.client import AhmerClient, Unavailable

    proc, target, log = served
    assert _health(target) == health_pb2.HealthCheckResponse.SERVING
    message = f"the inference server (Triton at {triton.url}) is unavailable"
    outcomes: list = []

    def call() -> None:
        try:
            with AhmerClient(target, retries=0) as client:  # this call's own status
                outcomes.append(client.analyze_file(clip_files["hedging"], timeout=120))
        except Exception as exc:
            outcomes.append(exc)

    def session() -> None:
        try:
            with AhmerClient(target, retries=0) as client:
                responses = client.stream_file(clip_files["hedging"], realtime=True)
                outcomes.append([r for r in responses if r.WhichOneof("message") == "result"])
        except Exception as exc:
            outcomes.append(exc)

    in_flight = [threading.Thread(target=f) for f in (call, call, session)]
    for t in in_flight:
        t.start()
    time.sleep(1.0)  # the calls are decoding their clip, the session has sent a second
    triton.stop()
    down = _wait_health(target, health_pb2.HealthCheckResponse.NOT_SERVING, 30)
    for t in in_flight:
        t.join(120)
    assert len(outcomes) == 3
    for outcome in outcomes:  # in flight when Triton went away: 2 clips, 1 live session
        assert isinstance(outcome, Unavailable), outcome
        assert message in outcome.details() and "retry shortly" in outcome.details()
    with AhmerClient(target, retries=0) as client:  # new calls: refused at once
        with pytest.raises(Unavailable, match=r"Triton at .* is unavailable; retry shortly"):
            client.analyze_file(clip_files["confident"], timeout=30)
        with pytest.raises(Unavailable, match="Triton at"):
            list(client.stream_file(clip_files["confident"]))
    assert proc.poll() is None  # the server lives on

    triton.restart()
    back = _wait_health(target, health_pb2.HealthCheckResponse.SERVING, 60)
    with AhmerClient(target) as client:
        result = client.analyze_file(clip_files["confident"], timeout=120)
    assert len(result.frames) > 5
    print(f"Triton stopped: NOT_SERVING after {down:.1f} s; restarted: SERVING after {back:.1f} s")
    text = log.read_text()
    assert "inference server unavailable" in text and "inference server available again" in text
    assert "Traceback" not in text


def test_triton_back_on_other_files_is_not_trusted(served, triton, repo, tmp_path):
    """Triton comes back on the same address serving a repository of other files: the server
    stays NOT_SERVING and says why in its log; back on the right one, it serves again."""
    from ahmer.models.triton.local import LocalTriton

    _, target, log = served
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    config = other / "fer_emotion" / "config.pbtxt"
    text = config.read_text()
    sha = text.split('key: "ahmer_sha256"')[1].split('string_value: "')[1].split('"')[0]
    config.write_text(text.replace(sha, "f" * 64))
    ports = {"grpc_port": triton.grpc_port, "http_port": triton.http_port,
             "metrics_port": triton.metrics_port}  # fmt: skip
    triton.stop()
    try:
        _wait_health(target, health_pb2.HealthCheckResponse.NOT_SERVING, 30)
        with LocalTriton(other, **ports) as impostor:
            assert impostor.url == triton.url
            time.sleep(4)  # several readiness checks with Triton up
            assert _health(target) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        triton.start(timeout=240)
    _wait_health(target, health_pb2.HealthCheckResponse.SERVING, 60)
    assert "model 'fer_emotion' changed while Triton was away (ahmer_sha256 ffffffffffff" in (
        log.read_text()
    )


def test_serve_started_before_triton_waits_for_it(repo, clip_files, tmp_path):
    """``ahmer serve`` whose Triton is not up yet: NOT_SERVING, calls UNAVAILABLE naming
    Triton; it loads its models and serves as soon as Triton is there."""
    import os

    from ahmer.client import AhmerClient, Unavailable
    from ahmer.models.triton.local import LocalTriton

    later = LocalTriton(
        repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()
    )
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {**os.environ, "AHMER_HOST": "127.0.0.1", "AHMER_PORT": str(port),
           "AHMER_METRICS_PORT": "off", "AHMER_BACKEND": "triton",
           "AHMER_TRITON_URL": later.url, "AHMER_TRITON_TIMEOUT": "2",
           "AHMER_BACKEND_CHECK_SECONDS": "1"}  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait_health(target, health_pb2.HealthCheckResponse.NOT_SERVING, 120)
        deadline = time.monotonic() + 60
        with AhmerClient(target, retries=0) as client:
            while True:
                with pytest.raises(Unavailable) as refused:
                    client.get_models(timeout=10)
                if "Triton at" in refused.value.details() or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        assert f"(Triton at {later.url}) is unavailable; retry shortly" in refused.value.details()
        assert proc.poll() is None
        later.start(timeout=240)
        waited = _wait_health(target, health_pb2.HealthCheckResponse.SERVING, 180)
        with AhmerClient(target) as client:
            assert len(client.analyze_file(clip_files["confident"], timeout=120).frames) > 5
        print(f"ahmer serve started before Triton: SERVING {waited:.1f} s after Triton was up")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        later.close()
    assert "waiting for the inference server" in log.read_text()


def test_score_records_clips_failed_by_triton_and_a_rerun_completes(triton, tmp_path):
    """Triton goes away mid-batch: the clip in flight fails naming it; the circuit breaker
    then keeps the rest from waiting out the timeout each: they are failures.csv rows saying
    they were not tried, and the command says so once. It exits 1 without a traceback; once
    Triton is back the same command scores them all."""
    from media import CONFIDENT, HEDGING

    data = tmp_path / "data"
    data.mkdir()
    texts = [HEDGING, CONFIDENT, "Yes, I think so.", "Well, maybe, I am not sure yet."]
    texts += ["I guess I could try.", "No, I have decided."]
    for i, text in enumerate(texts):
        speech_clip(data, text, f"clip{i}")
    for wav in data.glob("*.wav"):
        wav.unlink()
    out = tmp_path / "out"
    triton_flags = ["--backend", "triton", "--triton-url", triton.url, "--triton-timeout", TIMEOUT]
    cmd = [*CLI, "score", str(data), "--out", str(out), "--quiet", "--fps", "2", *triton_flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "results").glob("*.json")):  # the first clip is done
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        triton.stop()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not triton.running():
            triton.restart()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    with open(out / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    done = len(list((out / "results").glob("*.json")))
    assert len(failures) >= 2 and done + len(failures) == len(texts)
    for row in failures:
        assert f"Triton at {triton.url}" in row["error"] and "unavailable" in row["error"]
    tried = [row for row in failures if not row["error"].startswith("not tried:")]
    assert len(tried) == 1  # the clip in flight; the breaker kept the others from Triton
    assert stderr.count("stopped trying clips") == 1
    assert f"{len(failures) - 1} clip(s) not tried" in stderr
    print(f"ahmer score, Triton stopped after clip 1: {done} scored, {len(failures)} failed")

    again = _ahmer(*cmd[3:])
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{len(texts)} clip(s) scored ({done} from earlier runs), 0 failed" in again.stdout
    with open(out / "failures.csv", newline="") as f:
        assert list(csv.DictReader(f)) == []


# -- TLS to Triton -------------------------------------------------------------------------
# A second Triton whose gRPC port speaks TLS only, with a certificate from a private test CA
# (tests/pki.py). The client trusts that CA through gRPC's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory):
    pytest.importorskip("cryptography")
    from pki import write_pki

    return write_pki(tmp_path_factory.mktemp("triton_pki"))


@pytest.fixture(scope="module")
def tls_triton(repo, tls_pki):
    from ahmer.models.triton.local import LocalTriton

    server = LocalTriton(repo, tls_cert=tls_pki["server.pem"], tls_key=tls_pki["server.key"])
    server.start(timeout=240)
    try:
        yield server
    finally:
        server.close()


def _ahmer_env(roots: object, *args: str) -> subprocess.CompletedProcess:
    """``ahmer ARGS`` with gRPC's default roots replaced by the PEM file ``roots`` (None:
    grpcio's own bundled public roots)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    if roots is not None:
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(roots)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=env)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed command (no traceback)."""
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "error:" in x]
    return line


def test_analyze_over_tls_equals_plain(triton, tls_triton, tls_pki, clip_files, tmp_path):
    """``--triton-tls`` with the private CA trusted: the result is the plain Triton's."""
    import json

    assert tls_triton.tls and not triton.tls
    clip = str(clip_files["confident"])
    results = {}
    for name, server, extra in (("tls", tls_triton, ["--triton-tls"]), ("plain", triton, [])):
        out = tmp_path / f"{name}.json"
        proc = _ahmer_env(
            tls_pki["ca.pem"], "analyze", clip, "--json", str(out), "--quiet",
            "--backend", "triton", "--triton-url", server.url, "--triton-timeout", "60", *extra,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[name] = json.loads(out.read_text())
        results[name].pop("timings")
    assert len(results["tls"]["frames"]) > 5
    assert sum(f["emotion"] is not None for f in results["tls"]["frames"]) > 5  # faces ran
    assert results["tls"] == results["plain"]


def test_tls_mismatches_fail_at_once_with_one_line(triton, tls_triton, tls_pki, clip_files):
    """No TLS at the TLS port, TLS with Triton's CA untrusted, TLS at a plain port: exit 1,
    one error line naming Triton's URL and what to change; the certificate faults are not
    retried (no "tries in")."""
    from ahmer.models.triton.local import LocalTriton, TritonLocalError

    clip = str(clip_files["confident"])
    base = ("analyze", clip, "--quiet", "--backend", "triton", "--triton-timeout")

    plain = _error_line(_ahmer_env(None, *base, "2", "--triton-url", tls_triton.url))
    assert f"the inference server (Triton at {tls_triton.url}) is unavailable" in plain
    assert "Socket closed" in plain and "TLS needed?" in plain

    for roots in (None, tls_pki["other-ca.pem"]):  # grpcio's public roots; another private CA
        untrusted = _error_line(
            _ahmer_env(roots, *base, "30", "--triton-url", tls_triton.url, "--triton-tls")
        )
        assert f"(Triton at {tls_triton.url}) is unavailable" in untrusted
        assert "Triton's certificate is not trusted (unable to get local issuer certificate)" in (
            untrusted
        )
        assert "set GRPC_DEFAULT_SSL_ROOTS_FILE_PATH to a PEM file" in untrusted
        assert "tries in" not in untrusted

    no_tls = _error_line(
        _ahmer_env(tls_pki["ca.pem"], *base, "30", "--triton-url", triton.url, "--triton-tls")
    )
    assert f"(Triton at {triton.url}) is unavailable" in no_tls
    assert "Triton's gRPC port does not speak TLS" in no_tls and "tries in" not in no_tls

    with pytest.raises(TritonLocalError, match="both tls_cert and tls_key"):
        LocalTriton(tls_triton.repo, tls_cert=tls_pki["server.pem"])
