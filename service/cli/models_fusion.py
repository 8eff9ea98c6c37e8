"""``ahmer models add-fusion RUN``: install a trained fusion (a run folder of ``ahmer train``)
into the model store, and the installed fusions' rows of ``ahmer models list``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ahmer.models.store.model_store import ModelStore

from ..files import fail_if_unreadable
from .args import examples

__all__ = ["add_fusion_parsers", "cmd_add_fusion", "fusion_rows"]


def add_fusion_parsers(actions: Any) -> None:
    """Add ``models add-fusion RUN [--name NAME] [--force]`` to the ``models`` actions."""
    p = actions.add_parser(
        "add-fusion",
        help="install a trained fusion (an `ahmer train` run folder) into the store",
        description="Check RUN/fusion.onnx against the fusion contract (metadata, the prior's "
        "inputs and outputs, one run on a small input) and install it with its model card as "
        "fusions/NAME/ in the store, its sha256 recorded. Then --fusion NAME (or "
        "AHMER_FUSION=NAME) selects it in analyze, score, serve, evaluate and triton-repo.",
        **examples(
            "ahmer models add-fusion runs/bah1",
            "ahmer models add-fusion runs/bah1 --name bah-2026-12 --force",
            "ahmer analyze answer.mp4 --fusion bah1",
        ),
    )
    p.add_argument("run", type=Path, help="a run folder of `ahmer train` (fusion.onnx, card.json)")
    p.add_argument("--name", help="the fusion's name (default: the card's, else the folder's)")
    p.add_argument("--force", action="store_true", help="replace an installed fusion of that name")
    p.set_defaults(func=cmd_add_fusion)


def cmd_add_fusion(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.run, folder_ok=True)  # before any import
    from ahmer.models.fusion.registry import install_fusion

    ref = install_fusion(ModelStore(), args.run, name=args.name, replace=args.force)
    from ahmer.models.fusion.registry import fusion_notice

    print(f"installed fusion {ref.name} ({ref.version}) at {ref.path.parent}")
    print(f"  {fusion_notice(ref)}")
    print(f"use it: ahmer analyze MEDIA --fusion {ref.name}  (or AHMER_FUSION={ref.name})")
    return 0


def fusion_rows(store: ModelStore) -> list[dict[str, Any]]:
    """One row per installed fusion for ``ahmer models list``: name, version, kind, size,
    sha256, status, and the card's test metrics."""
    from ahmer.models.fusion.registry import GRAPH_FILE, fusion_status, installed_fusions

    rows = []
    for name, record in installed_fusions(store).items():
        graph = store.root / "fusions" / name / GRAPH_FILE
        size = graph.stat().st_size if graph.is_file() else 0
        rows.append(
            {
                "name": name,
                "version": record.get("version", ""),
                "kind": "fusion",
                "size": size,
                "license": "-",
                "sha256": record.get("sha256", ""),
                "status": fusion_status(store, name),
                "installed_at": record.get("installed_at", ""),
            }
        )
    return rows
