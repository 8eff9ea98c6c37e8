"""Training, evaluating and installing fusions (issue 13, parts 3-5): ``ahmer train``,
``ahmer evaluate``, ``ahmer models add-fusion`` and ``--fusion`` in the analyzer.

The fast tests run on synthetic features folders (tests/synthfeatures.py: the format
``ahmer features`` writes, cue features from the store's real prior graph). Installed
fusions go into a private store whose artifacts link to the real one, so the shared store
is never changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_error_line
from synthfeatures import write_features

from ahmer.models.contract import FUSION_MODEL
from ahmer.models.fusion.graph import build_fusion_model
from ahmer.models.fusion.registry import FusionError, fusion_notice, install_fusion, resolve_fusion
from ahmer.models.store.model_store import ModelStore, sha256_file
from ahmer.models.training.featureset import (
    FeatureSet,
    assign_splits,
    level_metrics,
    score_fusion,
)
from ahmer.models.training.train import (
    PARITY_TOLERANCE,
    TrainConfig,
    fold_thresholds,
    graph_weights,
    train,
)

pytest.importorskip("torch")

EPOCHS = 12


def ahmer(*args: str, home: Path | None = None, timeout: float = 600):
    env = {**os.environ}
    if home is not None:
        env["AHMER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "ahmer.service.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory, model_store) -> Path:
    """An AHMER_HOME whose store links every artifact of the real store (fusions installed
    here stay here)."""
    home = tmp_path_factory.mktemp("home")
    root = home / "models"
    root.mkdir()
    for item in model_store.root.iterdir():
        if item.is_dir() and not item.name.startswith(".") and item.name != "fusions":
            (root / item.name).symlink_to(item)
    shutil.copyfile(model_store.root / "manifest.json", root / "manifest.json")
    return home


@pytest.fixture(scope="module")
def store(home) -> ModelStore:
    return ModelStore(home / "models")


@pytest.fixture(scope="module")
def prior_graph(model_store) -> Path:
    return model_store.path(FUSION_MODEL)


@pytest.fixture(scope="module")
def features(tmp_path_factory, prior_graph) -> Path:
    return write_features(tmp_path_factory.mktemp("feats"), prior_graph)


@pytest.fixture(scope="module")
def run(tmp_path_factory, features, store):
    """One training run (the report) on the synthetic features."""
    out = tmp_path_factory.mktemp("runs") / "synth1"
    return train(features, out, TrainConfig(epochs=EPOCHS), store=store)


# -- training --------------------------------------------------------------------------------


def test_two_runs_with_a_seed_write_the_same_graph(run, features, store, tmp_path):
    again = train(features, tmp_path / "again", TrainConfig(epochs=EPOCHS), store=store)
    assert sha256_file(again.graph) == sha256_file(run.graph) == run.card["sha256"]
    assert again.card["metrics"] == run.card["metrics"]


def test_the_exported_graph_reproduces_the_torch_model(run):
    parity = run.card["parity"]
    assert parity["videos"] == run.card["splits"]["val"]["videos"] > 0
    worst = parity["max_relative_difference"]
    assert set(worst) == {"frame_ah_logit", "clip_ah_logit", "cue_contrib", "cue_features"}
    assert max(worst.values()) <= PARITY_TOLERANCE, worst


def test_trained_fusion_beats_the_prior_on_held_out_participants(run, features):
    test = run.card["metrics"]["test"]
    trained, prior = test["trained"]["frame"]["avgf1"], test["prior"]["frame"]["avgf1"]
    print(f"synthetic test split frame AVGF1: trained {trained:.4f}, prior {prior:.4f}")
    assert trained > prior
    # the test participants are none of the train or val ones
    splits, method = assign_splits(FeatureSet.open(features).rows)
    people = {s: {r.participant for r in rows} for s, rows in splits.items()}
    assert method == "index" and not people["test"] & (people["train"] | people["val"])


def test_card_records_data_splits_hyperparameters_and_cost(run, features):
    card = run.card
    on_disk = json.loads((run.out / "card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    assert (
        card["data"]["fingerprint"]
        == json.loads((features / "dataset.json").read_text())["fingerprint"]
    )
    assert card["contract"] == "ahmer.fusion/3" and card["seed"] == 0
    assert card["splits"]["train"]["participants"] == 6
    assert card["hyperparameters"]["epochs"] == EPOCHS
    assert card["training"]["seconds"] > 0 and card["training"]["peak_rss_mb"] > 0
    for split in ("val", "test"):
        for who in ("trained", "prior"):
            for level in ("frame", "video"):
                metrics = card["metrics"][split][who][level]
                assert {"avgf1", "ap", "accuracy", "f1_0", "f1_1"} <= set(metrics)
    md = (run.out / "card.md").read_text()
    assert card["sha256"] in md and "| test | frame | prior |" in md


def test_thresholds_are_folded_into_the_biases(run, features, prior_graph):
    # the graph decides at 0.5 as the raw model did at the chosen threshold
    fs = FeatureSet.open(features)
    splits, _ = assign_splits(fs.rows)
    val = level_metrics(score_fusion(fs, splits["val"], run.graph))
    assert val["frame"]["avgf1"] == pytest.approx(run.card["thresholds"]["val_frame_avgf1"], 1e-9)
    assert 0 < run.card["thresholds"]["frame"] < 1
    # folding shifts frame logits by -logit(t_f) and clip logits by -logit(t_c), exactly
    w = graph_weights(prior_graph)
    clip = next(fs.clips(splits["test"][:1]))
    before = _outputs(build_fusion_model(w), clip)
    after = _outputs(build_fusion_model(fold_thresholds(w, 0.3, 0.8)), clip)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(after[0], before[0] - logit(0.3), atol=1e-5)
    np.testing.assert_allclose(after[1], before[1] - logit(0.8), atol=1e-5)


def _outputs(model, clip):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    frame, clip_logit = session.run(["frame_ah_logit", "clip_ah_logit"], clip.feed())
    return frame[0], clip_logit[0]


def test_graph_weights_read_back_rebuild_the_prior_exactly(prior_graph, features):
    import onnx

    rebuilt = build_fusion_model(graph_weights(prior_graph))
    original = onnx.load(str(prior_graph))
    fs = FeatureSet.open(features)
    clip = fs.load(fs.rows[0])
    a, b = _outputs(rebuilt, clip), _outputs(original, clip)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_without_splits_folds_are_participant_disjoint(tmp_path, prior_graph, store):
    feats = write_features(tmp_path / "feats", prior_graph, participants=7, splits=False, seed=4)
    splits, method = assign_splits(FeatureSet.open(feats).rows, seed=0)
    assert method == "participant-folds"
    people = {s: {r.participant for r in rows} for s, rows in splits.items()}
    assert all(people.values())
    assert (
        not people["test"] & people["val"]
        and not (people["test"] | people["val"]) & people["train"]
    )
    report = train(feats, tmp_path / "run", TrainConfig(epochs=2), store=store)
    assert report.card["splits"]["method"] == "participant-folds"


def test_train_cli_reports_and_bad_features_are_named(tmp_path, features, home):
    out = tmp_path / "cli-run"
    proc = ahmer("train", str(features), "--out", str(out), "--epochs", "2", home=home)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stderr and "parity with ONNX Runtime" in proc.stderr
    assert "test, on 8 videos:" in proc.stdout and "prior" in proc.stdout
    # 8 test videos from 2 participants: flagged, and the AP convention explained
    assert "warning: the test split has 8 video(s) from 2 participant(s)" in proc.stdout
    assert "a perfect classifier can show AP 0.5" in proc.stdout
    assert "nan" not in (proc.stdout + proc.stderr).replace("nanosec", "")
    assert (out / "fusion.onnx").is_file()

    broken = tmp_path / "broken"
    shutil.copytree(features, broken)
    lines = (broken / "index.csv").read_text().splitlines()
    fields = lines[2].split(",")
    lines[2] = ",".join([*fields[:3], "maybe", *fields[4:]])  # file line 3: a bad label
    (broken / "index.csv").write_text("\n".join(lines) + "\n")
    proc = ahmer("evaluate", str(broken), home=home)
    one_error_line(proc, 2, "index.csv:3", "label 'maybe'")  # the folder named: usage

    (broken / "index.csv").write_text("\n".join((features / "index.csv").read_text().splitlines()))
    first = (features / "index.csv").read_text().splitlines()[1].split(",")[0]
    with np.load(features / "features" / f"{first}.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "voice_emb"}
    np.savez(broken / "features" / f"{first}.npz", **arrays)
    proc = ahmer("evaluate", str(broken), "--split", "all", home=home)
    one_error_line(proc, 1, f"{first}.npz", "'voice_emb' is missing")

    proc = ahmer("train", str(tmp_path / "nowhere"), "--out", str(out), home=home)
    one_error_line(proc, 2, "nowhere")


# -- evaluate ------------------------------------------------------------------------------


def test_evaluate_prints_and_writes_the_card_numbers(run, features, home, tmp_path):
    for spec, who in (("", "prior"), (str(run.out), "trained")):
        out = tmp_path / f"{who}.json"
        args = ["evaluate", str(features), "--split", "test", "--json", str(out)]
        proc = ahmer(*args, *(["--fusion", spec] if spec else []), home=home)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(out.read_text())
        card = run.card["metrics"]["test"][who]
        assert report["frame"] == pytest.approx(card["frame"])
        assert report["video"] == pytest.approx(card["video"])
        assert report["features"]["videos"] == 8
        assert f"{report['frame']['avgf1']:.4f}" in proc.stdout
        name = FUSION_MODEL if who == "prior" else "synth1"
        assert report["fusion"]["name"] == name
        assert f"fusion {name} (" in proc.stdout and f" {name} " in proc.stdout  # never cut
        assert "on 8 videos (the test split" in proc.stdout
        assert "warning: the test split has 8 video(s) from 2 participant(s)" in proc.stdout
    bad = ahmer("evaluate", str(features), "--threshold", "1.5", home=home)
    one_error_line(bad, 2, "--threshold", "between 0 and 1")


# -- installing and resolving --------------------------------------------------------------


def test_add_fusion_installs_and_resolves_by_name_and_path(run, store, home, tmp_path):
    proc = ahmer("models", "add-fusion", str(run.out), "--name", "synth-a", home=home)
    assert proc.returncode == 0, proc.stderr
    assert "installed fusion synth-a" in proc.stdout
    ref = resolve_fusion(store, "synth-a")
    assert ref.trained and ref.name == "synth-a" and ref.sha256 == run.card["sha256"]
    assert ref.card == json.loads(json.dumps(run.card))
    assert ref.version == f"{run.card['weights_id']}#{ref.sha256[:12]}"
    again = ahmer("models", "add-fusion", str(run.out), "--name", "synth-a", home=home)
    one_error_line(again, 1, "synth-a", "installed already", "--force")

    listing = json.loads(ahmer("models", "list", "--json", home=home).stdout)
    rows = {r["name"]: r for r in listing["fusions"]}
    assert rows["synth-a"]["status"] == "ok" and rows["synth-a"]["sha256"] == ref.sha256

    by_folder = resolve_fusion(store, str(run.out))
    assert by_folder.name == "synth1" and by_folder.card is not None
    bare = tmp_path / "bare.onnx"
    shutil.copyfile(run.graph, bare)
    by_file = resolve_fusion(store, str(bare))
    assert by_file.name == "bare" and by_file.card is None and by_file.trained
    assert "without a model card: no measured metrics" in fusion_notice(by_file)
    assert fusion_notice(resolve_fusion(store, FUSION_MODEL)) is None  # the prior's default
    assert resolve_fusion(store, "").name == FUSION_MODEL
    with pytest.raises(FusionError, match="synth-a"):
        resolve_fusion(store, "no-such-fusion")

    # an installed graph that changed is listed as corrupt and refused (a fresh process)
    ahmer("models", "add-fusion", str(run.out), "--name", "synth-c", home=home)
    with open(store.root / "fusions" / "synth-c" / "fusion.onnx", "ab") as f:
        f.write(b"\0")
    listing = ahmer("models", "list", home=home)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("synth-c "))
    assert row.split()[-1] == "corrupt" and "--name synth-c --force" in listing.stderr
    code = (
        "from ahmer.models.fusion.registry import resolve_fusion as r; "
        "from ahmer.models.store.model_store import ModelStore; r(ModelStore(), 'synth-c')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "AHMER_HOME": str(home)},
    )
    assert proc.returncode == 1 and "is corrupt" in proc.stderr


def _bad_run(tmp_path: Path, run, name: str, edit) -> Path:
    import onnx

    folder = tmp_path / name
    shutil.copytree(run.out, folder)
    model = onnx.load(str(folder / "fusion.onnx"))
    data = edit(model)
    (folder / "fusion.onnx").write_bytes(
        data if isinstance(data, bytes) else data.SerializeToString()
    )
    card = json.loads((folder / "card.json").read_text())
    card["sha256"] = sha256_file(folder / "fusion.onnx")
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_add_fusion_refuses_graphs_outside_the_contract(run, home, tmp_path, model_store):
    def old_contract(model):
        for prop in model.metadata_props:
            if prop.key == "contract":
                prop.value = "ahmer.fusion/1"
        return model

    def fewer_outputs(model):
        kept = [o for o in model.graph.output if o.name != "cue_features"]
        del model.graph.output[:]
        model.graph.output.extend(kept)
        return model

    cases = {
        "old": (old_contract, "ahmer.fusion/1"),
        "outputs": (fewer_outputs, "outputs differ from the fusion contract"),
        "garbage": (lambda m: b"not an onnx model", "not a readable ONNX model"),
        "other": (lambda m: model_store.path("fer_emotion").read_bytes(), "no contract"),
    }
    for name, (edit, needle) in cases.items():
        folder = _bad_run(tmp_path, run, name, edit)
        proc = ahmer("models", "add-fusion", str(folder), home=home)
        one_error_line(proc, 1, needle)
        assert not (home / "models" / "fusions" / name).exists()

    mismatch = tmp_path / "mismatch"
    shutil.copytree(run.out, mismatch)
    card = json.loads((mismatch / "card.json").read_text())
    card["sha256"] = "0" * 64
    (mismatch / "card.json").write_text(json.dumps(card))
    one_error_line(ahmer("models", "add-fusion", str(mismatch), home=home), 1, "another graph")


def test_install_names_are_checked(run, store):
    with pytest.raises(FusionError, match="taken by the model store"):
        install_fusion(store, run.out, name="minilm")
    with pytest.raises(FusionError, match="letters, digits"):
        install_fusion(store, run.out, name="../up")


def test_tiny_splits_are_flagged_in_the_card_and_the_notice(run, features):
    """The synthetic set's val and test splits hold 8 videos of 2 participants each: under
    MIN_VIDEOS / MIN_PARTICIPANTS, so the card (JSON and markdown) warns, and so does the
    notice results quote; the card lists which videos went into which split."""
    from ahmer.models.results import trained_notice
    from ahmer.models.training.card import AP_NOTE, MIN_PARTICIPANTS, MIN_VIDEOS

    card = run.card
    assert 8 < MIN_VIDEOS and 2 < MIN_PARTICIPANTS
    small = [w for w in card["warnings"] if "8 video(s) from 2 participant(s)" in w]
    assert [w.split(" split")[0] for w in small] == ["the val", "the test"]
    md = (run.out / "card.md").read_text()
    assert md.count("> **Warning:**") == len(card["warnings"]) >= 2
    assert AP_NOTE in md and "nan" not in md
    notice = trained_notice("synth1", card)
    assert "warning: the val split has 8 video(s)" in notice and "the test split" in notice
    rows = (features / "index.csv").read_text().splitlines()
    header = rows[0].split(",")
    membership: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for line in rows[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        membership[row["split"]].append(row["id"])
    for split, ids in membership.items():
        assert sorted(card["splits"][split]["ids"]) == sorted(ids)
        assert f"- {split} ({len(ids)}): " in md and all(f"`{i}`" in md for i in ids)


# -- using a trained fusion ----------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(run, home):
    proc = ahmer("models", "add-fusion", str(run.out), "--name", "synth-b", home=home)
    assert proc.returncode == 0, proc.stderr
    return "synth-b"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from media import HEDGING
    from serving import speech_clip

    return speech_clip(tmp_path_factory.mktemp("clip"), HEDGING, "hedging")


def check_analyze(name: str, card: dict, clip: Path, home: Path, store: ModelStore) -> dict:
    """``ahmer analyze CLIP --fusion NAME``: the result names the fusion and quotes its card."""
    proc = ahmer("analyze", str(clip), "--fusion", name, "--json", "-", "--quiet", home=home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["models"]["fusion"] == name
    assert result["models"][name] == resolve_fusion(store, name).version
    assert FUSION_MODEL not in result["models"]
    notice = result["notice"]
    test = card["metrics"]["test"]["trained"]
    assert f"fusion {name} trained on {card['data']['fingerprint'][:12]}" in notice
    assert f"test frame AVGF1 {test['frame']['avgf1']:.3f}" in notice
    assert "not from a model trained" not in notice
    assert len(result["frames"]) > 0 and result["explanation"]["summary"]
    for cue in result["explanation"]["cues"]:  # the weight is a field, not repeated in text
        assert "logit" not in cue["text"], cue["text"]
    assert f"trained fusion {name}" in proc.stderr  # the summary line names it
    return result


def check_server(name: str, home: Path, store: ModelStore) -> None:
    """``ahmer serve`` with AHMER_FUSION=NAME answers GetModels naming the fusion."""
    from serving import serve_process

    from ahmer.client import AhmerClient

    env = {"AHMER_HOME": str(home), "AHMER_FUSION": name}
    with serve_process(env=env) as (_proc, target), AhmerClient(target) as client:
        info = client.get_models()
    models = {m.name: m for m in info.models}
    assert models[name].version == resolve_fusion(store, name).version
    assert models[name].role.startswith("A/H and emotion fusion (trained)")
    assert FUSION_MODEL not in models and info.settings["fusion"] == name


def test_analyze_with_a_trained_fusion_names_it_and_quotes_its_card(
    installed, run, home, clip, store
):
    check_analyze(installed, run.card, clip, home, store)


def test_a_server_started_with_a_fusion_names_it_in_get_models(installed, home, store):
    check_server(installed, home, store)


def test_an_unknown_fusion_is_one_clear_error(home, clip):
    proc = ahmer("analyze", str(clip), "--fusion", "nope", "--quiet", home=home)
    one_error_line(proc, 2, "fusion 'nope'", "ahmer models list")  # as in score


# -- end to end on the synthetic BAH-layout dataset ----------------------------------------


def test_bah_layout_features_train_beat_the_prior_and_serve(
    bah_dataset, bah_features, home, store, tmp_path
):
    """``ahmer features`` of the generated BAH-layout set (tests/bahgen.py) -> ``ahmer
    train`` -> the trained fusion beats the prior on the held-out test participants ->
    ``add-fusion`` -> ``ahmer analyze --fusion`` and ``ahmer serve`` name it."""
    out = tmp_path / "bahgen-run"
    proc = ahmer("train", str(bah_features), "--out", str(out), "--name", "bahgen", home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((out / "card.json").read_text())
    assert card["splits"]["method"] == "index"
    test_people = {c.pid for c in bah_dataset.clips if c.split == "test"}
    assert card["splits"]["test"]["participants"] == len(test_people)
    test = card["metrics"]["test"]
    trained, prior = test["trained"]["frame"]["avgf1"], test["prior"]["frame"]["avgf1"]
    print(
        f"bahgen test split ({card['splits']['test']['videos']} videos): frame AVGF1 trained "
        f"{trained:.4f} vs prior {prior:.4f} (margin {trained - prior:+.4f}); video AVGF1 "
        f"trained {test['trained']['video']['avgf1']:.4f} vs prior "
        f"{test['prior']['video']['avgf1']:.4f}; training {card['training']['seconds']} s, "
        f"peak RSS {card['training']['peak_rss_mb']} MB"
    )
    assert trained > prior
    assert max(card["parity"]["max_relative_difference"].values()) <= PARITY_TOLERANCE

    proc = ahmer("models", "add-fusion", str(out), home=home)
    assert proc.returncode == 0, proc.stderr
    clip = next(c for c in bah_dataset.clips if c.split == "test" and c.label == 1)
    check_analyze("bahgen", card, clip.path, home, store)
    check_server("bahgen", home, store)


def test_the_server_store_check_covers_a_trained_fusion(run, store, tmp_path, caplog):
    """A running server hashes its trained fusion again with the store: a changed graph
    turns it NOT_SERVING with one critical line naming the fusion and the fix."""
    import copy
    import logging

    from serving import ServerThread, shared_analyzer

    folder = tmp_path / "run"
    shutil.copytree(run.out, folder)
    analyzer = copy.copy(shared_analyzer())
    analyzer.fusion = resolve_fusion(store, str(folder))
    srv = ServerThread(analyzer=analyzer).wait_ready()
    try:
        assert srv.call(srv.server.check_store()) is True
        with open(folder / "fusion.onnx", "ab") as f:
            f.write(b"\0")
        with caplog.at_level(logging.CRITICAL, logger="ahmer.service"):
            assert srv.call(srv.server.check_store()) is False
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
        assert len(lines) == 1 and "fusion 'synth1'" in lines[0] and "add-fusion" in lines[0]
    finally:
        srv.stop()


def test_score_with_a_trained_fusion_names_it_and_rescores_on_a_change(
    installed, home, clip, tmp_path
):
    out = tmp_path / "scored"
    args = ["score", str(clip), "--out", str(out), "--workers", "1"]
    proc = ahmer(*args, "--fusion", installed, home=home)
    assert proc.returncode == 0, proc.stderr
    (result,) = (out / "results").glob("*.json")
    assert json.loads(result.read_text())["models"]["fusion"] == installed
    clips_csv = (out / "clips.csv").read_text()
    assert "ahmer-ah-trained@" in clips_csv  # the ah_model column: the fusion's version
    again = ahmer(*args, "--fusion", installed, home=home)
    assert again.returncode == 0 and "1 already done, 0 to score" in again.stderr
    prior = ahmer(*args, home=home)  # the prior: not the same results
    assert prior.returncode == 0 and "0 already done, 1 to score" in prior.stderr
    assert json.loads(result.read_text())["models"]["fusion"] == FUSION_MODEL
    one_error_line(ahmer(*args, "--fusion", "nope", home=home), 2, "--fusion", "nope")


def test_triton_serves_a_trained_fusion_under_its_name(installed, run, home, store, clip, tmp_path):
    """``triton-repo --fusion NAME`` serves the trained graph as model NAME; ``ahmer analyze
    --backend triton --fusion NAME`` through a real local Triton equals the in-process run."""
    from ahmer.models.triton.local import LocalTriton
    from ahmer.models.triton.repository import write_repository

    ref = resolve_fusion(store, installed)
    assert run.card["uses_embeddings"]  # so the face and voice embeddings go through Triton
    repo = tmp_path / "repo"
    write_repository(store, repo, python_backend=True, fusion=ref)
    assert (repo / installed / "config.pbtxt").is_file()
    local = ahmer("analyze", str(clip), "--fusion", installed, "--json", "-", "--quiet", home=home)
    assert local.returncode == 0, local.stderr
    with LocalTriton(repo).start(timeout=240) as triton:
        args = ["--backend", "triton", "--triton-url", triton.url, "--triton-timeout", "60"]
        proc = ahmer(
            "analyze", str(clip), "--fusion", installed, "--json", "-", "--quiet", *args,
            home=home,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    remote, mine = json.loads(proc.stdout), json.loads(local.stdout)
    assert remote["models"][installed] == ref.version and remote["notice"] == mine["notice"]
    pairs = [(remote["clip"]["ah_probability"], mine["clip"]["ah_probability"])]
    pairs += [
        (a["ah_probability"], b["ah_probability"])
        for a, b in zip(remote["frames"], mine["frames"], strict=True)
    ]
    assert max(abs(a - b) for a, b in pairs) <= 1e-4 + 1e-9  # the JSON rounds to 4 decimals


def test_features_of_other_models_fail_the_parity_check(tmp_path, prior_graph, store):
    """cue_features that this store's graph does not compute from the inputs (features made
    with other models) stop the run before a graph is written."""
    from ahmer.models.training.train import TrainingError

    feats = write_features(tmp_path / "feats", prior_graph, participants=5, seed=2)
    for path in (feats / "features").glob("*.npz"):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["cue_features"] = arrays["cue_features"] * 1.1 + 0.01
        np.savez(path, **arrays)
    with pytest.raises(TrainingError, match="extracted with other models"):
        train(feats, tmp_path / "run", TrainConfig(epochs=1), store=store)
    assert not (tmp_path / "run" / "fusion.onnx").exists()
    assert not list((tmp_path / "run").glob(".fusion*"))
