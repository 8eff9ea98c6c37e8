"""The human-readable model card (``card.md``) of a trained fusion, from its ``card.json``
(written by :func:`ahmer.models.training.train.train`)."""

from __future__ import annotations

import math

from ahmer.models.fusion.registry import GRAPH_FILE

__all__ = ["card_markdown"]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def card_markdown(card: dict) -> str:
    """The human-readable model card."""
    lines = [
        f"# Fusion `{card['name']}`",
        "",
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
    hp = card["hyperparameters"]
    lines += ["", "Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in hp.items()), ""]
    return "\n".join(lines)
