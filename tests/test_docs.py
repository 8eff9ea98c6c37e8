"""The README is a front page and the manual an MkDocs site (issue 19, item 6): the README stays
short and keeps the two commands, every page of docs/ is in mkdocs.yml's nav, links resolve,
the strict build passes, and nothing in the repository points outside it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 450
# What no file may name: the private notes beside the checkout (spelled in pieces so that this
# file does not name them itself).
OUTSIDE = ("../" + "shared", "DESIGN" + ".md")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _repo_files() -> list[Path]:
    """Tracked files and untracked ones git does not ignore; without git, every file outside
    hidden and build folders."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [ROOT / name for name in out.split("\0") if name]
    skip = {"site", "build", "dist", "__pycache__", "out"}
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and not any(
            part.startswith(".") and part != ".ci" or part in skip or part.endswith(".egg-info")
            for part in p.relative_to(ROOT).parts[:-1]
        )
    ]


def test_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in ("bash .ci/install", "bash .ci/test"):
        assert f"\n{command}" in text, command
    run = (ROOT / ".ci" / "run").read_text()
    steps = [line for line in run.splitlines() if line.startswith("bash ")]
    assert steps == ["bash .ci/install", "bash .ci/test"]


def test_readme_links_resolve():
    links = [t for t in _LINK.findall(README.read_text()) if "://" not in t]
    assert any(t.startswith("docs/") for t in links), "the README points into docs/"
    for target in links:
        path = target.split("#", 1)[0]
        assert path and (ROOT / path).exists(), f"README links to {target}, which is missing"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config.get("docs_dir", "docs") == "docs"
    nav = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, "every page in docs/ is listed once in mkdocs.yml's nav"
    assert len(nav) == len(set(nav))
    assert nav[0] == "index.md"


def test_docs_links_stay_inside_docs():
    """Files outside docs/ are named as code (`bench/README.md`), not linked: the built site
    does not contain them (and mkdocs --strict refuses such links)."""
    for page in DOCS.rglob("*.md"):
        for target in _LINK.findall(page.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            resolved = (page.parent / path).resolve()
            assert resolved.is_relative_to(DOCS), f"{page.name} links outside docs/: {target}"
            assert resolved.exists(), f"{page.name} links to {target}, which is missing"


def test_nothing_points_outside_the_repository():
    found = []
    for path in _repo_files():
        try:
            text = path.read_text(errors="strict")
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: not documentation or code
        for number, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_mkdocs_strict_build(tmp_path):
    """What `bash .ci/test` runs first: broken links and anchors or a page left out of nav fail
    it (no --quiet: mkdocs 1.6 then stops counting warnings)."""
    pytest.importorskip("mkdocs", reason="mkdocs comes with the dev extra")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    assert (tmp_path / "index.html").exists()
