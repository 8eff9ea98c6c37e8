"""One server interceptor for every call: bearer-token check, metrics and a log line.

The handler's behaviour is wrapped (same kind, same response serializer), so the wrapper
sees the call's real end: the status code set by ``context.abort``/``set_code``, an
exception, or a cancellation. The log line carries the method, code, duration and peer,
never content.

Order: grpc.aio asks the interceptor for the handler when the call starts, before any
request message is read, and parses each message with the handler's deserializer before
the handler sees it. So the token is checked here, from the call's metadata, and a call
without a valid one gets a handler that reads nothing and ends with UNAUTHENTICATED. That
handler is always a request-*streaming* one, even for a unary method: grpc.aio receives a
unary request whole before it calls the handler (a 48 MiB AnalyzeClip body would be in the
server's memory before the refusal), whereas a streaming handler is called at once and
never asks for a message, so the refusal goes out with at most the transport's flow-control
window of the body received. The caller sees the same status either way.

An accepted call gets a deserializer that does not raise: a message protobuf cannot parse
becomes an :class:`~.errors.Undecodable`, which the wrapper turns into INVALID_ARGUMENT
(grpc.aio answers a raising deserializer with UNKNOWN on unary requests, and the handler's
own error path answers INTERNAL on streams).

Every status message leaves through :func:`plain`: the handler gets a context whose
``abort``/``set_details`` drop Python object reprs (``<_io.BytesIO object at 0x7f...>``, which a
library may put in its message), since they tell a caller nothing and leak an address.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time

import grpc

from ..logs import log_event
from .auth import EXEMPT_PREFIXES, TokenAuth
from .errors import Undecodable
from .prometheus import Metrics, grpc_type

__all__ = ["CallInterceptor", "plain", "tolerant"]

log = logging.getLogger("ahmer.service.calls")

_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _code_name(code) -> str:
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return str(code)


_OBJECT = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")


def plain(details: str) -> str:
    """``details`` without Python object reprs (``<_io.BytesIO object at 0x7f...>``)."""
    return _OBJECT.sub("(data)", details) if details else details


class _PlainContext:
    """The call's context for the handler, whose status messages pass through :func:`plain`."""

    def __init__(self, context) -> None:
        self._context = context

    def __getattr__(self, name: str):
        return getattr(self._context, name)

    async def abort(self, code, details: str = "", trailing_metadata=()):
        return await self._context.abort(code, plain(details), trailing_metadata)

    def set_details(self, details: str) -> None:
        self._context.set_details(plain(details))


def tolerant(deserializer):
    """``deserializer``, returning an :class:`Undecodable` where it would raise (``None``,
    raw bytes, stays ``None``)."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def parse(data: bytes):
        try:
            return deserializer(data)
        except Exception:  # DecodeError, and whatever else a parser may raise on garbage
            return Undecodable(name)

    return parse


async def _checked(requests):
    """The request stream, raising the first :class:`Undecodable` where the handler reads
    it (handlers map it to its status like any other request error)."""
    async for message in requests:
        if isinstance(message, Undecodable):
            raise message
        yield message


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, auth: TokenAuth, metrics: Metrics) -> None:
        self.auth = auth
        self.metrics = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        exempt = method.startswith(EXEMPT_PREFIXES)
        refused = None if exempt else self.auth.check(details.invocation_metadata)
        kind = _KINDS[handler.request_streaming, handler.response_streaming][0]
        behavior = getattr(handler, kind)
        # a refused call's messages are never received: a streaming handler reads none
        streaming = handler.request_streaming or refused is not None
        factory = _KINDS[streaming, handler.response_streaming][1]
        kinds = grpc_type(handler.request_streaming, handler.response_streaming)
        wrapped = self._wrap(behavior, method, exempt, refused, streaming, kinds)
        return factory(
            wrapped,
            request_deserializer=None if refused else tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _wrap(
        self,
        behavior,
        method: str,
        exempt: bool,
        refused: str | None,
        streaming: bool,
        kind: str,
    ):
        service, short = method.strip("/").rsplit("/", 1)

        async def begin(request, context):
            """The request the handler gets, once the call may go on."""
            if refused is not None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, refused)
            if streaming:
                return _checked(request)
            if isinstance(request, Undecodable):
                await context.abort(request.code, request.message)
            return request

        def finish(context, start: float, error: BaseException | None, peer: str) -> None:
            # the context is not touched once the client is gone (cancelled, or the stream
            # closed under us): grpc.aio may have freed the call by then
            if isinstance(error, asyncio.CancelledError | GeneratorExit):
                code = "CANCELLED"
            elif error is not None and not isinstance(error, grpc.aio.AbortError):
                code = "UNKNOWN"
            else:
                code = _code_name(context.code())
            seconds = time.perf_counter() - start
            self.metrics.observe_call(kind, service, short, code, seconds)
            if not exempt or code != "OK":
                level = logging.INFO if code in ("OK", "CANCELLED") else logging.WARNING
                if code == "UNKNOWN":
                    level = logging.ERROR
                log_event(
                    log,
                    "call finished",
                    level,
                    method=method,
                    code=code,
                    duration_ms=round(seconds * 1000, 1),
                    peer=peer,
                )

        if inspect.isasyncgenfunction(behavior):

            async def stream_wrapper(request, context):
                start, error, peer = time.perf_counter(), None, context.peer()
                self.metrics.start_call(kind, service, short)
                try:
                    request = await begin(request, context)
                    async for response in behavior(request, _PlainContext(context)):
                        yield response
                except Undecodable as exc:  # a handler that does not map request errors
                    await context.abort(exc.code, exc.message)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(context, start, error, peer)

            return stream_wrapper

        async def wrapper(request, context):
            start, error, peer = time.perf_counter(), None, context.peer()
            self.metrics.start_call(kind, service, short)
            try:
                request = await begin(request, context)
                result = behavior(request, _PlainContext(context))
                if inspect.isawaitable(result):
                    result = await result
                return result
            except Undecodable as exc:  # a handler that does not map request errors
                await context.abort(exc.code, exc.message)
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(context, start, error, peer)

        return wrapper
