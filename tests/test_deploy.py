"""Deployment files: the Dockerfile lints clean, the Kubernetes kustomizations render and
validate against the Kubernetes schemas, and they only use options the server knows."""

from __future__ import annotations

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


@pytest.mark.parametrize("target", ["base", "overlays/gpu", "batch"])
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


def test_batch_job_shards_by_completion_index():
    job = next(d for d in _render("batch") if d["metadata"]["name"] == "ahmer-score")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    command = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert f'--shard "${{JOB_COMPLETION_INDEX}}/{spec["completions"]}"' in command


def test_readme_configuration_table_lists_every_server_option():
    """README's configuration table names each ``ahmer serve`` option, in the parser's order,
    with its flag and environment variable (and nothing the server does not read)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text.split("### Configuration", 1)[1].split("\n\n", 3)[2]
    rows = re.findall(r"^\| `(--[a-z-]+)` \| `(AHMER_[A-Z_]+)` \|", table, flags=re.M)
    assert rows == [(o.flag, o.env) for o in OPTIONS]
