"""Deployment files: the Dockerfile lints clean, the Kubernetes kustomizations render and
validate against the Kubernetes schemas, and they only use options the server knows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ahmer.service.grpc.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent


def _render(target: str) -> list[dict]:
    """``kubectl kustomize`` when kubectl is there, else the listed resources as they are
    (base and batch have no patches; the gpu overlay needs kustomize)."""
    folder = K8S / target
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
        )
        return [d for d in yaml.safe_load_all(out.stdout) if d]
    if target.startswith("overlays"):
        pytest.fail("kubectl is needed to render overlays (apt/pip cannot provide it here)")
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((folder / name).read_text()) if d]
    return docs


def test_dockerfile_lints_clean():
    out = subprocess.run(
        [str(BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_has_cpu_and_gpu_targets():
    text = (ROOT / "Dockerfile").read_text()
    assert " AS cpu" in text and " AS gpu" in text and " AS models" in text
    assert "ahmer models build" in text
    assert "onnxruntime-gpu" in text


@pytest.mark.parametrize("target", ["base", "overlays/gpu", "overlays/triton", "batch"])
def test_kustomizations_render_and_validate(target, tmp_path):
    docs = _render(target)
    assert docs
    rendered = tmp_path / "all.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    out = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", "1.30.0", str(rendered)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_configmap_only_sets_known_server_options():
    known = {o.env for o in OPTIONS}
    docs = _render("base")
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    unknown = set(config["data"]) - known
    assert not unknown, f"not ahmer serve options: {unknown}"


def test_server_probes_use_grpc_health_and_grace_outlasts_shutdown():
    docs = _render("base")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert pod["terminationGracePeriodSeconds"] > float(config["data"]["AHMER_SHUTDOWN_GRACE"])


def test_gpu_overlay_asks_for_a_gpu():
    deployment = next(d for d in _render("overlays/gpu") if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "AHMER_DEVICE", "value": "cuda"} in container["env"]
    assert container["image"].endswith(":gpu")


def _triton_overlay() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _render("overlays/triton")}


def test_triton_overlay_runs_triton_on_a_gpu_with_health_probes():
    docs = _triton_overlay()
    pod = docs["Deployment", "ahmer-triton"]["spec"]["template"]["spec"]
    (triton,) = pod["containers"]
    image, tag = triton["image"].rsplit(":", 1)
    assert image == "nvcr.io/nvidia/tritonserver" and re.fullmatch(r"2[45]\.\d\d-py3", tag)
    assert triton["args"][0] == "tritonserver"
    for flag in ("--model-repository=/models", "--model-control-mode=none"):
        assert flag in triton["args"]
    assert "--strict-readiness=true" in triton["args"]
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    for probe, path in (("readinessProbe", "ready"), ("livenessProbe", "live")):
        assert triton[probe]["httpGet"] == {"path": f"/v2/health/{path}", "port": "http"}
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert triton["securityContext"]["readOnlyRootFilesystem"] is True
    assert triton["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["name"]: m for m in triton["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"]


def test_triton_overlay_writes_the_repository_in_an_init_container():
    """The init container runs ``ahmer models triton-repo OUT --kind gpu`` from the ahmer
    image, with the same fusion as the ahmer pods, into the emptyDir folder Triton reads as
    /models. OUT is a folder inside the volume, not its mount point: triton-repo stages next
    to OUT and renames, and the init container's root file system is read-only."""
    docs = _triton_overlay()
    pod = docs["Deployment", "ahmer-triton"]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    server = docs["Deployment", "ahmer"]["spec"]["template"]["spec"]["containers"][0]
    assert init["image"] == server["image"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    args = init["args"]
    assert args[:2] == ["models", "triton-repo"] and args[3:5] == ["--kind", "gpu"]
    assert args[args.index("--fusion") + 1] == "$(AHMER_FUSION)"
    config = docs["ConfigMap", "ahmer-config"]
    assert "AHMER_FUSION" in config["data"]
    assert {"configMapRef": {"name": "ahmer-config"}} in init["envFrom"]
    (written,) = [m for m in init["volumeMounts"] if m["name"] == "models"]
    (read,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models"]
    assert read["mountPath"] == "/models"
    out = Path(args[2])
    assert out.parent == Path(written["mountPath"]) and read.get("subPath") == out.name
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "models")


def test_triton_overlay_points_cpu_ahmer_pods_at_the_triton_service():
    docs = _triton_overlay()
    pod = docs["Deployment", "ahmer"]["spec"]["template"]["spec"]
    server = pod["containers"][0]
    env = {e["name"]: e["value"] for e in server.get("env", [])}
    assert env["AHMER_BACKEND"] == "triton"
    host, port = env["AHMER_TRITON_URL"].rsplit(":", 1)
    service = docs["Service", host]
    grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert int(port) == grpc_port["port"]
    triton_labels = docs["Deployment", "ahmer-triton"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= triton_labels.items()
    assert "nvidia.com/gpu" not in server["resources"].get("limits", {})
    assert server["image"].endswith(":cpu")
    known = {o.env for o in OPTIONS}
    assert set(env) <= known and set(docs["ConfigMap", "ahmer-config"]["data"]) <= known


def test_triton_overlay_scales_and_protects_triton():
    """ahmer pods scale on CPU (base); Triton on its queue time per request through the
    prometheus-adapter rule shipped beside the overlay; a PDB keeps drains one at a time."""
    docs = _triton_overlay()
    cpu = docs["HorizontalPodAutoscaler", "ahmer"]["spec"]["metrics"][0]
    assert cpu["resource"]["name"] == "cpu"
    hpa = docs["HorizontalPodAutoscaler", "ahmer-triton"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "ahmer-triton"
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods"
    rules = yaml.safe_load((K8S / "overlays/triton/prometheus-adapter-rules.yaml").read_text())
    (rule,) = rules["rules"]["custom"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    assert "nv_inference_queue_duration_us" in rule["seriesQuery"]
    assert "nv_inference_queue_duration_us" in rule["metricsQuery"]
    pdb = docs["PodDisruptionBudget", "ahmer-triton"]["spec"]
    labels = docs["Deployment", "ahmer-triton"]["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    policy = docs["NetworkPolicy", "ahmer-triton"]["spec"]
    allowed = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    server = docs["Deployment", "ahmer"]["spec"]["template"]["metadata"]["labels"]
    assert allowed.items() <= server.items()


def test_batch_job_shards_by_completion_index():
    job = next(d for d in _render("batch") if d["metadata"]["name"] == "ahmer-score")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    command = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert f'--shard "${{JOB_COMPLETION_INDEX}}/{spec["completions"]}"' in command


def test_docs_configuration_table_lists_every_server_option():
    """The configuration table of docs/grpc.md names each ``ahmer serve`` option, in the
    parser's order, with its flag and environment variable (and nothing the server does not
    read)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "grpc.md").read_text()
    table = text.split("\n## Configuration\n", 1)[1].split("\n\n", 3)[1]
    rows = re.findall(r"^\| `(--[a-z-]+)` \| `(AHMER_[A-Z_]+)` \|", table, flags=re.M)
    assert rows == [(o.flag, o.env) for o in OPTIONS]


def test_base_opens_metrics_to_the_scraper_on_the_annotated_port():
    """The server keeps /metrics on loopback by default; the base sets the pod address for
    Prometheus explicitly, on the port its scrape annotation names."""
    docs = _render("base")
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["AHMER_METRICS_HOST"] == "0.0.0.0"
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == config["AHMER_METRICS_PORT"]


# -- the sharded batch: the merge waits for every shard ------------------------------------------


def _batch() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _render("batch")}


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _script(container: dict) -> str:
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    return script


def test_batch_claim_is_defined_read_write_many_with_a_placeholder_class():
    docs = _batch()
    claim = docs["PersistentVolumeClaim", "ahmer-collection"]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"]
    assert "placeholder" in claim["storageClassName"]
    assert "PLACEHOLDER" in (K8S / "batch" / "pvc.yaml").read_text()
    for name in ("ahmer-score", "ahmer-score-merge"):
        (volume,) = docs["Job", name]["spec"]["template"]["spec"]["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == "ahmer-collection"


def test_batch_merge_waits_for_the_shards_it_counts():
    """The merge Job's init container waits for as many shards as ahmer-score has, and the
    shard wrapper's retry count is the Job's backoffLimitPerIndex; a failed merge is final."""
    docs = _batch()
    score = docs["Job", "ahmer-score"]["spec"]
    merge = docs["Job", "ahmer-score-merge"]["spec"]
    (wait,) = merge["template"]["spec"]["initContainers"]
    assert int(_env(wait)["SHARDS"]) == score["completions"]
    (shard,) = score["template"]["spec"]["containers"]
    assert int(_env(shard)["RETRIES"]) == score["backoffLimitPerIndex"]
    (fails,) = [e for e in shard["env"] if e["name"] == "INDEX_FAILURES"]
    path = fails["valueFrom"]["fieldRef"]["fieldPath"]
    assert path == "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"
    assert merge["backoffLimit"] == 0 and merge["activeDeadlineSeconds"] > 0


def _run_script(container: dict, env: dict[str, str], timeout: float = 120):
    full = {"PATH": f"{BIN}:/usr/bin:/bin", **_env(container), **env}
    return subprocess.run(
        ["sh", "-c", _script(container)], env=full, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_batch_shard_leaves_a_done_or_a_failed_marker(tmp_path):
    """The shard container's script, run here with the real ``ahmer``: a shard that finishes
    leaves ``i.done``; one that fails leaves nothing while retries remain and ``i.failed``
    (with its exit code) on its last attempt, and fails the pod either way."""
    (shard,) = _batch()["Job", "ahmer-score"]["spec"]["template"]["spec"]["containers"]
    retries = _env(shard)["RETRIES"]
    (tmp_path / "in").mkdir()  # one clip, in shard 6 (its id hashes there): shard 3 is empty
    (tmp_path / "in" / "hello.wav").write_bytes(b"never read")
    marks = tmp_path / "out" / ".shards"
    done = _run_script(shard, {"DATA": str(tmp_path), "JOB_COMPLETION_INDEX": "3"})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in marks.iterdir()) == ["3.done"]
    shutil.rmtree(tmp_path / "in")  # now `ahmer score` fails: no such input (exit 2)
    env = {"DATA": str(tmp_path), "JOB_COMPLETION_INDEX": "5", "INDEX_FAILURES": "0"}
    first = _run_script(shard, env)
    assert first.returncode == 2 and not (marks / "5.failed").exists()
    last = _run_script(shard, {**env, "INDEX_FAILURES": retries})
    assert last.returncode == 2
    assert "exit code 2 on its last attempt" in (marks / "5.failed").read_text()
    assert sorted(p.name for p in marks.iterdir()) == ["3.done", "5.failed"]


def test_batch_merge_runs_only_after_every_shard_succeeded(tmp_path):
    """The merge's init container, run here: it waits while a shard is missing, passes once
    every shard is done, and stops the merge, naming the shard, when one failed."""
    import time

    (wait,) = _batch()["Job", "ahmer-score-merge"]["spec"]["template"]["spec"]["initContainers"]
    shards = int(_env(wait)["SHARDS"])
    marks = tmp_path / "out" / ".shards"
    marks.mkdir(parents=True)
    for i in range(shards - 1):
        (marks / f"{i}.done").touch()
    full = {"PATH": "/usr/bin:/bin", **_env(wait), "DATA": str(tmp_path)}
    proc = subprocess.Popen(["sh", "-c", _script(wait)], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.5)
        assert proc.poll() is None  # one shard to go: still waiting
        (marks / f"{shards - 1}.done").touch()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and f"all {shards} shards done" in out
    (marks / "2.done").unlink()
    (marks / "2.failed").write_text("exit code 2 on its last attempt (after 2 failed)\n")
    failed = _run_script(wait, {"DATA": str(tmp_path)}, timeout=30)
    assert failed.returncode == 1
    assert "not merging: a shard failed: shard 2: exit code 2" in failed.stderr
    assert not marks.exists()  # a re-run starts clean
