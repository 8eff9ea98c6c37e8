"""The human-readable model card (``card.md``) of a trained fusion, from its ``card.json``
(written by :func:`ahmer.models.training.train.train`), and what a card says about its own
reliability: warnings for splits too small to measure anything (:func:`split_warnings`, under
:data:`MIN_VIDEOS` videos or :data:`MIN_PARTICIPANTS` participants) and the note on BAH's AP
convention (:data:`AP_NOTE`), printed under every metrics table."""

from __future__ import annotations

import math

from ahmer.models.fusion.registry import GRAPH_FILE

__all__ = ["AP_NOTE", "MIN_PARTICIPANTS", "MIN_VIDEOS", "card_markdown", "split_warnings"]

MIN_VIDEOS = 20
"""A split with fewer videos than this gets a warning: its metrics swing by whole points
with one video (BAH's test split has 285)."""
MIN_PARTICIPANTS = 5
"""A split with fewer participants than this gets a warning: one person's manner is not
a population (BAH's test split has 60)."""

AP_NOTE = (
    "AP follows BAH's reference code: the trapezoid area under the precision-recall points "
    "at thresholds 0, 0.001, ..., 0.999, not anchored at recall 0, so positives scored "
    "below 0.999 lose half of the last recall step: a perfect classifier can show AP 0.5. "
    "n/a: undefined on these labels (no positive, or no labels at that level)."
)


def split_warnings(splits: dict) -> list[str]:
    """One sentence per split (train, val, test) too small for its figures to mean much:
    fewer than :data:`MIN_VIDEOS` videos or :data:`MIN_PARTICIPANTS` participants, or empty.
    ``splits``: the card's ``splits`` block (``videos``, ``participants`` per split); splits
    it does not name are not judged."""
    found = []
    for split in [s for s in ("train", "val", "test") if s in splits]:
        c = splits[split] or {}
        videos, people = int(c.get("videos") or 0), int(c.get("participants") or 0)
        if not videos:
            found.append(f"the {split} split is empty: there are no {split} figures")
        elif videos < MIN_VIDEOS or people < MIN_PARTICIPANTS:
            use = "what the fusion learned" if split == "train" else "its metrics"
            found.append(
                f"the {split} split has {videos} video(s) from {people} participant(s), under "
                f"{MIN_VIDEOS} videos or {MIN_PARTICIPANTS} participants: {use} say little"
            )
    return found


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def card_markdown(card: dict) -> str:
    """The human-readable model card."""
    lines = [f"# Fusion `{card['name']}`", ""]
    lines += [f"> **Warning:** {w}." for w in card.get("warnings") or ()]
    lines += [
        "" if card.get("warnings") else None,
        f"- graph: `{GRAPH_FILE}`, sha256 `{card['sha256']}`, contract `{card['contract']}`, "
        f"weights `{card['weights_id']}`",
        f"- data fingerprint: `{card['data']['fingerprint']}` (layout {card['data']['layout']}, "
        f"{card['data']['fps']} fps)",
        f"- splits: {card['splits']['method']}; seed {card['seed']}",
        f"- thresholds (raw, folded into the biases): frame {card['thresholds']['frame']:g}, "
        f"clip {card['thresholds']['clip']:g}",
        f"- training: {card['training']['seconds']} s, peak RSS {card['training']['peak_rss_mb']} "
        f"MB, device {card['training']['device']}, {card['training']['threads']} thread(s), "
        f"epoch {card['training']['selected_epoch']} of {card['training']['epochs_run']} kept",
        "",
        "| split | videos | participants | labelled frames | positive frames | labelled videos "
        "| positive videos |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("train", "val", "test"):
        c = card["splits"][split]
        lines.append(
            f"| {split} | {c['videos']} | {c['participants']} | {c['labelled_frames']} | "
            f"{c['positive_frames']} | {c['labelled_videos']} | {c['positive_videos']} |"
        )
    lines += [
        "",
        "| split | level | fusion | AVGF1 | AP | accuracy | F1 no-A/H | F1 A/H | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("val", "test"):
        block = card["metrics"].get(split)
        if not block:
            lines.append(f"| {split} | - | - | - | - | - | - | - | 0 |")
            continue
        for level in ("frame", "video"):
            for who in ("trained", "prior"):
                m = (block.get(who) or {}).get(level)
                if not m:
                    continue
                lines.append(
                    f"| {split} | {level} | {who} | {_fmt(m['avgf1'])} | {_fmt(m['ap'])} | "
                    f"{_fmt(m['accuracy'])} | {_fmt(m['f1_0'])} | {_fmt(m['f1_1'])} | {m['n']} |"
                )
    lines += ["", AP_NOTE]
    hp = card["hyperparameters"]
    lines += ["", "Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in hp.items()), ""]
    lines += ["## Split membership", ""]
    for split in ("train", "val", "test"):
        ids = card["splits"][split].get("ids") or []
        lines.append(f"- {split} ({len(ids)}): " + (", ".join(f"`{i}`" for i in ids) or "none"))
    lines.append("")
    return "\n".join(line for line in lines if line is not None)
