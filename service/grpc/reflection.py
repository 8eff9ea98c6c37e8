"""gRPC server reflection under both protocol names: ``grpc.reflection.v1`` (the stable one,
what current grpcurl, Postman and gRPC UI ask first) and ``grpc.reflection.v1alpha``.

grpcio-reflection (1.81) implements only v1alpha. The v1 protocol is the same messages with
the same field numbers under another package name, so one servicer answers both: the v1
method is registered with v1alpha's message (de)serializers, which read and write v1's bytes
unchanged. So that a client can also *describe* the v1 service, its file
(``grpc/reflection/v1/reflection.proto``) is added to the default descriptor pool, built from
v1alpha's file with the package renamed.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

__all__ = ["SERVICE_NAMES", "V1_SERVICE_NAME", "enable_reflection"]

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, reflection.SERVICE_NAME)
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_ALPHA, _V1 = "grpc.reflection.v1alpha", "grpc.reflection.v1"


def _register_v1_file() -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to the default pool (once per process),
    made from v1alpha's file: the package and every type reference renamed."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, _V1

    def rename(type_name: str) -> str:
        return type_name.replace(f".{_ALPHA}.", f".{_V1}.", 1)

    for message in proto.message_type:
        for f in message.field:
            if f.HasField("type_name"):  # scalar fields have none (setting "" would add one)
                f.type_name = rename(f.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type, method.output_type = (
                rename(method.input_type),
                rename(method.output_type),
            )
    pool.Add(proto)


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection of ``service_names`` (and of both reflection services) on ``server``
    under the v1 and the v1alpha names."""
    _register_v1_file()
    servicer = reflection.aio.ReflectionServicer([*service_names, *SERVICE_NAMES])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
