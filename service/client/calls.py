"""Raw streaming calls (``AhmerClient.stream``, ``AsyncAhmerClient.stream``) whose errors
come as :class:`~ahmer.client.AhmerError`: the gRPC call object wrapped, everything else
(``cancel()``, ``code()``, metadata, ...) passed through unchanged."""

from __future__ import annotations

from .errors import translated

__all__ = ["TranslatedCall", "AsyncTranslatedCall"]


class TranslatedCall:
    """A blocking streaming call: iterate it for the server's messages."""

    def __init__(self, call) -> None:
        self._call = call

    def __getattr__(self, name: str):
        return getattr(self._call, name)

    def __iter__(self) -> TranslatedCall:
        return self

    def __next__(self):
        with translated():
            return next(self._call)


class AsyncTranslatedCall:
    """An asyncio streaming call: ``async for`` it (or ``await read()``) for the server's
    messages; ``write``/``done_writing`` when it was started without a request iterator."""

    def __init__(self, call) -> None:
        self._call = call

    def __getattr__(self, name: str):
        return getattr(self._call, name)

    async def _iterate(self):
        with translated():
            async for msg in self._call:
                yield msg

    def __aiter__(self):
        return self._iterate()

    async def read(self):
        with translated():
            return await self._call.read()

    async def write(self, request) -> None:
        with translated():
            await self._call.write(request)

    async def done_writing(self) -> None:
        with translated():
            await self._call.done_writing()
