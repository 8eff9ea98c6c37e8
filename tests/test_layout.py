"""The layout's rules, read from the source: dependencies point one way
(``service -> models -> preprocessing``), and inside ``service/`` each room depends only
downward (``cli`` on top; ``grpc``, ``batch`` and ``client`` over ``live``, ``convert`` and
``models``; ``live`` free of gRPC).

Every ``import`` and ``from ... import`` of the library code counts, function-level ones
too, relative ones resolved to their absolute names."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder of the checkout -> package it installs as: pyproject.toml's package-dir, longest
# folder first (service/client before service)
_PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]
PACKAGES = dict(sorted(((f, p) for p, f in _PACKAGE_DIR.items()), key=lambda fp: -len(fp[0])))

# module prefix -> prefixes it must never import
FORBIDDEN = {
    "ahmer.preprocessing": ("ahmer.models", "ahmer.service", "ahmer.client", "ahmer.v1", "grpc"),
    "ahmer.models": ("ahmer.service", "ahmer.client", "ahmer.v1", "grpc"),
    "ahmer.service.live": (
        "grpc",
        "grpc_health",
        "ahmer.v1",
        "ahmer.service.grpc",
        "ahmer.service.batch",
        "ahmer.service.cli",
        "ahmer.service.convert",
        "ahmer.client",
    ),
    "ahmer.service.batch": ("ahmer.service.cli", "ahmer.service.grpc", "ahmer.client"),
    "ahmer.service.grpc": ("ahmer.service.cli", "ahmer.service.batch", "ahmer.client"),
    "ahmer.service.convert": ("ahmer.service.",),
    "ahmer.service.files": ("ahmer.service.",),
    "ahmer.service.logs": ("ahmer.service.",),
    "ahmer.client": (
        "ahmer.service.grpc",
        "ahmer.service.batch",
        "ahmer.service.live",
        "ahmer.service.cli",
    ),
}

# The wings of ``models/``, lowest first: a wing may import the top's light modules (contract,
# config, results, telemetry) and the wings before it, never one after it nor the analyzer.
WINGS = ("store", "backends", "fusion", "triton", "training")
MODELS_TOP = ("contract", "config", "results", "telemetry")
for _i, _wing in enumerate(WINGS):
    FORBIDDEN[f"ahmer.models.{_wing}"] = (
        "ahmer.service",
        "ahmer.client",
        "ahmer.v1",
        "grpc",
        "ahmer.models.analyzer",
        *(f"ahmer.models.{w}" for w in WINGS[_i + 1 :]),
    )
for _top in MODELS_TOP:
    FORBIDDEN[f"ahmer.models.{_top}"] = (
        "ahmer.models.analyzer",
        *(f"ahmer.models.{w}" for w in WINGS),
    )


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    for folder, package in PACKAGES.items():  # longest folder first: service/client
        if rel.parts[: len(Path(folder).parts)] == Path(folder).parts:
            rest = rel.parts[len(Path(folder).parts) :]
            name = ".".join((package, *rest))
            return name.removesuffix(".__init__")
    raise AssertionError(f"{path} is outside the library folders")


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports."""
    name = _module_name(path)
    return _imports_of(path.read_text(), name, is_package=path.name == "__init__.py")


def _imports_of(source: str, name: str, is_package: bool = False) -> set[str]:
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _library_files() -> list[Path]:
    files = []
    for folder in ("preprocessing", "models", "service"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _matches(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def test_the_rules_see_every_room():
    """The rules cover each room of the service (a new room must get its rules)."""
    rooms = {p.name for p in (ROOT / "service").iterdir() if (p / "__init__.py").exists()}
    assert rooms == {"batch", "cli", "client", "grpc", "live"}
    names = {_module_name(p) for p in _library_files()}
    assert "ahmer.service.live.session" in names and "ahmer.client.sync" in names


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dependencies_point_one_way(path):
    name = _module_name(path)
    imports = _imports(path)
    for owner, forbidden in FORBIDDEN.items():
        if not _matches(name, owner):
            continue
        bad = sorted(i for i in imports for f in forbidden if _matches(i, f))
        assert not bad, f"{name} must not import {bad}"
    if not _matches(name, "ahmer.service.cli"):
        bad = sorted(i for i in imports if _matches(i, "ahmer.service.cli"))
        assert not bad, f"nothing imports the CLI, but {name} imports {bad}"


def test_models_is_in_wings_each_with_its_purpose():
    """``models/`` holds the contract, config, results and analyzer at the top and the rest in
    wings, each a package whose docstring says in one sentence what it holds."""
    import ast as _ast

    top = {p.stem for p in (ROOT / "models").glob("*.py")} - {"__init__"}
    assert top == {"analyzer", *MODELS_TOP}
    wings = {p.name for p in (ROOT / "models").iterdir() if (p / "__init__.py").exists()}
    assert wings == set(WINGS)
    for wing in WINGS:
        doc = _ast.get_docstring(_ast.parse((ROOT / "models" / wing / "__init__.py").read_text()))
        assert doc and doc.count(". ") == 0 and doc.endswith("."), (wing, doc)


def _import_graph() -> dict[str, set[str]]:
    """Library module -> the library modules it imports (function-level imports too)."""
    files = {_module_name(p): p for p in _library_files()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {
            i for i in _imports(path) if i in files and i != name and not name.startswith(i + ".")
        }
    return graph


def test_no_import_loops_in_the_library():
    """No module reaches itself through its imports (a package importing its own submodules
    counts as the package; a submodule importing its package's ``__init__`` does not loop)."""
    graph = _import_graph()
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                loops.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)


def test_the_rule_checker_resolves_relative_imports():
    """The checker itself: relative imports reaching up are resolved to absolute names, so a
    live module importing the gRPC room would be caught."""
    found = _imports_of(
        "from ..grpc.errors import RequestError\nfrom . import speech\nimport grpc\n",
        "ahmer.service.live.session",
    )
    assert "ahmer.service.grpc.errors" in found
    assert "ahmer.service.live.speech" in found and "grpc" in found
    assert any(_matches(n, "ahmer.service.grpc") for n in found)
    assert not _matches("ahmer.service.grpcx", "ahmer.service.grpc")


def test_the_client_is_importable_one_way_only():
    """``service/client`` installs as ``ahmer.client``; in an editable install it also lies
    under ``ahmer.service``, where importing it would make second copies of its classes."""
    import importlib

    import ahmer.client

    assert ahmer.client.AhmerClient.__module__ == "ahmer.client.sync"
    with pytest.raises(ImportError, match="as ahmer.client"):
        importlib.import_module("ahmer.service.client")


# a contract fact -> the one library file allowed to write it as a literal
CONTRACT_LITERALS = {
    "'surprise'": "models/contract.py",  # the emotion names
    "'ah_fusion_zeroshot'": "models/contract.py",  # the fusion artifact's name
    "'ahmer.result/1'": "models/contract.py",
    "'ahmer.fusion/1'": "models/contract.py",
    "'fer_emotion'": "models/contract.py",  # the store's artifact names
    "'minilm'": "models/contract.py",
    "'whisper_tiny_en'": "models/contract.py",
    "'face_landmarker'": "models/contract.py",
    "'face_detector_full_range'": "models/contract.py",
    "'face_detector_short_range'": "models/contract.py",
    "'sample_face'": "models/contract.py",
    "16000": "preprocessing/rates.py",  # the sample rate
}


def _literals(path: Path) -> set[str]:
    """String and number tokens of ``path`` (docstrings and comments aside), normalised."""
    import io
    import tokenize

    found: set[str] = set()
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.NUMBER:
            found.add(tok.string.replace("_", ""))
        elif tok.type == tokenize.STRING:
            before = tokens[i - 1].type if i else tokenize.NEWLINE
            if before in (tokenize.NEWLINE, tokenize.INDENT, tokenize.NL, tokenize.DEDENT):
                continue  # a docstring or a bare string statement
            try:
                found.add(repr(ast.literal_eval(tok.string)))
            except (ValueError, SyntaxError):  # f-strings
                continue
    return found


def test_contract_facts_are_written_once():
    """The emotion names, artifact and schema names and the sample rate stand as literals in
    their one home; everything else imports them (``models/contract.py``)."""
    where: dict[str, list[str]] = {}
    for path in _library_files():
        for literal in _literals(path) & set(CONTRACT_LITERALS):
            where.setdefault(literal, []).append(str(path.relative_to(ROOT)))
    assert where == {k: [v] for k, v in CONTRACT_LITERALS.items()}


def test_the_literal_finder_ignores_docstrings(tmp_path):
    code = tmp_path / "x.py"
    code.write_text('"""16000 \'surprise\'."""\nRATE = 16_000  # 16000\nX = f"{RATE}"\n')
    assert _literals(code) & set(CONTRACT_LITERALS) == {"16000"}


def _defaults_named(path: Path, names: set[str]):
    """(name, literal) of every parameter default, dataclass field or keyword argument whose
    name is in ``names`` and whose value is a number literal."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.arguments):
            args = node.posonlyargs + node.args
            pairs = list(zip(args[len(args) - len(node.defaults) :], node.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)]
            pairs = [(a, d) for a, d in pairs if d is not None]
            for arg, default in pairs:
                if arg.arg in names and isinstance(default, ast.Constant):
                    yield arg.arg, default.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in names and isinstance(node.value, ast.Constant):
                yield node.target.id, node.value.value
        elif isinstance(node, ast.keyword) and node.arg in names:
            if isinstance(node.value, ast.Constant) and not isinstance(node.value.value, str):
                yield node.arg, node.value.value


def test_the_analysis_rate_and_segment_gap_have_one_home_each():
    """The default analysis rate (``DEFAULT_FPS``, preprocessing/options.py) and the A/H
    segment gap (``SEGMENT_GAP``, models/contract.py) are imported, never re-typed: no ``fps``
    default or argument of the library is the rate's number, no ``gap`` the gap's (other gaps,
    such as the explanation's grouping of cue hits, are other facts)."""
    from ahmer.models.contract import SEGMENT_GAP
    from ahmer.preprocessing.options import DEFAULT_FPS

    found = [
        (str(path.relative_to(ROOT)), name, value)
        for path in _library_files()
        for name, value in _defaults_named(path, {"fps", "gap"})
        if (name, value) in {("fps", DEFAULT_FPS), ("gap", SEGMENT_GAP)}
    ]
    assert found == []


def test_the_default_finder_sees_literals(tmp_path):
    code = tmp_path / "x.py"
    code.write_text(
        "def f(a, fps=5.0, *, gap=0.4): pass\n"
        "class C:\n    fps: float = 5.0\n"
        "spans(x, gap=0.3)\nspans(x, gap=GAP)\ndef g(fps=None): pass\n"
    )
    found = sorted(_defaults_named(code, {"fps", "gap"}), key=repr)
    assert found == [("fps", 5.0), ("fps", 5.0), ("fps", None), ("gap", 0.3), ("gap", 0.4)]


MAX_MODULE_LINES = 800


def test_no_library_module_is_over_800_lines():
    """Modules stay small enough to read whole (issue 19): a module past 800 lines is split
    along the jobs it holds, as report.py, faces.py, media.py and the batch engine were."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in _library_files()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
