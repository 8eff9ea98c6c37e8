"""One server interceptor for every call: bearer-token check, metrics and a log line.

The handler's behaviour is wrapped (same kind, same serializers), so the wrapper sees the
call's real end: the status code set by ``context.abort``/``set_code``, an exception, or a
cancellation. The log line carries the method, code, duration and peer, never content.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time

import grpc

from ..logs import log_event
from .auth import EXEMPT_PREFIXES, TokenAuth
from .prometheus import Metrics

__all__ = ["CallInterceptor"]

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
        kind, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
        behavior = getattr(handler, kind)
        wrapped = self._wrap(behavior, method, exempt)
        return factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, behavior, method: str, exempt: bool):
        short = method.rsplit("/", 1)[-1]

        async def check(context) -> None:
            if exempt:
                return
            reason = self.auth.check(context.invocation_metadata())
            if reason is not None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

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
            self.metrics.observe_call(short, code, seconds)
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
                try:
                    await check(context)
                    async for response in behavior(request, context):
                        yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(context, start, error, peer)

            return stream_wrapper

        async def wrapper(request, context):
            start, error, peer = time.perf_counter(), None, context.peer()
            try:
                await check(context)
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(context, start, error, peer)

        return wrapper
