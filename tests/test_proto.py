"""The gRPC API: committed stubs match the .proto sources, every message and field is
documented, and results convert to protobuf and back without losing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "proto"
API = PROTO / "ahmer" / "v1"
SOURCES = sorted(API.glob("*.proto"))


def _protoc(*args: str) -> None:
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO}", *args]
    cmd += [str(p.relative_to(PROTO)) for p in SOURCES]
    subprocess.run(cmd, check=True, cwd=PROTO, capture_output=True)


def test_generated_stubs_are_up_to_date(tmp_path):
    _protoc(f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}")
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "ahmer" / "v1").iterdir()}
    committed = {p.name: p.read_bytes() for p in API.iterdir() if "_pb2" in p.name}
    assert set(fresh) == set(committed), "regenerate the stubs (see docs/grpc.md, API)"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stubs differ from the .proto sources: {stale}"


def _descriptors(tmp_path) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path / "api.pb"
    _protoc(f"--descriptor_set_out={out}", "--include_source_info")
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def test_every_message_and_field_is_documented(tmp_path):
    """A message, enum or service needs a comment; a field needs one, or shares the comment
    of the field right before it (``start``/``end`` pairs)."""
    missing = []
    for f in _descriptors(tmp_path).file:
        comments = {}
        for loc in f.source_code_info.location:
            text = (loc.leading_comments + loc.trailing_comments).strip()
            comments[tuple(loc.path)] = (text, loc.span[0])
        for mi, msg in enumerate(f.message_type):
            _check_message(f.name, msg, (4, mi), comments, missing)
        for ei, enum in enumerate(f.enum_type):
            if not comments.get((5, ei), ("",))[0]:
                missing.append(f"{f.name}: enum {enum.name}")
        for si, service in enumerate(f.service):
            for mi, method in enumerate(service.method):
                if not comments.get((6, si, 2, mi), ("",))[0]:
                    missing.append(f"{f.name}: rpc {method.name}")
    assert not missing, "undocumented: " + ", ".join(missing)


def _check_message(file, msg, path, comments, missing):
    if not comments.get(path, ("",))[0]:
        missing.append(f"{file}: message {msg.name}")
    previous_line, previous_ok = -10, False
    for fi, field in enumerate(msg.field):
        text, line = comments.get((*path, 2, fi), ("", -1))
        ok = bool(text) or (previous_ok and line == previous_line + 1)
        if not ok:
            missing.append(f"{file}: {msg.name}.{field.name}")
        previous_line, previous_ok = line, ok
    for ni, nested in enumerate(msg.nested_type):
        if not nested.options.map_entry:
            _check_message(file, nested, (*path, 3, ni), comments, missing)
    for ei, enum in enumerate(msg.enum_type):
        if not comments.get((*path, 4, ei), ("",))[0]:
            missing.append(f"{file}: enum {msg.name}.{enum.name}")


def test_stubs_import_as_ahmer_v1():
    from ahmer.v1 import service_pb2, service_pb2_grpc

    service = service_pb2.DESCRIPTOR.services_by_name["AnalysisService"]
    assert service.full_name == "ahmer.v1.AnalysisService"
    assert [m.name for m in service.methods] == [
        "AnalyzeClip",
        "UploadClip",
        "StreamSession",
        "GetModels",
    ]
    assert hasattr(service_pb2_grpc, "AnalysisServiceStub")


@pytest.fixture(scope="module")
def result(tmp_path_factory, model_store):
    from media import HEDGING, have_espeak
    from serving import shared_analyzer, speech_clip

    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    clip = speech_clip(tmp_path_factory.mktemp("proto"), HEDGING, "hedging")
    return shared_analyzer().analyze(clip)


def test_result_round_trips_through_protobuf(result):
    from ahmer.service.convert import from_proto, to_dict, to_proto

    msg = to_proto(result)
    assert msg.schema == "ahmer.result/1"
    assert len(msg.frames) == len(result.frames) > 0
    assert msg.explanation.cues, "a hedging answer has cues"
    back = from_proto(msg)
    assert back.to_dict() == result.to_dict()
    assert to_dict(msg) == result.to_dict()
    # the wire form survives serialisation too
    again = type(msg).FromString(msg.SerializeToString())
    assert from_proto(again).to_dict() == result.to_dict()


def test_output_options_trim_the_result(result):
    from ahmer.service.convert import to_proto
    from ahmer.v1 import options_pb2

    bare = to_proto(result, frames=False, explanation=options_pb2.EXPLANATION_NONE)
    assert not bare.frames and not bare.HasField("explanation")
    assert bare.clip.ah_probability == pytest.approx(result.clip.ah_probability, abs=1e-4)
    summary = to_proto(result, explanation=options_pb2.EXPLANATION_SUMMARY)
    assert summary.explanation.summary == result.explanation.summary
    assert not summary.explanation.cues
    assert len(summary.SerializeToString()) < len(to_proto(result).SerializeToString())
