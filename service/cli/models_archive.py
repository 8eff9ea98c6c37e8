"""``ahmer models pack OUT`` and ``ahmer models unpack IN``: the model store as one verified
archive, so an operator builds it once (where the ``export`` extra, torch, may be installed)
and installs it where torch is not allowed (:mod:`ahmer.models.store.archive`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..files import check_output_path, fail_if_unreadable
from .args import examples

__all__ = ["add_archive_parsers", "cmd_pack", "cmd_unpack"]


def add_archive_parsers(actions: Any) -> None:
    """Add ``pack OUT`` and ``unpack IN`` to the ``ahmer models`` actions."""
    pack = actions.add_parser(
        "pack",
        help="write the verified model store (and installed fusions) into one archive",
        description="Verify every artifact of the model store against its manifest and write "
        "them, the manifest and the installed fusions into the tar OUT (gzip-compressed when "
        "OUT ends in .gz or .tgz), with the sha256 of every file. Install it elsewhere with "
        "`ahmer models unpack`.",
        **examples(
            "ahmer models build && ahmer models pack ahmer-models.tar",
            "AHMER_HOME=/opt/ahmer ahmer models pack /srv/ahmer-models.tar",
        ),
    )
    pack.add_argument("out", type=Path, metavar="OUT", help="the archive to write (.tar)")
    pack.set_defaults(func=cmd_pack)

    unpack = actions.add_parser(
        "unpack",
        help="install a packed model store after checking every file's sha256",
        description="Check every file of the archive IN (written by `ahmer models pack`) "
        "against its sha256, and every model against the archive's manifest and this ahmer's "
        "pinned versions, then install them into the model store ($AHMER_HOME/models, else "
        "the user cache dir). Anything that differs refuses the whole archive (exit code 1) "
        "and leaves the store as it was. Needs no torch and no network.",
        **examples(
            "ahmer models unpack ahmer-models.tar && ahmer models list",
            "AHMER_HOME=/opt/ahmer ahmer models unpack /srv/ahmer-models.tar",
        ),
    )
    unpack.add_argument("archive", type=Path, metavar="IN", help="an archive of `models pack`")
    unpack.set_defaults(func=cmd_unpack)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_pack(args: argparse.Namespace) -> int:
    check_output_path(args.out)  # before any work
    from ahmer.models.fusion.registry import FUSIONS_DIR
    from ahmer.models.store.archive import pack_store
    from ahmer.models.store.model_store import ModelStore

    store = ModelStore()
    _say(f"model store: {store.root}")
    report = pack_store(store, args.out, folders=(FUSIONS_DIR,), progress=_say)
    fusions = f" and {len(report.extras)} fusion(s)" if report.extras else ""
    print(
        f"packed {len(report.artifacts)} model(s){fusions}, {report.files} file(s), "
        f"{report.bytes / 1e6:.1f} MB -> {args.out}"
    )
    print(f"install elsewhere: ahmer models unpack {args.out.name}")
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    fail_if_unreadable(args.archive)  # before any work
    from ahmer.models.store.archive import unpack_store
    from ahmer.models.store.model_store import ModelStore

    store = ModelStore()
    _say(f"model store: {store.root}")
    report = unpack_store(store, args.archive, progress=_say)
    fusions = f" and {len(report.extras)} fusion(s)" if report.extras else ""
    print(
        f"installed {len(report.artifacts)} model(s){fusions} from {args.archive} "
        f"({report.files} file(s) verified) into {store.root}"
    )
    return 0
