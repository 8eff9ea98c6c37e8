"""BAH metrics against hand-computed values, BAH label files, matching and frame alignment.

Scores in the AP examples sit half-way between two thresholds of the 0.001 grid (x.xxx5), so
no comparison ``score >= t`` depends on floating-point rounding of the grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ahmer.models.training.evaluation import (
    LabelSet,
    MetricsError,
    ScoredVideo,
    average_precision,
    binary_metrics,
    evaluate,
    f1_per_class,
    frame_pairs,
    load_labels,
    match_labels,
    read_frame_annotations,
    read_split_file,
)


def test_f1_avgf1_accuracy_by_hand():
    y = [1, 0, 1, 1, 0]
    p = [1, 0, 0, 1, 1]
    # class 1: TP = 2 (items 0, 3), FP = 1 (item 4), FN = 1 (item 2)
    #   F1_1 = 2*2 / (2*2 + 1 + 1) = 4/6
    # class 0: TP = 1 (item 1), FP = 1 (item 2 predicted 0, is 1), FN = 1 (item 4)
    #   F1_0 = 2*1 / (2*1 + 1 + 1) = 2/4
    # AVGF1 = (1/2 + 2/3) / 2 = 7/12; accuracy = 3/5
    m = binary_metrics(y, p)
    assert m.f1_1 == pytest.approx(4 / 6)
    assert m.f1_0 == pytest.approx(0.5)
    assert m.avgf1 == pytest.approx(7 / 12)
    assert m.accuracy == pytest.approx(0.6)
    assert (m.n, m.positives, m.negatives) == (5, 3, 2)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 1)
    assert m.ap is None  # no scores given


def test_ap_trapezoid_and_step_by_hand():
    y = [1, 0, 1, 0]
    s = [0.9005, 0.6005, 0.3505, 0.1005]
    # thresholds t = 0.000 .. 0.999; predicted positive where s >= t:
    #   t <= 0.100:          all four     TP=2 FP=2  P=1/2  R=1
    #   0.101 <= t <= 0.350: first three  TP=2 FP=1  P=2/3  R=1
    #   0.351 <= t <= 0.600: first two    TP=1 FP=1  P=1/2  R=1/2
    #   0.601 <= t <= 0.900: first one    TP=1 FP=0  P=1    R=1/2
    #   t >= 0.901:          none         P=0 (by convention) R=0
    # recall drops twice: 0.350 -> 0.351 (1 -> 1/2) and 0.900 -> 0.901 (1/2 -> 0)
    # trapezoid: 1/2 * (2/3 + 1/2)/2 + 1/2 * (1 + 0)/2 = 7/24 + 1/4 = 13/24
    # step (precision before the drop, as scikit-learn's AP): 1/2 * 2/3 + 1/2 * 1 = 5/6
    assert average_precision(y, s) == pytest.approx(13 / 24)
    assert average_precision(y, s, rule="step") == pytest.approx(5 / 6)
    m = binary_metrics(y, [int(v >= 0.5) for v in s], s)
    assert m.ap == pytest.approx(13 / 24)


def test_ap_perfect_classifier_loses_half_the_last_step():
    # y = [1, 0], s = [0.8005, 0.2005]
    #   t <= 0.200: both predicted, P=1/2 R=1;  0.201..0.800: P=1 R=1;  t >= 0.801: P=0 R=0
    # trapezoid: the only recall drop is 1 -> 0 between 0.800 and 0.801: 1 * (1 + 0)/2 = 1/2
    assert average_precision([1, 0], [0.8005, 0.2005]) == pytest.approx(0.5)
    assert average_precision([1, 0], [0.8005, 0.2005], rule="step") == pytest.approx(1.0)
    # a positive scored 0.9995 is predicted at every threshold, recall never drops: AP = 0
    assert average_precision([1], [0.9995]) == pytest.approx(0.0)


def test_degenerate_single_class():
    # no positives at all, all predicted 0: class 0 perfect (F1_0 = 2*3/(2*3) = 1);
    # class 1 absent from labels and predictions: 0/0, defined as 0 -> AVGF1 = 1/2.
    m = binary_metrics([0, 0, 0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert (m.f1_0, m.f1_1, m.avgf1, m.accuracy) == (1.0, 0.0, 0.5, 1.0)
    assert m.ap is None  # recall is 0/0 without positives
    # all positive and all predicted 1: F1_1 = 1, F1_0 = 0 (absent class), AVGF1 = 1/2
    m = binary_metrics([1, 1], [1, 1], [0.7005, 0.7005])
    assert (m.f1_0, m.f1_1, m.avgf1) == (0.0, 1.0, 0.5)
    # AP: P=1 R=1 up to t=0.700, then P=0 R=0: 1 * (1 + 0)/2 = 1/2
    assert m.ap == pytest.approx(0.5)
    # no positives but one predicted positive: F1_1 = 2*0/(0 + 1 + 0) = 0 (no 0/0 here);
    # class 0: TP=1 FP=0 FN=1 -> 2/3; AVGF1 = 1/3
    assert f1_per_class([0, 0], [0, 1]) == pytest.approx((2 / 3, 0.0))


def test_matches_the_bah_reference_procedure_on_random_data():
    """An independent loop over thresholds, as the BAH reference code writes it, with
    scikit-learn's ``auc`` for the area."""
    from sklearn.metrics import auc, f1_score

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.2).astype(int)
    s = np.clip(rng.random(400) * 0.7 + y * 0.25, 0, 1).round(4)
    precisions, recalls = [], []
    for t in np.arange(0, 1, 0.001).tolist():
        pred = s >= t
        tp = np.sum(pred & (y == 1))
        fp = np.sum(pred & (y == 0))
        precisions.append(tp / (tp + fp) if tp + fp else 0.0)
        recalls.append(tp / y.sum())
    reference = auc(np.array(recalls), np.array(precisions))
    assert average_precision(y, s) == pytest.approx(reference, abs=1e-12)
    hard = (s >= 0.5).astype(int)
    m = binary_metrics(y, hard, s)
    assert m.avgf1 == pytest.approx(f1_score(y, hard, average="macro"))
    assert m.f1_1 == pytest.approx(f1_score(y, hard))


def test_bad_inputs_raise_metrics_error():
    with pytest.raises(MetricsError, match="only 0 and 1"):
        binary_metrics([0, 2], [0, 1])
    with pytest.raises(MetricsError, match="labels but"):
        binary_metrics([0, 1], [0])
    with pytest.raises(MetricsError, match="nothing to evaluate"):
        binary_metrics([], [])
    with pytest.raises(MetricsError, match="finite"):
        average_precision([1, 0], [float("nan"), 0.2])


def test_split_file_commas_in_transcript_and_header(tmp_path):
    f = tmp_path / "test.txt"
    f.write_text(
        "video_path,label,transcript\n"
        "Videos/1/Visite_1/1_Question_1_2024-01-01 10-00-00_Video.mp4,1,Well, um, maybe, yes\n"
        "\n"
        "Videos/2/Visite_1/2_Question_3_x_Video.mp4,0,\n",
        encoding="utf-8",
    )
    labels = read_split_file(f)
    assert labels == {
        "Videos/1/Visite_1/1_Question_1_2024-01-01 10-00-00_Video.mp4": 1,
        "Videos/2/Visite_1/2_Question_3_x_Video.mp4": 0,
    }
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mp4,1,ok\nb.mp4,yes,secret words\n")
    with pytest.raises(MetricsError, match=r"bad.txt:2") as err:
        read_split_file(bad)
    assert "secret" not in str(err.value)  # never echo transcript text


def test_frame_annotation_yaml(tmp_path):
    f = tmp_path / "video_annotation.yaml"
    f.write_text(
        "1/Visite 1/1_Question_1_Video.mp4:\n"
        "  global_ah: 1\n"
        "  frame_annotation:\n"
        "  - [frame-2.jpg, 1]\n"
        "  - [frame-0.jpg, 0]\n"
        "  - [frame-1.jpg, 1.0]\n"
        "  - [frame-10.jpg, -1]\n"
        "2/Visite 1/2_Question_1_Video.mp4:\n"
        "  frame_annotation: [[a, 0], [b, 1]]\n"
        "class_id: {With A-H: 1}\n",
        encoding="utf-8",
    )
    frames, videos = read_frame_annotations(f)
    # ordered by the frame number: 0, 1, 2, 10; -1 stays "unlabelled"
    assert frames["1/Visite 1/1_Question_1_Video.mp4"].tolist() == [0, 1, 1, -1]
    assert frames["2/Visite 1/2_Question_1_Video.mp4"].tolist() == [0, 1]  # list order
    assert videos == {"1/Visite 1/1_Question_1_Video.mp4": 1}
    labels = load_labels([f])
    assert labels.videos == videos and set(labels.frames) == set(frames)
    (tmp_path / "x.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(MetricsError, match="mapping"):
        read_frame_annotations(tmp_path / "x.yaml")
    with pytest.raises(MetricsError, match="no such file"):
        load_labels([tmp_path / "missing.txt"])


def test_matching_by_stem_then_longest_path_suffix():
    keys = [
        "Videos/1/Visite_1/1_Q_1_Video.mp4",
        "Videos/2/Visite_1/same.mp4",
        "Videos/3/Visite_1/same.mp4",
        "A/dup.mp4",
        "B/dup.mp4",
    ]
    videos = [
        ("a", "/data/bah/1/Visite_1/1_Q_1_Video.mp4"),  # unique stem
        ("b", "/x/3/Visite_1/same.mkv"),  # stem shared: "3/Visite_1/same" wins
        ("c", "/x/C/dup.mp4"),  # stem shared, no suffix decides: unmatched
        ("same-not", "/x/other.mp4"),  # no such stem
    ]
    assert match_labels(videos, keys) == {
        "a": "Videos/1/Visite_1/1_Q_1_Video.mp4",
        "b": "Videos/3/Visite_1/same.mp4",
    }


def _video(vid, times, probs, fps=10.0, p=0.7):
    probs = np.asarray(probs, float)
    return ScoredVideo(
        id=vid,
        path=f"/m/{vid}.mp4",
        probability=p,
        label=int(p >= 0.5),
        times=np.asarray(times, float),
        frame_probability=probs,
        frame_label=(probs >= 0.5).astype(int),
        source_fps=fps,
    )


def test_frame_pairs_take_the_nearest_analysis_frame():
    # analysis at 2 fps: t = 0.0, 0.5, 1.0 ; source labels at 4 fps: t = 0, .25, .5, .75, 1.0
    v = _video("v", [0.0, 0.5, 1.0], [0.2005, 0.8005, 0.4005])
    labels = np.array([0, 1, 1, -1, 0], np.int8)
    y, p, s, dropped = frame_pairs(labels, 4.0, v)
    # frame 0 (0.00 s) -> analysis 0; frame 1 (0.25 s) is equidistant -> the earlier (0);
    # frame 2 (0.50 s) -> analysis 1; frame 3 unlabelled; frame 4 (1.00 s) -> analysis 2
    assert y.tolist() == [0, 1, 1, 0]
    assert s.tolist() == [0.2005, 0.2005, 0.8005, 0.4005]
    assert p.tolist() == [0, 0, 1, 0]
    assert dropped == 0
    # labelled frames more than max(0.5 s, one analysis step) from the last analysis frame
    # (1.0 s) are dropped: frames 0..10 at 4 fps reach 2.5 s; frame 6 (1.5 s) is exactly
    # 0.5 s away and kept, frames 7..10 (1.75 .. 2.5 s) are dropped
    far = np.array([0] * 10 + [1], np.int8)
    y, _, _, dropped = frame_pairs(far, 4.0, v)
    assert (len(y), dropped) == (7, 4)


def test_evaluate_video_and_frame_level():
    a = _video("a", [0.0, 0.5], [0.9005, 0.1005], fps=2.0, p=0.8)
    b = _video("b", [0.0, 0.5], [0.3005, 0.6005], fps=2.0, p=0.3)
    labels = LabelSet(
        videos={"V/a.mp4": 1, "V/b.mp4": 1},
        frames={"V/a.mp4": np.array([1, 0], np.int8), "V/b.mp4": np.array([0, 1], np.int8)},
    )
    report = evaluate([a, b], labels)
    assert report["matching"]["matched_video_level"] == 2
    assert report["matching"]["unmatched"] == []
    video = report["video"]
    # labels [1, 1], predictions [1, 0]: F1_1 = 2/(2+0+1) = 2/3; class 0 absent from labels
    # and predicted once: F1_0 = 0/(0+1+0) = 0; AVGF1 = 1/3; accuracy 1/2
    assert video["f1_1"] == pytest.approx(2 / 3) and video["f1_0"] == 0.0
    assert video["avgf1"] == pytest.approx(1 / 3) and video["accuracy"] == 0.5
    frame = report["frame"]
    # frames (label, score): (1, .9005) (0, .1005) (0, .3005) (1, .6005); preds 1 0 0 1
    assert (frame["n"], frame["tp"], frame["tn"], frame["avgf1"]) == (4, 2, 2, 1.0)
    # AP: t<=.100 P=2/4 R=1; .101-.300 P=2/3 R=1; .301-.600 P=1 R=1; .601-.900 P=1 R=1/2;
    # then P=0 R=0.  Drops: .600->.601: 1/2*(1+1)/2 = 1/2 ; .900->.901: 1/2*(1+0)/2 = 1/4
    assert frame["ap"] == pytest.approx(0.75)
    assert frame["frames_dropped"] == 0
    assert not math.isnan(frame["ap"])
