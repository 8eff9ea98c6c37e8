"""``ahmer models pack`` / ``unpack`` on the real model store, and what ``ahmer models build``
says before it downloads anything (issue 22, item 8).

The round trip: the store packed, unpacked into a fresh AHMER_HOME, listed there as verified
with the same sha256s, and an analysis run on that home. Then archives that must be refused,
each made from the real archive by a change an attacker or a bad copy could make: a flipped
byte in a model, a cut archive, a file that is not a tar, a member the index does not list, a
name that climbs out of the store, a manifest rewritten (with its index) to other pins. Each
is refused with exit code 1 and one error line, and leaves the store it was unpacked into as
it was."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cli_checks import one_error_line
from media import HEDGING, canvas, make_clip, portrait, read_wav, speak

CLI = [sys.executable, "-m", "ahmer.service.cli"]
MODEL = "fer_emotion/fer_emotion.onnx"  # a member the tampering tests change


def _run(*args, home: Path | None = None, env: dict | None = None, pre: str = ""):
    """The CLI in a subprocess (``pre``: Python run in that process first)."""
    full = {k: v for k, v in os.environ.items() if k not in ("AHMER_DEBUG", "AHMER_HOME")}
    full.update(env or {})
    if home is not None:
        full["AHMER_HOME"] = str(home)
    main = "from ahmer.service.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = CLI if not pre else [sys.executable, "-c", f"import sys\n{pre}\n{main}"]
    return subprocess.run(
        [*cmd, *map(str, args)], capture_output=True, text=True, timeout=300, env=full
    )


def _listing(home: Path | None) -> dict[str, tuple[str, str]]:
    proc = _run("models", "list", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    return {
        r["name"]: (r["status"], r.get("sha256", "")) for r in json.loads(proc.stdout)["artifacts"]
    }


@pytest.fixture(scope="module")
def archive(model_store, tmp_path_factory) -> Path:
    """The real store (the default home) packed by the CLI."""
    out = tmp_path_factory.mktemp("packed") / "models.tar"
    proc = _run("models", "pack", out)
    assert proc.returncode == 0, proc.stderr
    assert "packed" in proc.stdout and out.is_file()
    return out


def test_pack_unpack_into_a_fresh_home_verifies_and_analyses(archive, tmp_path):
    home = tmp_path / "home"
    proc = _run("models", "unpack", archive, home=home)
    assert proc.returncode == 0, proc.stderr
    assert "installed" in proc.stdout
    original, unpacked = _listing(None), _listing(home)
    assert unpacked == original  # every artifact, same sha256
    assert {status for status, _ in unpacked.values()} == {"ok"}

    audio, rate = read_wav(speak(HEDGING, tmp_path / "speech.wav"))
    clip = make_clip(tmp_path / "clip.mp4", canvas(portrait()), audio[:, 0], sample_rate=rate)
    out = tmp_path / "r.json"
    proc = _run("analyze", clip, "--json", out, "--quiet", home=home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["frames"] and 0.0 <= result["clip"]["ah_probability"] <= 1.0

    again = _run("models", "unpack", archive, home=home)  # over an installed store
    assert again.returncode == 0, again.stderr
    assert _listing(home) == original


def _copy_with(archive: Path, out: Path, change) -> Path:
    """A copy of ``archive`` whose members pass through ``change(name, data)``, which returns
    the new (name, data) list for that member (empty: dropped)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else b""
            for name, body in change(member.name, data):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(body), 0o644
                dst.addfile(info, io.BytesIO(body))
    return out


def _flip_byte(archive: Path, out: Path) -> Path:
    with tarfile.open(archive) as tar:
        member = tar.getmember(MODEL)
    data = bytearray(archive.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0x01
    out.write_bytes(bytes(data))
    return out


def _other_pins(archive: Path, out: Path) -> Path:
    """The manifest says fer_emotion is another version, and the index agrees with it."""
    import hashlib

    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    manifest["artifacts"]["fer_emotion"]["version"] = "0.0-other"
    body = (json.dumps(manifest, indent=2) + "\n").encode()

    def change(name, data):
        if name == "ahmer-store.json":
            index = json.loads(data)
            index["manifest"] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
            return [(name, json.dumps(index).encode())]
        return [(name, body if name == "manifest.json" else data)]

    return _copy_with(archive, out, change)


def _cut(archive: Path, out: Path) -> Path:
    out.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return out


def _not_tar(archive: Path, out: Path) -> Path:
    out.write_bytes(b"this is not an archive\n" * 400)
    return out


def _extra_member(archive: Path, out: Path) -> Path:
    def change(name, data):
        return [(name, data)] + ([("minilm/extra.bin", b"x")] if name == MODEL else [])

    return _copy_with(archive, out, change)


def _climbing_name(archive: Path, out: Path) -> Path:
    return _copy_with(archive, out, lambda n, d: [("../" + n if n == MODEL else n, d)])


TAMPERED = {
    "a flipped byte in a model": (_flip_byte, f"{MODEL} does not match its sha256"),
    "a cut archive": (_cut, "the archive is damaged"),
    "not a tar file": (_not_tar, "not a readable tar archive"),
    "a member the index does not list": (_extra_member, "'minilm/extra.bin' is not in its index"),
    "a name that climbs out": (_climbing_name, f"'../{MODEL}' is not in its index"),
    "a manifest of other pins": (_other_pins, "built from other pins"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_changed_archive_is_refused_and_the_store_kept(archive, tmp_path, case):
    make, needle = TAMPERED[case]
    bad = make(archive, tmp_path / "bad.tar")
    empty_home = tmp_path / "empty"
    proc = _run("models", "unpack", bad, home=empty_home)
    line = one_error_line(proc, 1, needle)
    assert line.startswith("ahmer models: error:") and str(bad) in line
    models = empty_home / "models"
    assert not (models / "manifest.json").exists()
    assert [p.name for p in models.iterdir() if not p.name.startswith(".")] == []


def test_a_refused_archive_leaves_an_installed_store_as_it_was(archive, tmp_path):
    home = tmp_path / "home"
    assert _run("models", "unpack", archive, home=home).returncode == 0
    before = _listing(home)
    proc = _run("models", "unpack", _flip_byte(archive, tmp_path / "bad.tar"), home=home)
    one_error_line(proc, 1, "does not match its sha256")
    assert _listing(home) == before


def test_pack_and_unpack_usage_errors(tmp_path):
    one_error_line(_run("models", "unpack", tmp_path / "none.tar", home=tmp_path), 2, "no such")
    one_error_line(_run("models", "pack", tmp_path, home=tmp_path), 2, "is a directory")
    proc = _run("models", "pack", tmp_path / "m.tar", home=tmp_path / "empty")
    one_error_line(proc, 1, "is empty: run `ahmer models build`")
    assert not (tmp_path / "m.tar").exists()


NO_TORCH = """
class NoTorch:  # an installation without torch: importing it fails as if it were absent
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def test_build_says_what_it_needs_before_downloading(tmp_path):
    """Without torch (unimportable in this process), a build of a fresh store stops at once,
    naming the export extra, what is missing, the CPU torch line and the packed-store way;
    pip was never run (its index is a closed port) and nothing was written."""
    home = tmp_path / "home"
    closed = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR": "1"}
    proc = _run("models", "build", home=home, env=closed, pre=NO_TORCH)
    line = one_error_line(proc, 1, "needs the export extra", "missing: torch")
    for needle in (
        "torch==",
        "transformers",
        "h5py",
        "download.pytorch.org/whl/cpu",
        "ahmer models unpack",
        "Nothing was downloaded",
    ):
        assert needle in line, (needle, line)
    assert "downloading" not in proc.stderr
    assert not home.exists()
