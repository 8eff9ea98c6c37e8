"""Validity of A/H per channel: the challenge set of ``tests/ahgen.py``, scored per category.

Run from the repository root with the project's venv::

    .venv/bin/python bench/validity.py                      # generate, extract, score, train
    .venv/bin/python bench/validity.py --participants 12 --seed 7 --json validity.json
    .venv/bin/python bench/validity.py --calibrate          # fit the prior's clip head

What it does:

1. generates two challenge sets with ``tests/ahgen.py`` (every participant answers in every
   category): the **main** set (``--seed``; participants split train/val/test, disjoint) and
   a separate **calibration** set (``--calib-seed``, other participants, other draws);
2. extracts their fusion inputs with ``ahmer features`` (split-file transcripts, 5 fps);
3. trains a fusion with ``ahmer train`` on the main set's train/val participants
   (``--train-seed``), unless ``--no-train``;
4. scores, on the main set's **test** participants, the prior ``@2``, the prior ``@3`` and
   the trained fusion: per category the recall (A/H categories) or the specificity
   (non-A/H categories) at the default threshold 0.5, then over all test clips the AUC,
   the macro F1 (AVGF1), the expected calibration error (ECE, 10 equal-width bins) and the
   share of saturated probabilities (p < 0.01 or p > 0.99);
5. with ``--calibrate``: fits the prior's clip temperature and bias (``clip_scale``,
   ``clip_bias``) on the calibration set's labels and ``@3``'s pooled clip logits (see
   :func:`fit_calibration`), and prints them with the calibration set's ECE before and after (the
   values go into ``CALIBRATION`` in ``models/fusion/prior.py``; ``models/CUES.md`` says
   how). The sets the tests and this table score are never used for it.

Nothing is asserted (``tests/test_ah_channels.py`` checks each category against chance).
The machine is shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

__all__ = ["ClipScore", "category_rows", "summary", "score_graph", "fit_calibration"]

THRESHOLD = 0.5


@dataclass
class ClipScore:
    """One clip's label, category and clip-level A/H probability under one fusion."""

    id: str
    category: str
    label: int
    p: float
    pooled: float = math.nan  # the clip logit before the graph's clip head (calibration)


@dataclass
class Table:
    rows: dict[str, dict[str, float]] = field(default_factory=dict)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def categories_of(features: Path, dataset: Path) -> dict[str, str]:
    """Feature id -> category, through index.csv's ``source`` and categories.csv."""
    from ahgen import read_categories

    by_stem = read_categories(dataset)
    out = {}
    with open(features / "index.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["id"]] = by_stem[Path(row["source"]).stem]
    return out


def score_graph(features: Path, dataset: Path, graph: Path, split: str | None) -> list[ClipScore]:
    """Clip scores of the fusion ``graph`` over the clips of ``split`` (None: all)."""
    from ahmer.models.training.featureset import FeatureSet, fusion_session, run_fusion

    fs = FeatureSet.open(features)
    cats = categories_of(features, dataset)
    session = fusion_session(graph)
    inits = _clip_head(graph)
    out = []
    for row in fs.rows:
        if split is not None and row.split != split:
            continue
        clip = fs.load(row)
        logit = float(run_fusion(session, clip, ("clip_ah_logit",))["clip_ah_logit"])
        pooled = (logit - inits[1]) / inits[0] if inits[0] else math.nan
        p = 1.0 / (1.0 + math.exp(-logit))
        out.append(ClipScore(row.id, cats[row.id], clip.label, p, pooled))
    return out


def _clip_head(graph: Path) -> tuple[float, float]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return float(init["clip_scale"]), float(init["clip_bias"])


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return math.nan
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(probs[sel].mean() - labels[sel].mean())
    return float(total)


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = 5) -> list[tuple]:
    """(bin range, clips, mean p, A/H rate) per bin with clips."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append(
                (f"{edges[b]:.1f}-{edges[b + 1]:.1f}", int(sel.sum()),
                 float(probs[sel].mean()), float(labels[sel].mean()))
            )  # fmt: skip
    return out


def category_rows(scores: list[ClipScore]) -> dict[str, tuple[str, float, int, float, float]]:
    """Per category: ("recall" | "specificity", value at the threshold, clips, mean
    probability of the clips' own class, Brier score). The last two are graded views of
    the first, where ties at 1.00 hide differences; the Brier score (mean squared distance
    of the probability from the clip's label, lower is better) is a proper scoring rule, so
    a model cannot lower it by pushing probabilities to 0 or 1 without being right."""
    from ahgen import CATEGORIES

    out = {}
    for category, label in CATEGORIES.items():
        ps = np.array([s.p for s in scores if s.category == category])
        if not len(ps):
            continue
        hit = ps >= THRESHOLD if label == 1 else ps < THRESHOLD
        own = ps if label == 1 else 1 - ps
        measure = "recall" if label == 1 else "specificity"
        brier = float(((ps - label) ** 2).mean())
        out[category] = (measure, float(hit.mean()), len(ps), float(own.mean()), brier)
    return out


def beats(rows: dict, model: str, baseline: str) -> dict[str, bool]:
    """Per category, whether ``model`` beats ``baseline``: a higher value at the threshold,
    or the same value and a lower Brier score."""
    out = {}
    for category, row in rows[baseline].items():
        mine = rows[model][category]
        better = mine[1] > row[1] + 1e-9
        out[category] = better or (abs(mine[1] - row[1]) <= 1e-9 and mine[4] < row[4])
    return out


def summary(scores: list[ClipScore]) -> dict[str, float]:
    """AUC, macro F1 (AVGF1) at the threshold, ECE and the saturated share over ``scores``."""
    from ahmer.models.training.evaluation import binary_metrics

    labels = np.array([s.label for s in scores], np.int8)
    probs = np.array([s.p for s in scores])
    m = binary_metrics(labels, (probs >= THRESHOLD).astype(np.int8), probs)
    return {
        "auc": auc(labels, probs),
        "avgf1": float(m.avgf1),
        "ece": ece(labels, probs),
        "saturated": float(((probs < 0.01) | (probs > 0.99)).mean()),
        "clips": len(scores),
    }


SCALES = np.round(np.arange(1.0, 4.01, 0.25), 2)  # the clip temperatures tried
MAX_SATURATED = 0.10  # at most this share of clips at p < 0.01 or p > 0.99


def fit_calibration(scores: list[ClipScore]) -> tuple[float, float]:
    """(clip_scale, clip_bias) for the prior's clip head from the pooled clip logits.

    For each scale of :data:`SCALES` (a temperature of 1/scale), the bias minimising the log
    loss (Newton's method); the pair with the lowest log loss whose probabilities stay
    unsaturated (at most :data:`MAX_SATURATED` of the clips below 0.01 or above 0.99). A
    generated set is nearly separable, so an unconstrained logistic fit would take a steep
    scale and saturate the probabilities; the grid keeps them graded."""
    x = np.array([s.pooled for s in scores], np.float64)
    y = np.array([s.label for s in scores], np.float64)
    best: tuple[float, float, float] | None = None
    for a in SCALES:
        b = 0.0
        for _ in range(100):
            p = 1 / (1 + np.exp(-(a * x + b)))
            step = (p - y).sum() / max((p * (1 - p)).sum(), 1e-9)
            b -= step
            if abs(step) < 1e-10:
                break
        p = np.clip(1 / (1 + np.exp(-(a * x + b))), 1e-12, 1 - 1e-12)
        if ((p < 0.01) | (p > 0.99)).mean() > MAX_SATURATED:
            continue
        loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
        if best is None or loss < best[0]:
            best = (loss, float(a), float(b))
    if best is None:
        return 1.0, 0.0
    return best[1], best[2]


def _run(cmd: list[str], what: str) -> None:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"  {what}: {time.perf_counter() - t:.0f} s (load {_load()})", file=sys.stderr)


def _features(dataset: Path, out: Path, workers: int) -> Path:
    if not (out / "index.csv").is_file():
        cmd = [sys.executable, "-m", "ahmer.service.cli", "features", str(dataset)]
        cmd += ["--out", str(out), "--label-fps", "12", "--workers", str(workers), "--quiet"]
        _run(cmd, f"features {dataset.name}")
    return out


def _generate(root: Path, participants: int, per_category: int, seed: int, splits) -> Path:
    from ahgen import make_ah_challenge

    from ahmer.models.store.model_store import ModelStore

    if not (root / "categories.csv").is_file():
        t = time.perf_counter()
        make_ah_challenge(
            root, participants, per_category, seed,
            landmarker=ModelStore().path("face_landmarker"), splits=splits,
        )  # fmt: skip
        print(f"  generated {root.name}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return root


def print_table(results: dict[str, list[ClipScore]], out=sys.stdout) -> dict:
    names = list(results)
    rows = {n: category_rows(s) for n, s in results.items()}
    sums = {n: summary(s) for n, s in results.items()}
    first = rows[names[0]]
    print(f"| category | measure | clips | {' | '.join(names)} |", file=out)
    print(f"| --- | --- | --- | {' | '.join('---' for _ in names)} |", file=out)
    for category, (measure, _, count, _, _) in first.items():
        cells = " | ".join(
            f"{rows[n][category][1]:.2f} ({rows[n][category][3]:.2f}; {rows[n][category][4]:.3f})"
            for n in names
        )
        print(
            f"| {category} | {measure} (mean p of its class; Brier) | {count} | {cells} |",
            file=out,
        )
    for key in ("auc", "avgf1", "ece", "saturated"):
        cells = " | ".join(f"{sums[n][key]:.3f}" for n in names)
        print(f"| all | {key} | {sums[names[0]]['clips']} | {cells} |", file=out)
    report = {"categories": rows, "summary": sums}
    if "trained" in rows and "@3" in rows:
        won = beats(rows, "trained", "@3")
        report["trained_beats_@3"] = won
        lost = [c for c, ok in won.items() if not ok]
        print(
            f"\ntrained beats @3 (higher value at {THRESHOLD}, or the same and a lower Brier "
            f"score) in {sum(won.values())} of {len(won)} categories"
            + (f"; not in: {', '.join(lost)}" if lost else ""),
            file=out,
        )
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / ".bench-validity", help="work folder")
    ap.add_argument("--participants", type=int, default=12, help="main set participants (12)")
    ap.add_argument("--per-category", type=int, default=1, help="answers per category (1)")
    ap.add_argument("--seed", type=int, default=7, help="main set seed (7)")
    ap.add_argument("--test", type=int, default=3, help="test participants (3)")
    ap.add_argument("--val", type=int, default=2, help="validation participants (2)")
    ap.add_argument("--calib-seed", type=int, default=101, help="calibration set seed (101)")
    ap.add_argument("--calib-participants", type=int, default=4, help="(4)")
    ap.add_argument("--train-seed", type=int, default=0, help="ahmer train --seed (0)")
    ap.add_argument("--no-train", action="store_true", help="score the priors only")
    ap.add_argument("--calibrate", action="store_true", help="fit the prior's clip head")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, dest="json_out")
    args = ap.parse_args(argv)

    from ahmer.models.fusion.registry import resolve_fusion
    from ahmer.models.store.model_store import ModelStore

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {_load()}", file=sys.stderr)
    store = ModelStore()
    graphs = {
        "@2": resolve_fusion(store, "ahmer-ah-zeroshot@2").path,
        "@3": resolve_fusion(store, "").path,
    }
    report: dict = {"load_before": _load(), "args": {k: str(v) for k, v in vars(args).items()}}

    if args.calibrate:
        calib = _generate(
            work / f"calib-s{args.calib_seed}-p{args.calib_participants}",
            args.calib_participants,
            args.per_category,
            args.calib_seed,
            (0, 0),
        )
        feats = _features(calib, work / f"{calib.name}-features", args.workers)
        scores = score_graph(feats, calib, graphs["@3"], None)
        scale, bias = fit_calibration(scores)
        labels = np.array([s.label for s in scores])
        before = np.array([s.p for s in scores])
        after = 1 / (1 + np.exp(-(scale * np.array([s.pooled for s in scores]) + bias)))
        print(f"calibration set: {len(scores)} clips ({calib.name})")
        print(f"  clip_scale {scale:.3f}, clip_bias {bias:.3f}")
        print(f"  ECE before {ece(labels, before):.3f}, after {ece(labels, after):.3f}")
        print(f"  AVGF1 at 0.5 before {summary(scores)['avgf1']:.3f}")
        report["calibration"] = {"clip_scale": scale, "clip_bias": bias, "clips": len(scores)}

    name = f"main-s{args.seed}-p{args.participants}-c{args.per_category}"
    main_set = _generate(work / name, args.participants, args.per_category, args.seed,
                         (args.val, args.test))  # fmt: skip
    feats = _features(main_set, work / f"{name}-features", args.workers)
    if not args.no_train:
        run = work / f"{name}-run-s{args.train_seed}"
        if not (run / "fusion.onnx").is_file():
            cmd = [sys.executable, "-m", "ahmer.service.cli", "train", str(feats)]
            _run([*cmd, "--out", str(run), "--seed", str(args.train_seed), "--quiet"], "train")
        graphs["trained"] = run / "fusion.onnx"
    results = {key: score_graph(feats, main_set, g, "test") for key, g in graphs.items()}
    clips = len(results["@3"])
    train_clips = sum(1 for r in csv.DictReader(open(feats / "index.csv")) if r["split"] != "test")
    print(
        f"\nchallenge set {name}: seed {args.seed}, {args.participants} participants x "
        f"{args.per_category} per category; test {args.test} participants ({clips} clips), "
        f"train+val {train_clips} clips; train seed {args.train_seed}; threshold {THRESHOLD}\n"
    )
    report.update(print_table(results))
    print("\nreliability of @3 on the test clips (bin, clips, mean p, A/H rate):")
    labels = np.array([s.label for s in results["@3"]])
    for row in reliability(labels, np.array([s.p for s in results["@3"]])):
        print(f"  {row[0]}: {row[1]:3d} clips, mean p {row[2]:.2f}, A/H rate {row[3]:.2f}")
    report["load_after"] = _load()
    print(f"\nload before {report['load_before']}, after {report['load_after']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
