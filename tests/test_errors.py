"""One error root (issue 19, item 4): every exception class the library defines derives from
``AhmerError`` through a branch named by meaning; the gRPC status follows from the branch by
``isinstance`` (no tables of class names); the client's errors carry the same names, and a
branch's status comes back to the client as the same-named class."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import grpc
import pytest

from ahmer.preprocessing import errors
from ahmer.service.grpc.errors import RequestError, status_for

ROOT = Path(__file__).resolve().parents[1]
BRANCHES = (
    errors.InvalidInput,
    errors.Unavailable,
    errors.Cancelled,
    errors.ResourceExhausted,
    errors.FailedPrecondition,
    errors.Internal,
)


_ERROR_BASES = ("Error", "Exception", "Abort", "Stopped", *(b.__name__ for b in BRANCHES))


def _is_error(node: ast.ClassDef) -> bool:
    return any(ast.unparse(b).endswith(_ERROR_BASES) for b in node.bases)


def _exception_classes():
    """(module, class name) of every class in the library whose bases end in Error or
    Exception, read from the source (so a new one cannot be forgotten)."""
    folders = {"preprocessing": "ahmer.preprocessing", "models": "ahmer.models"}
    found = []
    for folder, package in folders.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            module = ".".join((package, *rel.parts)).removesuffix(".__init__")
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef) and _is_error(node):
                    found.append((module, node.name))
    for path in sorted((ROOT / "service").rglob("*.py")):
        if "client" in path.parts:
            continue  # the client's errors are gRPC errors, mirrored below
        rel = path.relative_to(ROOT / "service").with_suffix("")
        module = ".".join(("ahmer.service", *rel.parts)).removesuffix(".__init__")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and _is_error(node):
                found.append((module, node.name))
    return found


CLASSES = _exception_classes()


def test_the_finder_sees_the_known_errors():
    names = {name for _, name in CLASSES}
    assert {"MediaError", "BackendUnavailable", "ModelStoreError", "LiveError"} <= names
    assert len(CLASSES) >= 25


@pytest.mark.parametrize(("module", "name"), CLASSES, ids=lambda v: str(v))
def test_every_library_error_derives_from_one_branch_of_the_root(module, name):
    cls = getattr(importlib.import_module(module), name)
    if cls is errors.AhmerError or cls in BRANCHES:
        return
    branches = [b for b in BRANCHES if issubclass(cls, b)]
    if issubclass(cls, RequestError):
        assert issubclass(cls, errors.AhmerError)  # it carries its own status
        return
    assert branches, f"{module}.{name} derives from no branch of AhmerError"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.Cancelled("x"), grpc.StatusCode.CANCELLED),
        (errors.ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Internal("x"), grpc.StatusCode.INTERNAL),
        (MemoryError(), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ValueError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (KeyError("x"), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.name,
)
def test_the_status_follows_from_the_branch(exc, code):
    assert status_for(exc)[0] == code


def test_a_subclass_defined_anywhere_gets_its_branch_status():
    """By isinstance, not by name: a new error class needs no table entry."""

    class SomethingNew(errors.InvalidInput):
        what = "thing"

    assert status_for(SomethingNew("it is broken")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid thing: it is broken",
    )
    from ahmer.models.backends.base import BackendUnavailable

    assert status_for(BackendUnavailable("triton at x is down"))[0] == grpc.StatusCode.UNAVAILABLE
    from ahmer.preprocessing.media import MediaError

    code, message = status_for(MediaError("no video or audio stream"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("invalid media: ")


def test_internal_messages_name_only_the_class():
    code, message = status_for(errors.Internal("/secret/path/model.onnx is corrupt"))
    assert code == grpc.StatusCode.INTERNAL and "/secret" not in message


@pytest.mark.parametrize("branch", BRANCHES, ids=lambda b: b.__name__)
def test_the_client_mirrors_each_branch(branch):
    """The client has a class of the same name, and the branch's status comes back as it."""
    import ahmer.client as client
    from ahmer.client.errors import error_from

    mirrored = getattr(client, branch.__name__)
    code, message = status_for(branch("x"))

    class _Rpc(grpc.RpcError):
        def code(self):
            return code

        def details(self):
            return message

    assert type(error_from(_Rpc())) is mirrored
