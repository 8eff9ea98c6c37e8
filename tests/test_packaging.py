"""What ``pip install ahmer`` (no extras) must bring: every third-party module the library
imports is declared, and a fresh virtual environment with the package alone runs
``ahmer analyze`` on a real clip.

The static check reads every import of the library code and maps it to the distribution that
provides it in this environment; the install check builds the package from this checkout into
a new venv (dependencies from pip's cache or the registry, as a Docker runtime stage does) and
runs the console script there.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("preprocessing", "models", "service")
# files that may import what only an extra brings (relative to ROOT) -> the extra
EXTRA_FILES = {
    "models/store/export/": "export",
    "models/training/train.py": "export",  # ahmer train: torch, imported once it is known installed
    "models/training/torch_mirror.py": "export",
    "models/backends/triton_client.py": "triton",
    "models/triton/": "triton",
}
# files that never run in ahmer's environment (relative to ROOT) -> where they run instead
FOREIGN_FILES = {"models/triton/python_model.py": "inside Triton's python stub (.venv-triton)"}


def _name(requirement: str) -> str:
    """``"faster-whisper==1.2.1"`` -> ``"faster-whisper"``, normalised (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    return {_name(r) for r in project["dependencies"]}, extras


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the library files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if str(path.relative_to(ROOT)) in FOREIGN_FILES:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("ahmer", "__future__"):
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    runtime, extras = _declared()
    providers = md.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        dists = {_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is not installed here"
        if dists & runtime:
            continue
        allowed = {EXTRA_FILES[p] for f in files for p in EXTRA_FILES if f.startswith(p)}
        outside = [f for f in files if not any(f.startswith(p) for p in EXTRA_FILES)]
        if outside or not any(dists & extras[e] for e in allowed):
            missing.append(f"{module} ({'/'.join(sorted(dists))}) imported by {sorted(files)}")
    assert not missing, "undeclared in pyproject.toml's dependencies: " + "; ".join(missing)


def test_the_check_sees_the_imports_that_were_once_missing():
    """scipy (prosody) and pillow (live frames) were imported but undeclared once."""
    imports = _third_party_imports()
    assert "scipy" in imports and "PIL" in imports
    runtime, _ = _declared()
    assert {"scipy", "pillow", "opencv-contrib-python"} <= runtime


def test_a_plain_install_runs_analyze(tmp_path, model_store):
    """``pip install <checkout>`` without extras into a fresh venv, then ``ahmer analyze`` on
    a generated clip with the already built model store."""
    from media import CONFIDENT
    from serving import speech_clip

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    check = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    installed = {_name(line.split("==")[0]) for line in check.stdout.splitlines()}
    assert "torch" not in installed and "tritonclient" not in installed  # extras stay out

    clip = speech_clip(tmp_path, CONFIDENT, "plain")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    ran = subprocess.run(
        [str(env_dir / "bin" / "ahmer"), "analyze", str(clip), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # not the checkout: the installed package, not the source folders
        env=env,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "plain.mp4:" in ran.stdout and "A/H" in ran.stdout
    assert "internal error" not in ran.stderr
